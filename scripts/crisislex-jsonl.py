#!/usr/bin/env python3
"""Writes CrisisLexT26 as the JSON lines `pulse eval stories --data` reads, in time order.

Usage: scripts/crisislex-jsonl.py DIR [--overlap] > stories.jsonl  (DIR: the folder with one
subfolder per event). `--overlap` moves every event (its noise too) to start at the same moment,
keeping the times within it: 26 events at once, a check that concurrent stories stay apart. Each line: `id`, `text`, `created_at` (RFC 3339, from the tweet id's timestamp), `label`
(the event's folder name; absent for tweets labelled "Not related" or "Not applicable", which
are noise for story detection).
"""
import csv
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

TWITTER_EPOCH_MS = 1288834974657
# The first tweet of CrisisLexT26: where `--overlap` starts every event.
OVERLAP_ORIGIN_ID = 203440928084602880


def created_at(tweet_id: int) -> str:
    ms = (tweet_id >> 22) + TWITTER_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def labelled_tweets(event: Path):
    """The tweets of one event's folder as (tweet id, text, informativeness), in file order."""
    for path in event.glob("*-tweets_labeled.csv"):
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            for rec in reader:
                if len(rec) < 5:
                    continue
                yield int(rec[0].strip('"')), rec[1], rec[4].strip()


def main() -> None:
    root = Path(sys.argv[1])
    overlap = "--overlap" in sys.argv[2:]
    rows = []
    for event in sorted(p for p in root.iterdir() if p.is_dir()):
        tweets = list(labelled_tweets(event))
        # Ids carry their time from bit 22 up: moving an event moves its ids' times.
        shift = (min(t[0] for t in tweets) >> 22 << 22) - (OVERLAP_ORIGIN_ID >> 22 << 22) if overlap and tweets else 0
        for tweet_id, text, informativeness in tweets:
            tweet_id -= shift
            row = {"id": str(tweet_id), "text": text, "created_at": created_at(tweet_id)}
            if informativeness not in ("Not related", "Not applicable"):
                row["label"] = event.name
            rows.append((tweet_id, row))
    rows.sort(key=lambda r: r[0])
    seen = set()
    for tweet_id, row in rows:
        if tweet_id in seen:
            continue
        seen.add(tweet_id)
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
