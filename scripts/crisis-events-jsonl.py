#!/usr/bin/env python3
"""Writes labelled crisis-event collections as the JSON lines `pulse eval stories --data` reads.

These sets validate the story detector on events it was not tuned on (CrisisLexT26, in
../shared/data, is the set it was first tuned on; scripts/crisislex-jsonl.py writes that one).
Both are read from a clone of the public repository ChenBeici/SocialED_datasets (commit
33e37b6e), folder raw_data/:

- `crisisnlp`: CrisisNLP (Imran, Mitra and Castillo, LREC 2016): nine events of 2014-2015,
  labelled by volunteers; tweets labelled not related / not relevant / irrelevant are noise, and
  so are the 2014 "landslide" tweets labelled "Not physical landslide" (landslide victories and
  the like, spread over the year). The year-long collection of physical landslides is no single
  event and is left out.
- `humaid`: HumAID (Alam et al., ICWSM 2021): events of 2016, 2018 and 2019 (its 2017 events are
  left out: they are the events of another public collection, CrisisMMD, kept unseen). Every
  tweet is about its event.

Usage: scripts/crisis-events-jsonl.py {crisisnlp|humaid} RAW_DATA_DIR [--per-event N] > FILE.jsonl

Each line: `id`, `text`, `created_at` (RFC 3339, from the tweet id's timestamp), `label` (the
event; absent for noise), in time order, duplicates of an id once. `--per-event N` (default
2000) keeps at most N tweets of an event and `--noise-share S` (default 0.25, the share of
CrisisLexT26's and the held-out sets' order) at most that share of noise, each chosen by a hash
of the id (the same every run).
"""
import argparse
import csv
import hashlib
import json
import re
from pathlib import Path

from importlib.machinery import SourceFileLoader

crisislex = SourceFileLoader("crisislex", str(Path(__file__).with_name("crisislex-jsonl.py"))).load_module()

NOISE = re.compile(r"not related|not relevant|irrelevant|not physical landslide", re.I)
HUMAID_LEFT_OUT = ("_2017",)


def rows_of_csv(path: Path):
    """CrisisNLP's files: some end lines with a bare CR, ids are quoted with a leading "'"."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    reader = csv.reader(text.split("\n"))
    header = [h.strip() for h in next(reader)]
    for rec in reader:
        if len(rec) != len(header):
            continue
        yield dict(zip(header, rec))


def crisisnlp(root: Path):
    for event_dir in sorted((root / "CrisisNLP").iterdir()):
        if not event_dir.is_dir():
            continue
        landslides = event_dir.name.startswith("Landslides")
        for path in event_dir.glob("*.csv"):
            for rec in rows_of_csv(path):
                tweet_id = rec["tweet_id"].strip("'\" ")
                if not tweet_id.isdigit():
                    continue
                label = rec["label"].strip()
                noise = bool(NOISE.search(label))
                if landslides and not noise:
                    continue
                yield int(tweet_id), rec["tweet_text"], None if noise else event_dir.name


def humaid(root: Path):
    for event_dir in sorted((root / "HumAID").glob("HumAID_data_events_set*/events_set*/*")):
        if not event_dir.is_dir() or event_dir.name.endswith(HUMAID_LEFT_OUT):
            continue
        for path in sorted(event_dir.glob("*.tsv")):
            with path.open(newline="", encoding="utf-8") as f:
                reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
                next(reader)
                for rec in reader:
                    if len(rec) >= 3 and rec[0].isdigit():
                        yield int(rec[0]), rec[1], event_dir.name


def sample_key(tweet_id: int) -> bytes:
    return hashlib.sha1(str(tweet_id).encode()).digest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("collection", choices=["crisisnlp", "humaid"])
    parser.add_argument("raw_data", type=Path)
    parser.add_argument("--per-event", type=int, default=2000)
    parser.add_argument("--noise-share", type=float, default=0.25)
    args = parser.parse_args()
    read = crisisnlp if args.collection == "crisisnlp" else humaid
    by_id = {}
    for tweet_id, text, label in read(args.raw_data):
        by_id.setdefault(tweet_id, (text, label))
    per_event = {}
    for tweet_id, (_, label) in by_id.items():
        per_event.setdefault(label, []).append(tweet_id)
    kept = []
    for label, ids in per_event.items():
        if label is not None:
            ids.sort(key=sample_key)
            kept.extend(ids[: args.per_event])
    noise = sorted(per_event.get(None, []), key=sample_key)
    kept.extend(noise[: round(len(kept) * args.noise_share / (1 - args.noise_share))])
    for tweet_id in sorted(kept):
        text, label = by_id[tweet_id]
        row = {"id": str(tweet_id), "text": text, "created_at": crisislex.created_at(tweet_id)}
        if label is not None:
            row["label"] = label
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
