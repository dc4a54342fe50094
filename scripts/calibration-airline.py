#!/usr/bin/env python3
"""Writes the JSON lines `pulse eval calibration --data` reads from the Twitter US Airline
Sentiment set (Crowdflower's "Airline Twitter sentiment", February 2015: 14,640 tweets to six US
airlines, each labelled negative, neutral or positive by contributors; published on Kaggle and
mirrored in public repositories, e.g. eidehua/Real-Time-SciVi at
twitter-airline-sentiment/Tweets.csv).

Usage: scripts/calibration-airline.py Tweets.csv > airline.jsonl

Texts are de-duplicated after normalising (lower case, mentions, links and spaces folded), and
split 70/30 into train and test by a hash of the normalised text, so near-duplicates (retweets,
copies to several airlines) stay on one side.
"""

import csv
import hashlib
import json
import re
import sys


def normalised(text: str) -> str:
    text = text.lower()
    text = re.sub(r"@\w+", "@user", text)
    text = re.sub(r"https?://\S+", "http", text)
    return re.sub(r"\s+", " ", text).strip()


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    seen = set()
    with open(sys.argv[1], newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            label = row["airline_sentiment"].strip()
            text = row["text"].strip()
            if label not in ("negative", "neutral", "positive") or not text:
                continue
            key = normalised(text)
            if key in seen:
                continue
            seen.add(key)
            bucket = int(hashlib.md5(key.encode()).hexdigest()[:8], 16) % 10
            print(json.dumps({
                "id": row["tweet_id"],
                "text": text,
                "label": label,
                "lang": "en",
                "split": "test" if bucket < 3 else "train",
            }, ensure_ascii=False))


if __name__ == "__main__":
    main()
