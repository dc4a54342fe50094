#!/usr/bin/env python
"""Two more things the store knows when a post goes out, tried as reach-forecast inputs on
Twitter15 beside the author's track record (offline; Python only):

- **story so far**: the earlier cascades of other authors that tell the same story (tf-idf
  cosine over words and word pairs at least 0.3 / 0.4 / 0.5 / 0.6), at the shares they had
  gathered by the post's time (final once a week old): how many, their shrunk mean, their
  largest;
- **the author as a sharer**: how often the author had shared other authors' cascades before
  posting, and how many shares their shares drew (the store's engagements name who shared and
  from whom).

    python3 -m venv /tmp/sk && /tmp/sk/bin/pip install numpy scipy scikit-learn
    /tmp/sk/bin/python scripts/experiments/forecast_earlier_signals.py   # about 10 s

The track record is the one `pulse eval forecast` reads (earlier cascades, final once a week
old, the shares so far otherwise); folds grouped by author and by story as there; one ridge
(alpha 10) over standardised features, out of fold. Spearman with the final size, all
cascades and each author's first (no record).

Findings (2026-11-27, Intel Xeon, 2 cores):

    inputs                          all     authors' first cascades
    track record                    0.329   -0.066
    story so far (0.3)             -0.012   -0.056   348 cascades have one, 208 first ones
    track record + story (0.3)      0.326   -0.059
    track record + story (0.4)      0.331   -0.038
    track record + story (0.5)      0.324   -0.084
    track record + story (0.6)      0.327   -0.060
    as a sharer: shares before     -0.006   -0.044   312 had shared, 93 first ones (0.069 among them)
    as a sharer: shares drawn       0.009   -0.048   294 had drawn some, 75 first ones (0.107 among them)

Neither moves the ranking: a story's earlier cascades do not say how far a retelling goes, and
too few new authors were seen sharing first. Neither is an input.

Added 2026-11-29 (Intel Xeon, 2 cores): the record read as the outside baseline reads it, and a
model that can bend:

    author median so far (baseline) 0.357
    track record + median           0.330   -0.073
    track record + quartiles, min   0.329   -0.073
    track record + last three       0.334   -0.073
    track record + all five         0.340   -0.073
    boosted trees (0.05, 100, 20)   0.275   -0.073
    boosted trees (0.05, 300, 60)   0.293   -0.066

The median, quartiles, least and latest cascades add at most 0.011 to the summary, and trees
over the same inputs read less than the line. The same inputs beside `pulse eval forecast`'s
full feature set (its out-of-fold predictions and features, the same folds): 0.379 -> 0.381
(median), 0.385 (latest three), 0.383 (median and least); none is an input.
"""
import bisect, collections, math, os
import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import Ridge

D = os.environ.get('PULSE_TWITTER15', '../shared/data/cascades/twitter15')
HORIZON_S = 7 * 86400
EPOCH_MS = 1288834974657


def node(s):
    u, t, d = [x.strip().strip("'") for x in s.strip()[1:-1].split(',')]
    return u, t, float(d)


def load():
    texts = dict(l.rstrip('\n').split('\t', 1) for l in open(f'{D}/source_tweets.tsv'))
    rows = []
    for f in sorted(os.listdir(f'{D}/tree')):
        sid = f[:-4]
        if sid not in texts:
            continue
        at = ((int(sid) >> 22) + EPOCH_MS) / 1000.0
        author, first, edges = None, {}, []
        for line in open(f'{D}/tree/{f}'):
            if '->' not in line:
                continue
            p, c = line.strip().split('->')
            pu = node(p)[0]
            cu, _, cd = node(c)
            if pu == 'ROOT':
                author = cu
                continue
            if cd < 0 or cd * 60 > HORIZON_S:
                continue
            edges.append((pu, cu, at + cd * 60))
            if cu != author and (cu not in first or cd < first[cu]):
                first[cu] = cd
        rows.append(dict(sid=sid, author=author, at=at, text=texts[sid], edges=edges,
                         times=sorted(at + d * 60 for d in first.values())))
    rows.sort(key=lambda r: r['at'])
    return rows


R = load()
n = len(R)
y = np.array([math.log1p(len(r['times'])) for r in R])
YBAR = y.mean()


def shares_then(j, at):
    r = R[j]
    return len(r['times']) if r['at'] + HORIZON_S <= at else bisect.bisect_right(r['times'], at)


def words(t):
    out = []
    for w in t.split():
        if w == 'URL' or w.startswith('@') or w.startswith('http'):
            continue
        w = ''.join(c for c in w.lower() if c.isalnum())
        if w:
            out.append(w)
    return out + [a + ' ' + b for a, b in zip(out, out[1:])]


docs = [words(r['text']) for r in R]
df = collections.Counter(t for d in docs for t in set(d))
vecs = []
for d in docs:
    v = {t: (1 + math.log(c)) * (math.log((1 + n) / (1 + df[t])) + 1)
         for t, c in collections.Counter(d).items()}
    norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
    vecs.append({t: x / norm for t, x in v.items()})
postings = collections.defaultdict(list)
for i, v in enumerate(vecs):
    for t in v:
        postings[t].append(i)
