#!/usr/bin/env python3
"""Writes CrisisLexT26 as the JSON lines `pulse eval relevance --data` reads.

Usage: scripts/relevance-crisislex.py DIR > relevance.jsonl  (DIR: the folder with one subfolder
per event). The 26 events are the entities: each was collected by keywords (its
`-event_description.json`), and people labelled whether each tweet is about the event. Each line:
`id`, `text`, `entity` (the event's folder name), `query` (its keywords ORed in the topics
language), `label` (`related` for "Related and informative" and "Related - but not informative",
`unrelated` for "Not related" and "Not applicable"), `created_at` (from the tweet id) and `split`:
`test` for about 30% of each event, chosen by a hash of the text with links, mentions and `RT`
removed, so near-duplicates (retweets, copies) fall in one fold.
"""
import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path

# The reading of the labelled tweets and their times is the stories script's.
_spec = importlib.util.spec_from_file_location("crisislex_jsonl", Path(__file__).with_name("crisislex-jsonl.py"))
crisislex = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crisislex)


def created_at(tweet_id: int) -> str:
    """The tweet's time to the second (the stories script keeps milliseconds)."""
    return crisislex.created_at(tweet_id)[:-5] + "Z"


def query(keywords: list[str]) -> str:
    terms = []
    for k in dict.fromkeys(k.strip() for k in keywords if k.strip()):
        k = k.replace('"', "")
        terms.append(f'"{k}"' if " " in k else k)
    return " OR ".join(terms)


def fold(text: str) -> str:
    text = re.sub(r"https?://\S+|@\w+|\bRT\b", " ", text, flags=re.I)
    return " ".join(re.findall(r"\w+", text.lower()))


def main() -> None:
    root = Path(sys.argv[1])
    seen = set()
    for event in sorted(p for p in root.iterdir() if p.is_dir()):
        description = next(event.glob("*-event_description.json"), None)
        if description is None:
            continue
        q = query(json.loads(description.read_text(encoding="utf-8")).get("keywords", []))
        for tweet_id, text, informativeness in crisislex.labelled_tweets(event):
            if tweet_id in seen or informativeness == "Not labeled":
                continue
            seen.add(tweet_id)
            related = informativeness.startswith("Related")
            bucket = int(hashlib.sha1(fold(text).encode()).hexdigest()[:8], 16) % 10
            print(json.dumps({
                "id": str(tweet_id), "text": text, "entity": event.name, "query": q,
                "label": "related" if related else "unrelated",
                "created_at": created_at(tweet_id),
                "split": "test" if bucket < 3 else "train",
            }, ensure_ascii=False))


if __name__ == "__main__":
    main()
