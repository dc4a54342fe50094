#!/usr/bin/env python3
"""Builds the unlabelled English tweets a student model is distilled on, beyond the labelled sets.

The source is TweetEval (Barbieri et al., 2020, https://github.com/cardiffnlp/tweeteval): the text
of its emoji, irony and stance tasks, all splits, labels never read. None of these tasks is one of
ours; their tweets (2015-2018, user mentions already written `@user`) are the kind Pulse sees. A
text is left out when, after the tweet preprocessing Pulse applies, it equals a text of any split of
our own data directory, so no evaluation tweet reaches the student, not even unlabelled; test
texts are read for that comparison only, never their labels. Duplicates and texts shorter than
three words are dropped too.

`--csv FILE:COLUMN` adds the tweets of one column of a CSV file, under the same rules; the one used
for the 4-layer model is Davidson et al.'s (2017, MIT licence,
https://github.com/t-davidson/hate-speech-and-offensive-language) `data/labeled_data.csv:tweet`,
raw tweets with real handles, which the preprocessing writes `@user` as Pulse does at run time.

    python training/unlabelled_corpus.py /path/to/tweeteval /path/to/data \
        [--csv labeled_data.csv:tweet] --out /var/tmp/pulse-train/unlabelled.txt

Writes one text per line (UTF-8, newlines folded to spaces); distill.py --unlabelled reads it.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train  # noqa: E402

SOURCES = ("emoji", "irony", "stance")
_SPACE = re.compile(r"\s+")
# Raw exports write emoji as `&#128514;`; the tweets Pulse and our splits hold carry them as
# characters (`&amp;` stays as it is in both).
_NUMERIC_ENTITY = re.compile(r"&#(\d{2,7});")


def key(text: str) -> str:
    """The form two texts are compared in: Pulse's tweet preprocessing, lower case, one space."""
    return _SPACE.sub(" ", train.tweet_preprocess(text)).strip().lower()


def source_texts(tweeteval: Path, csv_columns: list[str]):
    for name in SOURCES:
        for path in sorted((tweeteval / "datasets" / name).rglob("*_text.txt")):
            yield from path.read_text(encoding="utf-8").splitlines()
    for spec in csv_columns:
        file, _, column = spec.rpartition(":")
        with open(file, encoding="utf-8", newline="") as f:
            rows = csv.DictReader(f)
            if column not in (rows.fieldnames or []):
                sys.exit(f"unlabelled_corpus: {file} has no column {column!r}")
            for row in rows:
                yield _NUMERIC_ENTITY.sub(_entity_char, row[column])


def _entity_char(m: re.Match) -> str:
    """The character a numeric entity names; one that names no character (beyond Unicode, or a
    lone surrogate, which UTF-8 cannot write) stays as it was written."""
    code = int(m.group(1))
    return chr(code) if code <= sys.maxunicode and not 0xD800 <= code <= 0xDFFF else m.group(0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tweeteval", type=Path, help="a checkout of cardiffnlp/tweeteval")
    ap.add_argument("data_dir", type=Path, help="our labelled data (every split is excluded)")
    ap.add_argument("--csv", action="append", default=[], metavar="FILE:COLUMN",
                    help="more tweets: one column of a CSV file with a header row")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    ours = set()
    for task in train.TASKS:
        for split in ("train", "val", "test"):
            texts, _ = train.load_split(args.data_dir, task, split)
            ours.update(key(t) for t in texts)

    seen, kept, overlap, short, dup = set(), [], 0, 0, 0
    for line in source_texts(args.tweeteval, args.csv):
        text = _SPACE.sub(" ", line).strip()
        k = key(text)
        if len(k.split()) < 3:
            short += 1
        elif k in ours:
            overlap += 1
        elif k in seen:
            dup += 1
        else:
            seen.add(k)
            kept.append(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(t + "\n" for t in kept), encoding="utf-8")
    print(f"{len(kept)} texts written to {args.out}; left out: {overlap} equal to one of ours, "
          f"{short} under three words, {dup} repeated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
