#!/usr/bin/env python3
"""Writes WePS-3's online reputation task (task 2) as the JSON lines `pulse eval relevance --data`
reads.

Usage: scripts/relevance-weps3.py TRAINING_DIR > weps3.jsonl

WePS-3 task 2 (Amigó et al., CLEF 2010): tweets retrieved by a company's name (Apple, Jaguar,
Amazon, ...) and labelled by annotators as about the company (TRUE) or not (FALSE); English. Only
its training set is labelled in public (52 companies, 24,264 tweets); its labels are split here,
per company, 30% `test` by a hash of the text without links and mentions (copies fall in one
fold), the rest `train`. TRAINING_DIR holds `weps-3_task-2_training.tsv` (entity, number, tweet
id, text, label, votes..., no header) and `weps-3_task-2_organizations.txt` (query term, entity,
language, ...). Tweets labelled UNKNOWN are left out. Each line: `id`, `text`, `entity`, `query`
(the company's query term as a phrase of the topics language), `label`, `lang`, `split`.
"""
import csv
import hashlib
import json
import re
import sys
from pathlib import Path

csv.field_size_limit(10_000_000)
MENTION_OR_LINK = re.compile(r"@\w+|https?://\S+|\bRT\b")


def phrase(query: str) -> str:
    """The query's words (punctuation dropped) as one word or a quoted phrase."""
    words = re.findall(r"\w+", query)
    return words[0] if len(words) == 1 else '"' + " ".join(words) + '"'


def held_out(text: str) -> bool:
    bare = " ".join(MENTION_OR_LINK.sub(" ", text.lower()).split())
    return int(hashlib.sha256(bare.encode("utf-8")).hexdigest()[:8], 16) % 10 < 3


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = Path(sys.argv[1])
    queries = {}
    with open(folder / "weps-3_task-2_organizations.txt", encoding="utf-8", errors="replace", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            queries[r["Entity"].strip()] = (r["queryTerm"].strip(), r["lang"].strip().lower()[:2])
    seen = set()
    with open(folder / "weps-3_task-2_training.tsv", encoding="utf-8", errors="replace", newline="") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 5:
                continue
            entity, _, tweet_id, text, label = (c.strip() for c in row[:5])
            if label not in ("TRUE", "FALSE") or not text or (entity, tweet_id) in seen:
                continue
            seen.add((entity, tweet_id))
            query, lang = queries.get(entity, (entity, "en"))
            print(json.dumps({
                "id": tweet_id,
                "text": text,
                "entity": entity,
                "query": phrase(query),
                "label": "related" if label == "TRUE" else "unrelated",
                "lang": lang if lang in ("en", "es") else "en",
                "split": "test" if held_out(text) else "train",
            }, ensure_ascii=False))


if __name__ == "__main__":
    main()
