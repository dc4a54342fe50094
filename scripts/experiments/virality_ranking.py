"""Can a classifier rank the top 10% of final sizes better than Pulse's growth model, at 1 hour?

An offline check, not part of Pulse: it reads the Twitter15 trees, cleaned as `pulse eval
virality` cleans them (one share per user at their earliest delay; the author's own reshares
and delays outside 0..7 days dropped; a parent that is not earlier becomes the post), computes
the growth model's features at one hour, and cross-validates (5 folds by cascade, 5 fold
seeds) the AUC for final sizes in the top 10% of: the shares seen, a logistic regression and a
gradient-boosted classifier, both trained on that very target. Needs numpy and scikit-learn:

    python3 -m venv /tmp/sk && /tmp/sk/bin/pip install numpy scikit-learn
    /tmp/sk/bin/python scripts/experiments/virality_ranking.py ../shared/data/cascades/twitter15
"""

import ast
import math
import os
import sys

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HORIZON_S = 7 * 24 * 3600
AGE_S = 3600.0


def read_tree(path):
    """(post time, share delays in seconds sorted, parent index or -1 per share)."""
    edges, source = set(), None
    for line in open(path).read().strip().split("\n"):
        a, b = line.split("->")
        parent, child = ast.literal_eval(a.strip()), ast.literal_eval(b.strip())
        if parent[0] == "ROOT":
            source = child
            continue
        edges.add((tuple(parent), tuple(child)))
    first, via = {}, {}
    for parent, child in edges:
        user, delay = child[0], float(child[2]) * 60
        if user == source[0] or delay < 0 or delay > HORIZON_S:
            continue
        if user not in first or delay < first[user]:
            first[user], via[user] = delay, parent[0]
    users = sorted(first, key=lambda u: first[u])
    index = {u: i for i, u in enumerate(users)}
    delays = np.array([first[u] for u in users])
    parents = np.array(
        [
            index[via[u]] if via[u] in index and via[u] != u and first[via[u]] <= first[u] else -1
            for u in users
        ]
    )
    origin = ((int(source[1]) >> 22) + 1288834974657) / 1000
    return origin, delays, parents


def features(origin, delays, parents, age):
    """The growth model's features (crates/core/src/virality/growth.rs, `observe`)."""
    seen = delays <= age
    counts, horizon = [], age
    for _ in range(7):
        counts.append(np.sum(delays <= horizon))
        horizon /= 2
    d, p = delays[seen], parents[seen]
    direct = np.sum(p < 0)
    hubs = len(set(p[p >= 0].tolist()))
    if len(d):
        to_first, since_last = math.log1p(d.min() / 60), math.log1p((age - d.max()) / 60)
    else:
        to_first = since_last = math.log1p(age / 60)
    hour = (origin / 3600) % 24 / 24 * 2 * math.pi
    return [math.log1p(c) for c in counts] + [
        math.log1p(direct),
        math.log1p(hubs),
        since_last,
        to_first,
        math.sin(hour),
        math.cos(hour),
    ]


def main():
    folder = os.path.join(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/cascades/twitter15", "tree")
    trees = [read_tree(os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
    trees = [t for t in trees if len(t[1]) >= 50]
    final = np.array([len(t[1]) for t in trees])
    x = np.array([features(*t, AGE_S) for t in trees])
    top10 = final >= np.quantile(final, 0.9)
    print(f"{len(trees)} cascades of at least 50 shares; AUC for the top 10% at {AGE_S:.0f} s")
    results = {"shares seen": [], "logistic": [], "gradient-boosted": []}
    for seed in range(5):
        fold = np.random.RandomState(seed).randint(0, 5, len(trees))
        logistic, boosted = np.zeros(len(trees)), np.zeros(len(trees))
        for k in range(5):
            train, test = fold != k, fold == k
            m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            logistic[test] = m.fit(x[train], top10[train]).predict_proba(x[test])[:, 1]
            g = HistGradientBoostingClassifier(
                max_iter=200, learning_rate=0.05, max_depth=3, min_samples_leaf=20, random_state=seed
            )
            boosted[test] = g.fit(x[train], top10[train]).predict_proba(x[test])[:, 1]
        results["shares seen"].append(roc_auc_score(top10, x[:, 0]))
        results["logistic"].append(roc_auc_score(top10, logistic))
        results["gradient-boosted"].append(roc_auc_score(top10, boosted))
    for name, aucs in results.items():
        print(f"{name:>17}: mean {np.mean(aucs):.3f}  per fold seed {np.round(aucs, 3).tolist()}")


if __name__ == "__main__":
    main()
