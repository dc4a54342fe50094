#!/usr/bin/env python3
"""Writes OUT/<lang>/test.tsv (label<TAB>text, as `pulse eval --task sentiment` reads it) from
public labelled sentiment sets in languages beyond UMSAB's seven (docs/languages.md, "Measured
beyond the seven").

Stdlib only. Each source is read either from a git clone of its repository under --repos
(a directory holding `<owner>+<name>`, bare or not) via `git show <ref>:<path>`, or from a file
or checkout given with --src LANG=PATH.

    python3 scripts/language-sets.py --out /tmp/language-sets [--repos DIR] [--src ko=PATH] [lang ...]

Labels are mapped to negative / neutral / positive (binary sets: negative / positive).
Tabs, CR and LF inside texts become spaces. Sets over CAP examples are cut to a seeded
random sample (random.Random(SEED).sample, then kept in file order).
"""
import argparse, csv, glob, io, os, random, subprocess, sys, zipfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from public_sets import clean, find_gitdir, git_show  # noqa: E402

CAP = 3000
SEED = 20240601


def semeval16(lang):
    """A public copy of a SemEval-2016 Task 5 restaurant test gold (DU, TU, ...), pinned."""
    return ("SwapnilSMane/Multilingual-Ngram-based-Convolutional-Network-MNCN-",
            f"data/{lang}_REST_SB1_TEST.xml.gold", "c225fd8a01ad53057b7ccde934b386b71b28498e")


# lang -> (repo, path in repo[, commit])
SOURCES = {
    "id": ("indobenchmark/indonlu", "dataset/smsa_doc-sentiment-prosa/valid_preprocess.tsv"),
    "zh": ("ymcui/Chinese-BERT-wwm", "data/chnsenticorp/chnsenticorp.zip"),
    # A public copy of NSMC's ratings_test.txt (e9t/nsmc) that starts with the same rows (BOM + CRLF, 36,300 of the 50,000 rows). With
    # --src ko=<e9t/nsmc checkout or ratings_test.txt> the same 3,000 rows come out.
    "ko": ("rew20170610/dawit0307", "ratings_test.txt"),
    # Supplementary Indonesian set with a labelled official test split (SmSA's is masked).
    "id-nusax": ("IndoNLP/nusax", "datasets/sentiment/indonesian/test.csv"),
    # PolEmo 2.0 text-level test split (all four domains), as distributed by CLARIN-PL
    # (dataset_conll/all.text.test.txt); this public copy was deleted from the repo's HEAD, so it
    # is read at the commit that added it.
    "pl": ("SMAPWr/project-r-polska_political_analysis", "sentiment_data/all.text.test.txt",
           "778a2c8926882e4b64635da060328c0be0b489e9"),
    # Webis-CLS-10 (Prettenhofer & Stein 2010, CC BY 4.0), Japanese book reviews, official test
    # split; a public copy (the authors distribute it behind a login).
    "ja": ("lijuntaopku/UFD", "data/jp/books/test.review", "1d5f78c1a5c579910e6dff0ca2144d2e46492abb"),
    # RuSentiTweet (Smetanin 2022), the author's test split.
    "ru": ("sismetanin/rusentitweet", "rusentitweet_test.csv", "bb714550c20f29cdab8ed6378bae15f4790f1b6d"),
    # Turkish tweets (Aydin, Gungor & Erkan), the repository's test file.
    "tr": ("cemrifki/sentiment-embeddings", "input/Turkish_twitter_test.csv",
           "7b22dcfd26cb80f5df6d224ec28e84185a02c98c"),
    # SemEval-2016 Task 5, Dutch restaurant reviews, official test gold.
    "nl": semeval16("DU"),
    # The same gold, one row per opinion: the task's own unit (slot 3, polarity accuracy).
    "nl-opinions": semeval16("DU"),
    # SemEval-2016 Task 5, Turkish restaurant reviews, official test gold, one row per opinion.
    "tr-opinions": semeval16("TU"),
}


def read_source(lang, args):
    repo, path, *ref = SOURCES[lang]
    ref = ref[0] if ref else "HEAD"
    src = args.src.get(lang)
    if src:
        if os.path.isdir(src):
            src = os.path.join(src, os.path.basename(path) if lang == "ko" else path)
        with open(src, "rb") as f:
            return f.read()
    gitdir = find_gitdir(args.repos, repo)
    if not gitdir:
        raise SystemExit(f"{lang}: no clone of {repo} under {args.repos}; pass --src {lang}=PATH")
    try:
        data = git_show(gitdir, ref, path)
    except subprocess.CalledProcessError as e:
        data, why = b"", e.stderr.decode().strip()
    else:
        why = "empty"
    if not data:
        raise SystemExit(f"{lang}: {repo}:{path} not readable from {gitdir} ({why}); pass --src {lang}=PATH")
    return data


def conv_id(data):
    # IndoNLU SmSA: text<TAB>label (positive/neutral/negative); the test labels are masked,
    # so the official validation split is the held-out set.
    rows = []
    for line in data.decode("utf-8").splitlines():
        if not line.strip():
            continue
        text, label = line.rsplit("\t", 1)
        rows.append((label.strip(), text))
    return rows


def conv_zh(data):
    # ChnSentiCorp (ERNIE/Chinese-BERT-wwm split) test.tsv: label<TAB>text_a, 1 positive 0 negative.
    z = zipfile.ZipFile(io.BytesIO(data))
    name = [n for n in z.namelist() if n.endswith("test.tsv")][0]
    rows = []
    lines = z.read(name).decode("utf-8").splitlines()
    for line in lines[1:]:
        if not line.strip():
            continue
        label, text = line.split("\t", 1)
        rows.append(({"0": "negative", "1": "positive"}[label.strip()], text))
    return rows


