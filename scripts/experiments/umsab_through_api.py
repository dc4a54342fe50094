#!/usr/bin/env python3
"""UMSAB test sets through a running Pulse's `POST /api/v1/analyze`, as a producer sends them:
each text untagged (detection routes it) and, in the same run, tagged with its set's language;
macro-F1 of the three sentiment classes per language, the gap, and how many texts the detector
named English. Requests of `--batch` texts in file order; 429 and 503 are waited out.

    python3 scripts/experiments/umsab_through_api.py --url http://127.0.0.1:8080 \
        --data ../shared/data/umsab --batch 128
"""
import argparse
import collections
import json
import time
import urllib.error
import urllib.request

LANGS = {"arabic": "ar", "french": "fr", "german": "de", "hindi": "hi", "italian": "it",
         "portuguese": "pt", "spanish": "es"}


def analyze(url: str, texts: list) -> list:
    body = json.dumps({"texts": texts}).encode()
    for _ in range(120):
        req = urllib.request.Request(f"{url}/api/v1/analyze", data=body,
                                     headers={"content-type": "application/json"})
        try:
            return json.load(urllib.request.urlopen(req, timeout=600))["analyses"]
        except urllib.error.HTTPError as e:
            if e.code not in (429, 503):
                raise
            time.sleep(float(e.headers.get("Retry-After") or 1))
    raise SystemExit("the server stayed busy for two minutes")


def macro_f1(pairs: list) -> float:
    scores = []
    for label in ("negative", "neutral", "positive"):
        tp = sum(1 for y, p in pairs if y == label and p == label)
        fp = sum(1 for y, p in pairs if y != label and p == label)
        fn = sum(1 for y, p in pairs if y == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return 100 * sum(scores) / len(scores)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--data", default="../shared/data/umsab")
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    results = {}
    for folder, code in LANGS.items():
        with open(f"{args.data}/{folder}/test.tsv", encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t", 1) for line in f]
        rows = [r for r in rows if len(r) == 2]
        untagged, tagged, named = [], [], collections.Counter()
        for i in range(0, len(rows), args.batch):
            chunk = rows[i:i + args.batch]
            plain = analyze(args.url, [text for _, text in chunk])
            given = analyze(args.url, [{"text": text, "lang": code} for _, text in chunk])
            for (label, _), u, g in zip(chunk, plain, given):
                untagged.append((label, u["sentiment"]["label"]))
                tagged.append((label, g["sentiment"]["label"]))
                named[u["lang"]] += 1
        results[code] = (macro_f1(untagged), macro_f1(tagged))
        u, t = results[code]
        print(f"{code} n={len(rows)} untagged={u:.2f} tagged={t:.2f} gap={u - t:+.2f} "
              f"named_english={named['en']}", flush=True)
    mean_u = sum(u for u, _ in results.values()) / len(results)
    mean_t = sum(t for _, t in results.values()) / len(results)
    print(f"mean of {len(results)} untagged={mean_u:.2f} tagged={mean_t:.2f} batch={args.batch}")


if __name__ == "__main__":
    main()
