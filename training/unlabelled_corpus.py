#!/usr/bin/env python3
"""Builds the unlabelled English tweets a student model is distilled on, beyond the labelled sets.

The source is TweetEval (Barbieri et al., 2020, https://github.com/cardiffnlp/tweeteval): the text
of its emoji, irony and stance tasks, all splits, labels never read. None of these tasks is one of
ours; their tweets (2015-2018, user mentions already written `@user`) are the kind Pulse sees. A
text is left out when, after the tweet preprocessing Pulse applies, it equals a text of any split of
our own data directory, so no evaluation tweet reaches the student, not even unlabelled; test
texts are read for that comparison only, never their labels. Duplicates and texts shorter than
three words are dropped too.

    python training/unlabelled_corpus.py /path/to/tweeteval /path/to/data \
        --out /var/tmp/pulse-train/unlabelled.txt

Writes one text per line (UTF-8, newlines folded to spaces); distill.py --unlabelled reads it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train  # noqa: E402

SOURCES = ("emoji", "irony", "stance")
_SPACE = re.compile(r"\s+")


def key(text: str) -> str:
    """The form two texts are compared in: Pulse's tweet preprocessing, lower case, one space."""
    return _SPACE.sub(" ", train.tweet_preprocess(text)).strip().lower()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tweeteval", type=Path, help="a checkout of cardiffnlp/tweeteval")
    ap.add_argument("data_dir", type=Path, help="our labelled data (every split is excluded)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    ours = set()
    for task in train.TASKS:
        for split in ("train", "val", "test"):
            texts, _ = train.load_split(args.data_dir, task, split)
            ours.update(key(t) for t in texts)

    seen, kept, overlap, short, dup = set(), [], 0, 0, 0
    for name in SOURCES:
        for path in sorted((args.tweeteval / "datasets" / name).rglob("*_text.txt")):
            for line in path.read_text(encoding="utf-8").splitlines():
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