def conv_ko(data):
    # NSMC ratings_test.txt: id<TAB>document<TAB>label, 0 negative (1-4 stars) 1 positive (9-10).
    # code/partition.py already shuffled the 200K reviews (numpy seed 1234) before cutting the
    # 50K test split, so its first rows are a uniform random sample of the test split: keep the
    # first CAP rows with a non-empty document (instead of a random.sample over the whole file,
    # so a truncated copy and the original give the same set).
    rows = []
    lines = data.decode("utf-8-sig").replace("\r\n", "\n").split("\n")
    for line in lines[1:]:
        parts = line.split("\t")
        if len(parts) != 3 or not clean(parts[1]):
            continue
        rows.append(({"0": "negative", "1": "positive"}[parts[2].strip()], parts[1]))
        if len(rows) == CAP:
            break
    return rows


def conv_id_nusax(data):
    # NusaX-Senti Indonesian test.csv: id,text,label (positive/neutral/negative).
    return [(r["label"], r["text"]) for r in csv.DictReader(io.StringIO(data.decode("utf-8")))]


def conv_pl(data):
    # PolEmo 2.0: "<text> __label__meta_<class>" per line; minus_m negative, zero neutral,
    # plus_m positive; amb (ambivalent) has no place in three classes and is dropped.
    m = {"__label__meta_minus_m": "negative", "__label__meta_zero": "neutral",
         "__label__meta_plus_m": "positive", "__label__meta_amb": None}
    rows = []
    for line in data.decode("utf-8").splitlines():
        if not line.strip():
            continue
        text, label = line.rstrip().rsplit(" ", 1)
        if m[label]:
            rows.append((m[label], text))
    return rows


def conv_ja(data):
    # Webis-CLS-10 test.review: XML items with <rating> (1.0-5.0), <summary> (the title) and
    # <text>; 1,000 positive (4-5) and 1,000 negative (1-2), no 3. Text: title then body.
    rows = []
    for item in ET.fromstring(data).iter("item"):
        rating = float(item.findtext("rating"))
        if rating == 3:
            continue
        parts = ((item.findtext("summary") or "").strip(), (item.findtext("text") or "").strip())
        rows.append(("positive" if rating > 3 else "negative", " ".join(p for p in parts if p)))
    return rows


def conv_ru(data):
    # RuSentiTweet rusentitweet_test.csv: text,label,id; positive / neutral / negative, plus
    # speech (greetings, thanks) and skip (noise), which have no place in three sentiments.
    keep = {"negative", "neutral", "positive"}
    return [(r["label"], r["text"]) for r in csv.DictReader(io.StringIO(data.decode("utf-8")))
            if r["label"] in keep]


def conv_tr(data):
    # Turkish_twitter_test.csv: Text,Sentiment with P (positive) and N (negative).
    m = {"P": "positive", "N": "negative"}
    return [(m[r["Sentiment"].strip()], r["Text"])
            for r in csv.DictReader(io.StringIO(data.decode("utf-8")))
            if r["Sentiment"].strip() in m]


def conv_nl(data):
    # SemEval-2016 Task 5 SB1 gold: one row per sentence whose opinions all share a polarity;
    # sentences with none or with mixed polarities are dropped (a derivation of this script,
    # not a task of the workshop's).
    rows = []
    for sentence in ET.fromstring(data).iter("sentence"):
        polarities = {o.get("polarity") for o in sentence.iter("Opinion")}
        if len(polarities) == 1:
            rows.append((polarities.pop(), sentence.findtext("text")))
    return rows


def conv_opinions(data):
    # SemEval-2016 Task 5 SB1 gold, one row per opinion (its sentence's text, its polarity):
    # accuracy over these rows is the task's slot-3 accuracy, here with one answer per sentence
    # for all of its opinions (a sentence of mixed opinions is partly wrong by construction).
    return [(o.get("polarity"), sentence.findtext("text"))
            for sentence in ET.fromstring(data).iter("sentence")
            for o in sentence.iter("Opinion")]


CONVERTERS = {"pl": conv_pl, "id": conv_id, "zh": conv_zh, "ko": conv_ko, "id-nusax": conv_id_nusax,
              "ja": conv_ja, "ru": conv_ru, "tr": conv_tr, "nl": conv_nl,
              "nl-opinions": conv_opinions, "tr-opinions": conv_opinions}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--repos", default=".", help="directory of <owner>+<name> clones")
    ap.add_argument("--src", action="append", default=[], help="LANG=PATH")
    ap.add_argument("langs", nargs="*")
    args = ap.parse_args()
    args.src = dict(s.split("=", 1) for s in args.src)
    langs = args.langs or list(SOURCES)
    for lang in langs:
        rows = CONVERTERS[lang](read_source(lang, args))
        rows = [(l, clean(t)) for l, t in rows if clean(t)]
        total = len(rows)
        if total > CAP:
            keep = sorted(random.Random(SEED).sample(range(total), CAP))
            rows = [rows[i] for i in keep]
        os.makedirs(os.path.join(args.out, lang), exist_ok=True)
        with open(os.path.join(args.out, lang, "test.tsv"), "w", encoding="utf-8") as f:
            for l, t in rows:
                assert l in ("negative", "neutral", "positive"), l
                f.write(f"{l}\t{t}\n")
        counts = {}
        for l, _ in rows:
            counts[l] = counts.get(l, 0) + 1
        print(f"{lang}: {len(rows)} of {total} examples {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