sim = []
for i, v in enumerate(vecs):
    dot = collections.Counter()
    for t, x in v.items():
        for j in postings[t]:
            if j != i:
                dot[j] += x * vecs[j][t]
    sim.append({j: d for j, d in dot.items() if d >= 0.3})

parent = list(range(n))


def find(x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


first_of = {}
for i, r in enumerate(R):
    for j, d in sim[i].items():
        if d >= 0.5:
            parent[find(i)] = find(j)
    for key in (' '.join(docs[i]), 'author:' + r['author']):
        if key in first_of:
            parent[find(i)] = find(first_of[key])
        else:
            first_of[key] = i
groups = [find(i) for i in range(n)]
count = collections.Counter(groups)
load_ = [0] * 5
fold_of = {}
for g in sorted(count, key=lambda g: (-count[g], (g * 0x9E3779B97F4A7C15) % 2**64)):
    fold_of[g] = min(range(5), key=lambda f: load_[f])
    load_[fold_of[g]] += count[g]
folds = np.array([fold_of[g] for g in groups])


def summary(logs, k=4):
    if not logs:
        return [YBAR, 0.0, 0.0, 0.0]
    return [(sum(logs) + k * YBAR) / (len(logs) + k), max(logs), math.log1p(len(logs)), 1.0]


def earlier(i, keep):
    return [math.log1p(shares_then(j, R[i]['at'])) for j in range(i)
            if R[j]['at'] < R[i]['at'] and keep(j)]


record = np.array([summary(earlier(i, lambda j, i=i: R[j]['author'] == R[i]['author']))
                   for i in range(n)])
first = record[:, 3] == 0


def out_of_fold(X):
    p = np.zeros(n)
    for f in range(5):
        tr = folds != f
        mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-9
        p[~tr] = Ridge(alpha=10).fit((X[tr] - mu) / sd, y[tr]).predict((X[~tr] - mu) / sd)
    return p


def report(name, X, note=''):
    p = out_of_fold(X)
    print(f'{name:32s}{spearmanr(p, y)[0]:7.3f}{spearmanr(p[first], y[first])[0]:9.3f}   {note}')


print(f'{n} cascades, {first.sum()} authors\' first ones\n{"inputs":32s}    all   first')
report('track record', record)
for th in (0.3, 0.4, 0.5, 0.6):
    story = np.array([summary(earlier(i, lambda j, i=i: R[j]['author'] != R[i]['author']
                                      and sim[i].get(j, 0) >= th)) for i in range(n)])
    has = story[:, 3] > 0
    if th == 0.3:
        report(f'story so far ({th})', story, f'{has.sum()} have one, {(has & first).sum()} first')
    report(f'track record + story ({th})', np.hstack([record, story]))

shared, drawn = collections.defaultdict(list), collections.defaultdict(list)
for r in R:
    for pu, cu, t in r['edges']:
        if cu != r['author']:
            shared[cu].append(t)
        if pu not in (r['author'], cu):
            drawn[pu].append(t)
for name, events in (('as a sharer: shares before', shared), ('as a sharer: shares drawn', drawn)):
    v = np.array([sum(t < r['at'] for t in events[r['author']]) for r in R], float)
    some = first & (v > 0)
    print(f'{name:32s}{spearmanr(v, y)[0]:7.3f}{spearmanr(v[first], y[first])[0]:9.3f}   '
          f'{(v > 0).sum()} had, {some.sum()} first ones; among those '
          f'{spearmanr(v[some], y[some])[0]:.3f}')


# The record read as the outside baseline reads it (the median of the earlier cascades), its
# spread and its latest cascades, as inputs beside the summary; and the summary in a model that
# can bend (gradient-boosted trees) rather than a line.
def order_stats(logs):
    if not logs:
        return [0.0] * 5
    v = np.array(logs)
    return [np.median(v) - YBAR, np.quantile(v, 0.25) - YBAR, np.quantile(v, 0.75) - YBAR,
            v.min() - YBAR, v[-3:].mean() - YBAR]


stats = np.array([order_stats(earlier(i, lambda j, i=i: R[j]['author'] == R[i]['author']))
                  for i in range(n)])
median_so_far = np.where(first, -1.0, stats[:, 0] + YBAR)
print(f'{"author median so far (baseline)":32s}{spearmanr(median_so_far, y)[0]:7.3f}')
report('track record + median', np.hstack([record, stats[:, :1]]))
report('track record + quartiles, min', np.hstack([record, stats[:, :4]]))
report('track record + last three', np.hstack([record, stats[:, 4:]]))
report('track record + all five', np.hstack([record, stats]))
from sklearn.ensemble import HistGradientBoostingRegressor
for lr, it, leaf in ((0.05, 100, 20), (0.05, 300, 60)):
    p = np.zeros(n)
    for f in range(5):
        tr = folds != f
        X = np.hstack([record, stats])
        p[~tr] = HistGradientBoostingRegressor(learning_rate=lr, max_iter=it, min_samples_leaf=leaf,
                                               random_state=0).fit(X[tr], y[tr]).predict(X[~tr])
    print(f'{f"boosted trees ({lr}, {it}, {leaf})":32s}{spearmanr(p, y)[0]:7.3f}'
          f'{spearmanr(p[first], y[first])[0]:9.3f}')
