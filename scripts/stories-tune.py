#!/usr/bin/env python3
"""Chooses the story detector's settings by leaving collections out, and says how they generalise.

Usage: scripts/stories-tune.py --pulse-tools BIN NAME=FILE.jsonl [NAME=FILE.jsonl ...] [--out FILE]

Each FILE is a labelled replay as `pulse eval stories --data` reads it (scripts/crisislex-jsonl.py,
scripts/crisis-events-jsonl.py). Every setting of the grid below is replayed on every collection
(`pulse eval stories --processes 1`), beside the tf-idf baseline of the same run at its best
threshold. Then, for each collection in turn, the setting is chosen on the *other* collections
(the highest smallest AMI margin over the baseline, then the highest mean AMI) and scored on the
one left out: the held-out figures say what a choice made this way is worth on events it never
saw. The last block is the choice made on all of them, the one to ship.
"""
import argparse
import itertools
import json
import subprocess
import sys

# The settings that decide what joins what; the rest keep their defaults.
GRID = {
    "join_similarity": [0.02, 0.03],
    "join_relative": [0.0, 0.15, 0.25],
    "birth_similarity": [0.1, 0.15, 0.2, 0.3],
    "birth_posts": [3, 4],
    "merge_similarity": [0.2, 0.3],
}
BASELINE_THRESHOLDS = "0.02,0.05,0.1,0.2"


def replay(bin_path, data, settings, thresholds):
    out = subprocess.run(
        [bin_path, "eval", "stories", "--data", data, "--processes", "1", "--json",
         "--baseline-thresholds", thresholds, "--settings", json.dumps(settings)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def choose(scores, names):
    """The setting with the highest smallest margin over `names`, then the highest mean AMI."""
    def key(item):
        _, by_set = item
        margins = [by_set[n]["margin"] for n in names]
        amis = [by_set[n]["ami"] for n in names]
        return (round(min(margins), 4), sum(amis) / len(amis))
    return max(scores.items(), key=key)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pulse-tools", required=True)
    parser.add_argument("--out")
    parser.add_argument("sets", nargs="+")
    args = parser.parse_args()
    sets = dict(s.split("=", 1) for s in args.sets)
    baseline = {}
    for name, path in sets.items():
        b = replay(args.pulse_tools, path, {}, BASELINE_THRESHOLDS)["baseline"]
        baseline[name] = b
        print(f"{name}: baseline AMI {b['ami']:.3f}", file=sys.stderr)
    keys = list(GRID)
    scores = {}
    for values in itertools.product(*(GRID[k] for k in keys)):
        settings = dict(zip(keys, values))
        by_set = {}
        for name, path in sets.items():
            p = replay(args.pulse_tools, path, settings, "0.02")["pulse"]
            by_set[name] = {
                "ami": p["ami"], "ari": p["ari"], "stories": p["stories"],
                "delay_median": p["delay_median"], "spurious_per_day": p["spurious_per_day"],
                "unplaced_share": p["unplaced_share"],
                "margin": p["ami"] - baseline[name]["ami"],
            }
        scores[json.dumps(settings, sort_keys=True)] = by_set
        print(json.dumps(settings), {n: round(s["ami"], 3) for n, s in by_set.items()}, file=sys.stderr)

    def show(name, s):
        return (f"AMI {s['ami']:.3f} (baseline {baseline[name]['ami']:.3f}, {s['margin']:+.3f}), "
                f"ARI {s['ari']:.3f}, {s['stories']} stories, delay {s['delay_median']:.0f}, "
                f"{s['spurious_per_day']:.2f} spurious/day, {100 * s['unplaced_share']:.1f}% in none")

    report = {"baseline": baseline, "folds": [], "grid": scores}
    print("\nleave one collection out: chosen on the others, scored on the one left out")
    for held_out in sets:
        rest = [n for n in sets if n != held_out]
        settings, by_set = choose(scores, rest)
        print(f"- {held_out}: {settings}\n    {show(held_out, by_set[held_out])}")
        report["folds"].append({"held_out": held_out, "settings": json.loads(settings),
                                "score": by_set[held_out]})
    settings, by_set = choose(scores, list(sets))
    print(f"\nchosen on all: {settings}")
    for name in sets:
        print(f"- {name}: {show(name, by_set[name])}")
    report["chosen"] = {"settings": json.loads(settings), "scores": by_set}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
