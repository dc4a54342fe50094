#!/usr/bin/env python3
"""Writes OUT/<set>/{train,val,test}.tsv (label<TAB>text, as training/train_multilingual.py's
--domain and `pulse eval --task sentiment` read them) from public labelled sentiment sets of
brands, customer service and reviews in German, Spanish and French (docs/languages.md, "Where
people complain about brands").

Stdlib only. Each set is read from a clone of its repository under --repos (a directory holding
`<owner>+<name>`, bare or not) at a pinned commit, with `git show <commit>:<path>`, so two runs
write the same bytes. Labels are negative / neutral / positive (star ratings: 1-2, 3, 4-5).
Tabs, CR and LF inside texts become spaces; empty texts are dropped.

    python3 scripts/brand-sets.py --out /tmp/brand-sets --repos DIR_OF_CLONES

- de-germeval2017: GermEval 2017 subtask B (Deutsche Bahn customer feedback from social media;
  LukasZavrel/GermEval_2017_db). Only the official development file is read: the training file
  is larger than a repository snapshot carries, and the test files are never read. It is cut
  into train (70%) and test (30%) by a hash of each text with mentions, links, case and spaces
  taken out, so near-identical posts fall on one side.
- de-utopia-coffee: reviews of coffee brands (marielledado/german-coffee-reviews), star ratings.
- es-airline-tweets: Spanish tweets to airlines (jsantalo/happybirds).
- fr-allocine-series: Allocine TV-series reviews, binary (Akram-ch/TP_NLP_2023, its splits).
Sets without a validation split get a seeded 10% one.
"""
import argparse
import csv
import hashlib
import io
import json
import os
import random
import re
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from public_sets import clean, find_gitdir, git_show  # noqa: E402

SEED = 20240601
VAL_FRACTION = 0.10
TEST_FRACTION = 0.30

csv.field_size_limit(10 ** 9)
REPOS = "."


def show(repo, commit, path):
    gitdir = find_gitdir(REPOS, repo)
    if not gitdir:
        raise SystemExit(f"no clone of {repo} under {REPOS}")
    return git_show(gitdir, commit, path)


def split_val(rows):
    idx = list(range(len(rows)))
    random.Random(SEED).shuffle(idx)
    n_val = int(round(len(rows) * VAL_FRACTION))
    val = sorted(idx[:n_val])
    train = sorted(idx[n_val:])
    return [rows[i] for i in train], [rows[i] for i in val]


def near_duplicate_key(text):
    text = re.sub(r"@\w+|https?://\S+", " ", text.lower())
    return " ".join(re.findall(r"\w+", text))


def split_test(rows):
    """Train and test by a hash of the near-duplicate key: the same post twice lands once."""
    train, test = [], []
    for label, text in rows:
        h = int(hashlib.sha256(near_duplicate_key(text).encode()).hexdigest()[:8], 16)
        (test if h % 1000 < TEST_FRACTION * 1000 else train).append((label, text))
    return train, test


def write(out, name, splits):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    report = {}
    for split, rows in splits.items():
        rows = [(l, clean(t)) for l, t in rows]
        rows = [(l, t) for l, t in rows if t]
        assert all(l in ("negative", "neutral", "positive") for l, _ in rows), name
        with open(os.path.join(d, f"{split}.tsv"), "w", encoding="utf-8", newline="\n") as f:
            for l, t in rows:
                f.write(f"{l}\t{t}\n")
        c = Counter(l for l, _ in rows)
        report[split] = {"rows": len(rows), **{k: c.get(k, 0) for k in ("negative", "neutral", "positive")}}
    print(name, json.dumps(report))


def germeval2017(out):
    # dev_v1.4.tsv: URL, text, relevance, sentiment, aspects; every document, relevant or not,
    # has a sentiment.
    raw = show("LukasZavrel/GermEval_2017_db", "4afb1fba7bc272b081c8772b5e46a3edc05c8564",
                   "GermEval/GermEval 2017 Shared Task/Data/dev_v1.4.tsv").decode("utf-8")
    rows = []
    for line in raw.split("\n"):
        f = line.rstrip("\r").split("\t")
        if len(f) < 4:
            continue  # one blank line in the file
        t = f[1]
        if len(t) >= 2 and t.startswith('"') and t.endswith('"'):
            t = t[1:-1].replace('""', '"')  # undo CSV-style quoting of whole field
        rows.append((f[3].strip(), t))
    train, test = split_test(rows)
    train, val = split_val(train)
    return write(out, "de-germeval2017", {"train": train, "val": val, "test": test})


def coffee(out):
    data = json.loads(show("marielledado/german-coffee-reviews", "14161b5f5ccf1e2d9d47e2ca3d803c08e5aa807b",
                               "utopia.json").decode("utf-8"))
    rows = []
    for r in data:
        s = int(r["rating"])
        lab = "negative" if s <= 2 else "neutral" if s == 3 else "positive"
        rows.append((lab, r["review"]))
    train, val = split_val(rows)
    return write(out, "de-utopia-coffee", {"train": train, "val": val})


# ---------------------------------------------------------------- UMSAB (xlm-t): de/fr/es/pt

UMSAB_MAP = {"0": "negative", "1": "neutral", "2": "positive"}


def airline_es(out):
    raw = show("jsantalo/happybirds", "a1ecaf1d16a447608edbb2baeb2fa10214daee0e",
                   "data/tweets_public_es.csv").decode("utf-16")
    rows = [(r["airline_sentiment"].strip(), r["text"]) for r in csv.DictReader(io.StringIO(raw))]
    train, val = split_val(rows)
    return write(out, "es-airline-tweets", {"train": train, "val": val})


def allocine_series(out):
    m = {"0": "negative", "1": "positive"}
    res = {}
    for split, name in (("train", "train"), ("val", "dev"), ("test", "test")):
        raw = show("Akram-ch/TP_NLP_2023", "92b67ece2b8cc39bf2eb1c17253b53138599199e",
                       f"2-python_data_analysis/fr/{name}.tsv").decode("utf-8")
        rows = []
        for line in raw.split("\n"):
            f = line.rstrip("\r").split("\t")
            if len(f) < 2:
                continue
            rows.append((m[f[0].strip()], "\t".join(f[1:])))
        res[split] = rows
    return write(out, "fr-allocine-series", res)


def main():
    global REPOS
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--repos", default=".", help="directory of <owner>+<name> clones")
    args = ap.parse_args()
    REPOS = args.repos
    germeval2017(args.out)
    coffee(args.out)
    airline_es(args.out)
    allocine_series(args.out)


if __name__ == "__main__":
    main()
