#!/usr/bin/env python3
"""Writes RepLab 2013's filtering task as the JSON lines `pulse eval relevance --data` reads.

Usage: scripts/relevance-replab2013.py LABELS_DIR TEXTS_DIR > replab2013.jsonl

RepLab 2013 (Amigó et al., CLEF 2013): 61 entities (20 automotive, 20 music, 11 banking, 10
universities), tweets in English and Spanish retrieved by each entity's query and labelled by
annotators as RELATED or UNRELATED to the entity, in the official training and test splits.
- LABELS_DIR: the corpus's `replab2013-dataset` folder: `entities/replab2013_entities.tsv`,
  `{training,test}/labeled/<entity>.dat` (tweet_id, author, entity_id, filtering, ...),
  `{training,test}/tweet_info/<entity>.dat` (language EN or ES).
- TEXTS_DIR: the tweets' texts, `{training,test}/<entity>.tsv` (tweet_id, author, entity_id, text).
The organisers distributed ids only; tweets whose text is missing are left out. Each line: `id`,
`text`, `entity` (the entity's id and name), `query` (its query as a phrase of the topics
language), `label` (`related`, `unrelated`), `lang` (`en`, `es`), `author`, and `split` (`train`
for the official training set, `test` for the test set).
"""
import csv
import json
import re
import sys
from pathlib import Path

csv.field_size_limit(10_000_000)


def rows(path: Path, encoding: str):
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        yield from csv.DictReader(f, delimiter="\t")


def phrase(query: str) -> str:
    """The query's words (punctuation dropped) as one word or a quoted phrase."""
    words = re.findall(r"\w+", query)
    return words[0] if len(words) == 1 else '"' + " ".join(words) + '"'


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    labels_dir, texts_dir = Path(sys.argv[1]), Path(sys.argv[2])
    entities = {
        r["entity_id"]: r for r in rows(labels_dir / "entities" / "replab2013_entities.tsv", "utf-8-sig")
    }
    for split, folder in (("train", "training"), ("test", "test")):
        for entity_id in sorted(entities):
            entity = entities[entity_id]
            texts = {}
            text_file = texts_dir / folder / f"{entity_id}.tsv"
            if not text_file.exists():
                continue
            for r in rows(text_file, "utf-8-sig"):
                if r.get("text", "").strip():
                    texts[r["tweet_id"]] = r["text"]
            langs = {
                r["tweet_id"]: r["language"].lower()
                for r in rows(labels_dir / folder / "tweet_info" / f"{entity_id}.dat", "latin-1")
            }
            seen = set()
            for r in rows(labels_dir / folder / "labeled" / f"{entity_id}.dat", "latin-1"):
                tweet_id, label = r["tweet_id"], r["filtering"]
                if tweet_id in seen or tweet_id not in texts or label not in ("RELATED", "UNRELATED"):
                    continue
                seen.add(tweet_id)
                print(json.dumps({
                    "id": tweet_id,
                    "text": texts[tweet_id],
                    "entity": f"{entity_id} {entity['entity_name']}",
                    "query": phrase(entity["query"]),
                    "label": label.lower(),
                    "lang": langs.get(tweet_id, "en"),
                    "author": r["author"],
                    "split": split,
                }, ensure_ascii=False))


if __name__ == "__main__":
    main()
