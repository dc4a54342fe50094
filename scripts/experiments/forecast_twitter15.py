#!/usr/bin/env python
"""Reach-forecast research on Twitter15 (offline; Python only).

Run from the repository root, with the bundled model built (scripts/models.sh):

    python3 -m venv /tmp/fc-venv
    /tmp/fc-venv/bin/pip install numpy scipy scikit-learn tokenizers onnx onnxruntime
    nice -n 10 /tmp/fc-venv/bin/python scripts/experiments/forecast_twitter15.py [--quick] [--final]

The data is read from ../shared/data/cascades/twitter15 (PULSE_TWITTER15 overrides it); the
default model's mean-pooled vectors (its tensor `/bert/Div_output_0`, added as a graph output)
are cached under $FORECAST_CACHE (default /tmp/fc). A full run takes about 25 minutes on two
cores, --final about 10.

Final size = the project's cleaning (crates/tools/src/eval/virality/data.rs::parse_tree): repeated edge
lines once, the source author's own reshares dropped, delays < 0 or > 7 days dropped, each user
counted once.  Target y = log1p(final size).

Findings (2026-11-26, AMD EPYC, 2 cores; 5 folds grouped by author and by story, an author's
track record from cascades posted at least 7 days before, so their final size is known):

    predictor                         Spearman  MAE(log)  AUC top10%  80% cover  Brier skill  new-author Spearman
    constant                          -0.11      0.655     0.46        0.79       -0.2%        -
    author track record (k=4)          0.16      0.622     0.63        0.80       +4.2%        -0.05
    distinct earlier sharers           0.23      0.610     0.57        0.80       +2.7%        -0.07
    tf-idf ridge                       0.15      0.642     0.56        0.80       +0.3%         0.07
    pooled vector ridge                0.10      0.647     0.57        0.79       +0.1%         0.11
    track record + 8 PCs of vector     0.30      0.593     0.63        0.80       +4.9%         0.11

Paired bootstrap of the last over track record alone: +0.137 [+0.083, +0.195]. With folds
grouped by story only (an author can be in training and test): 0.38 against 0.31. Time-ordered
blocks: no gain over the track record (-0.012 [-0.063, +0.041]). Hour, length, links, hashtags and
mentions carry no signal here; Twitter15 has no follower counts. The pooled vector is worth
taking from the analysis pass (a second encoder pass costs ~5 ms a post on one core).
"""
import sys
import os, re, time, json, math, collections
import numpy as np
from scipy.stats import spearmanr
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.ensemble import HistGradientBoostingRegressor

D = os.environ.get('PULSE_TWITTER15', '../shared/data/cascades/twitter15')
MDIR = os.environ.get('PULSE_MODEL_DIR', '.pulse/models/minilm-tweets-l4-fp32')
CACHE = os.environ.get('FORECAST_CACHE', '/tmp/fc')
HORIZON_MIN = 7 * 24 * 60
EPOCH_MS = 1288834974657
RNG = np.random.default_rng(0)
os.makedirs(CACHE, exist_ok=True)
QUICK = '--quick' in sys.argv

# ----------------------------------------------------------------------------- data
def node(s):
    u, t, d = [x.strip().strip("'") for x in s.strip()[1:-1].split(',')]
    return u, t, float(d)

def load():
    texts = {}
    for line in open(f'{D}/source_tweets.tsv'):
        i, t = line.rstrip('\n').split('\t', 1)
        texts[i] = t
    rows = []
    for f in sorted(os.listdir(f'{D}/tree')):
        sid = f[:-4]
        author = None; seen = set(); first = {}
        for line in open(f'{D}/tree/{f}'):
            line = line.strip()
            if not line:
                continue
            p, c = line.split('->')
            pu = node(p)[0]; cu, _, cd = node(c)
            if pu == 'ROOT':
                author = cu; continue
            if line in seen:
                continue
            seen.add(line)
            if cu == author or cd < 0 or cd > HORIZON_MIN:
                continue
            if cu not in first or cd < first[cu]:
                first[cu] = cd
        t = ((int(sid) >> 22) + EPOCH_MS) / 1000.0
        rows.append(dict(sid=sid, author=author, t=t, text=texts[sid], size=len(first),
                         sharers=frozenset(first)))
    return rows

R = load()
n = len(R)
size = np.array([r['size'] for r in R], float)
y = np.log1p(size)
authors = [r['author'] for r in R]
T = np.array([r['t'] for r in R])
texts = [r['text'] for r in R]
VIRAL_THR = np.quantile(size, 0.9)
viral = (size >= VIRAL_THR).astype(int)   # top 10% of final size over the whole set

# ----------------------------------------------------------------------------- groups
def norm(t):
    t = re.sub(r'\bURL\b', ' ', t); t = re.sub(r'@\w+', ' ', t)
    t = re.sub(r'[^\w#\s]', ' ', t).replace('#', ' ')
    return ' '.join(t.split())

class UF:
    def __init__(s, n): s.p = list(range(n))
    def f(s, x):
        while s.p[x] != x:
            s.p[x] = s.p[s.p[x]]; x = s.p[x]
        return x
    def u(s, a, b): s.p[s.f(a)] = s.f(b)

NT = [norm(t) for t in texts]
V = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(NT)
S = (V @ V.T).toarray()
uf = UF(n)
ii, jj = np.where(np.triu(S, 1) >= 0.5)
for a, b in zip(ii, jj): uf.u(a, b)
first_of = {}
for i, t in enumerate(NT):
    if t in first_of: uf.u(i, first_of[t])
    else: first_of[t] = i
story = np.array([uf.f(i) for i in range(n)])
first_of = {}
for i, a in enumerate(authors):
    if a in first_of: uf.u(i, first_of[a])
    else: first_of[a] = i
story_author = np.array([uf.f(i) for i in range(n)])

def make_folds(groups, k=5, seed=0):
    cnt = collections.Counter(groups)
    rng = np.random.default_rng(seed)
    keys = list(cnt); rng.shuffle(keys)
    keys.sort(key=lambda g: -cnt[g])
    load_ = [0] * k; fold_of = {}
    for g in keys:
        j = int(np.argmin(load_)); fold_of[g] = j; load_[j] += cnt[g]
    return np.array([fold_of[g] for g in groups])

# ----------------------------------------------------------------------------- text features
def hand(i):
    t = texts[i]; hr = (T[i] % 86400) / 3600.0; wd = ((T[i] // 86400) + 3) % 7
    body = re.sub(r'\bURL\b', '', t)
    return [math.sin(2 * math.pi * hr / 24), math.cos(2 * math.pi * hr / 24),
            float(wd >= 5), len(body.strip()), len(body.split()),
            float('URL' in t), t.count('URL'), len(re.findall(r'#\w+', t)),
            len(re.findall(r'@\w+', t)), float('?' in t), float('!' in t),
            float(bool(re.search(r'\d', body))), float(t.startswith('rt ') or t.startswith('"'))]
UID = np.log10(np.array([float(a) for a in authors]))   # account-age proxy (lower id = older)
HAND = np.array([hand(i) for i in range(n)])
HAND_NAMES = ['hour_sin', 'hour_cos', 'weekend', 'chars', 'words', 'has_url', 'n_url', 'n_hashtag',
              'n_mention', 'question', 'exclaim', 'digit', 'quote_rt']

def embed():
    p = f'{CACHE}/emb.npy'
    if os.path.exists(p):
        return np.load(p)
    import onnx, onnxruntime as ort
    from onnx import helper, TensorProto
    from tokenizers import Tokenizer
    m = onnx.load(f'{MDIR}/model.onnx')
    m.graph.output.append(helper.make_tensor_value_info('/bert/Div_output_0', TensorProto.FLOAT, ['batch', 384]))
    onnx.save(m, f'{CACHE}/model_pooled.onnx')
    so = ort.SessionOptions(); so.intra_op_num_threads = 1
    sess = ort.InferenceSession(f'{CACHE}/model_pooled.onnx', so, providers=['CPUExecutionProvider'])
    tok = Tokenizer.from_file(f'{MDIR}/tokenizer.json'); tok.no_padding(); tok.no_truncation()
    E = np.zeros((n, 384), np.float32)
    for k, t in enumerate(texts):   # the project's "tweet" preprocessing; links are "URL" here
        t = re.sub(r'\bURL\b', 'http', t); t = re.sub(r'@\w+', '@user', t)
        e = tok.encode(t).ids[:128] or [0]
        E[k] = sess.run(['/bert/Div_output_0'], {'input_ids': np.array([e], np.int64),
                                                 'attention_mask': np.ones((1, len(e)), np.int64)})[0][0]
    np.save(p, E)
    return E
EMB = embed()

# ----------------------------------------------------------------------------- track record
by_author = collections.defaultdict(list)
for i, a in enumerate(authors): by_author[a].append(i)

def history(i, proto, pool):
    """Indices of the author's cascades usable as track record for cascade i."""
    if proto == 'A':   # other cascades of the author in the training pool
        return [j for j in by_author[authors[i]] if j != i and pool[j]]
    # 'B': the store: the author's cascades that had matured (posted >= 7 days earlier);
    # 'B0': any earlier cascade (upper bound: pretends final sizes are known at once)
    gap = 7 * 86400 if proto == 'B' else 0.0
    return [j for j in by_author[authors[i]] if T[j] + gap <= T[i] and j != i]

_B_CACHE = {}
def track_feats(idx, proto, pool):
    if proto in ('B', 'B0'):
        if proto not in _B_CACHE:
            _B_CACHE[proto] = _track_feats(np.arange(n), proto, None)
        return _B_CACHE[proto][idx]
    key = pool.tobytes()
    if key not in _A_CACHE:
        _A_CACHE[key] = _track_feats(np.arange(n), 'A', pool)
    return _A_CACHE[key][idx]
_A_CACHE = {}

def _track_feats(idx, proto, pool):
    out = np.zeros((len(idx), 5))
    for r, i in enumerate(idx):
        h = history(i, proto, pool)
        if h:
            ys = y[h]; aud = set().union(*(R[j]['sharers'] for j in h))
            out[r] = [len(h), ys.sum(), ys.max(), len(aud), 1.0]
    return out   # n_prior, sum_y, max_y, audience (distinct earlier sharers), known

def eb(tf, mu, k):
    return (tf[:, 1] + k * mu) / (tf[:, 0] + k)

# ----------------------------------------------------------------------------- models
# A model: fit(tr_idx, proto, param) -> predict(idx) ; tr rows' track record uses the training
# pool (A: leave-one-out) or the store (B).
def pool_of(tr):
    m = np.zeros(n, bool); m[tr] = True; return m

class Const:
    grid = [None]
    def fit(s, tr, proto, p):
        mu = y[tr].mean(); return lambda idx: np.full(len(idx), mu)

class Author:
    grid = [0.5, 1, 2, 4, 8, 16]
    def fit(s, tr, proto, k):
        mu = y[tr].mean(); pool = pool_of(tr)
        return lambda idx: eb(track_feats(idx, proto, pool), mu, k)

def ridge_fit(X, yy, alpha):
    sc = StandardScaler().fit(X); m = Ridge(alpha=alpha).fit(sc.transform(X), yy)
    return lambda Z: m.predict(sc.transform(Z))

class Audience:
    grid = [1, 10, 100]
    def X(s, idx, proto, pool, mu):
        tf = track_feats(idx, proto, pool)
        return np.c_[np.log1p(tf[:, 3]), np.log1p(tf[:, 0]), tf[:, 4]]
    def fit(s, tr, proto, a):
        pool = pool_of(tr); mu = y[tr].mean()
        f = ridge_fit(s.X(tr, proto, pool, mu), y[tr], a)
        return lambda idx: f(s.X(idx, proto, pool, mu))

class Hand:
    grid = [1, 10, 100, 1000]
    def fit(s, tr, proto, a):
        f = ridge_fit(HAND[tr], y[tr], a); return lambda idx: f(HAND[idx])

class Tfidf:
    grid = [1, 3, 10, 30]
    def fit(s, tr, proto, a):
        v = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        X = v.fit_transform([NT[i] for i in tr]); mu = y[tr].mean()
        m = Ridge(alpha=a).fit(X, y[tr] - mu)
        return lambda idx: m.predict(v.transform([NT[i] for i in idx])) + mu

class Emb:
    grid = [10, 100, 1000, 10000]
    def fit(s, tr, proto, a):
        f = ridge_fit(EMB[tr], y[tr], a); return lambda idx: f(EMB[idx])

class Combined:
    """track record (EB mean, log n, max, audience, known) + hand-made text + PCA(pooled vector)
    [+ stacked tf-idf ridge]; ridge or gradient boosting."""
    def __init__(s, kind='ridge', blocks=('track', 'aud', 'hand', 'emb'), pca=16, k_eb=2.0):
        s.kind, s.blocks, s.pca, s.k_eb = kind, set(blocks), pca, k_eb
        s.grid = [1, 10, 100, 1000] if kind == 'ridge' else [(150, 0.03), (300, 0.03)]
    def X(s, idx, proto, pool, mu, pca, tfm):
        cols = []
        tf = track_feats(idx, proto, pool)
        if 'track' in s.blocks:
            known = tf[:, 4]
            cols += [eb(tf, mu, s.k_eb) - mu, np.log1p(tf[:, 0]), known,
                     np.where(known > 0, tf[:, 2], mu) - mu]
        if 'aud' in s.blocks:
            cols += [np.log1p(tf[:, 3])]
        if 'hand' in s.blocks:
            cols += list(HAND[idx].T)
        if 'emb' in s.blocks:
            cols += list(pca.transform(EMB[idx]).T)
        if 'tfidf' in s.blocks:
            cols += [tfm(idx)]
        if 'uid' in s.blocks:
            cols += [UID[idx]]
        return np.array(cols).T
    def fit(s, tr, proto, p):
        pool = pool_of(tr); mu = y[tr].mean()
        pca = PCA(s.pca, random_state=0).fit(EMB[tr]) if 'emb' in s.blocks else None
        tfm = None
        if 'tfidf' in s.blocks:   # out-of-fold tf-idf predictions for training rows
            oof = np.zeros(n); ff = make_folds(s.groups[tr], 3, seed=1)
            for k in range(3):
                oof[tr[ff == k]] = Tfidf().fit(tr[ff != k], proto, 3)(tr[ff == k])
            full = Tfidf().fit(tr, proto, 3); trset = set(tr.tolist())
            tfm = lambda idx: np.array([oof[i] for i in idx]) if set(idx.tolist()) <= trset else full(idx)
        X = s.X(tr, proto, pool, mu, pca, tfm)
        if s.kind == 'ridge':
            f = ridge_fit(X, y[tr], p)
        else:
            m = HistGradientBoostingRegressor(max_iter=p[0], learning_rate=p[1], max_depth=3,
                                              min_samples_leaf=30, l2_regularization=1.0,
                                              early_stopping=False, random_state=0).fit(X, y[tr])
            f = m.predict
        return lambda idx: f(s.X(idx, proto, pool, mu, pca, tfm))

# ----------------------------------------------------------------------------- evaluation
def inner_cv(model, tr, proto, groups, p, k=3):
    ff = make_folds(groups[tr], k, seed=1); oof = np.zeros(len(tr))
    for j in range(k):
        oof[ff == j] = model.fit(tr[ff != j], proto, p)(tr[ff == j])
    return oof

def known_mask(idx, proto, pool):
    return track_feats(idx, proto, pool)[:, 4] > 0

def evaluate(model, proto, folds, groups, name, splits=None):
    model.groups = groups
    pred = np.full(n, np.nan); lo = pred.copy(); hi = pred.copy(); pv = pred.copy(); base = pred.copy()
    known = np.zeros(n, bool); fold_id = np.full(n, -1); chosen = []; pl = np.full(n, np.nan)
    splits = splits or [(np.where(folds != k)[0], np.where(folds == k)[0]) for k in range(folds.max() + 1)]
    for k, (tr, te) in enumerate(splits):
        best = None
        for p in model.grid:
            oof = inner_cv(model, tr, proto, groups, p)
            mse = np.mean((oof - y[tr]) ** 2)
            if best is None or mse < best[0]: best = (mse, p, oof)
        _, p, oof = best; chosen.append(p)
        f = model.fit(tr, proto, p); pr = f(te)
        pool = pool_of(tr)
        # heteroscedastic residual distribution: by known / unknown author (inner OOF residuals)
        ktr = known_mask(tr, proto, pool)
        # for A, inner-fold "known" differs from outer; use the inner pools' view approximately
        kte = known_mask(te, proto, pool)
        res = y[tr] - oof
        for flag in (False, True):
            rs = res[ktr == flag] if (ktr == flag).sum() >= 50 else res
            sel = kte == flag
            lo[te[sel]] = pr[sel] + np.quantile(rs, 0.1); hi[te[sel]] = pr[sel] + np.quantile(rs, 0.9)
            pv[te[sel]] = [(v + rs >= math.log1p(VIRAL_THR)).mean() for v in pr[sel]]
        from sklearn.linear_model import LogisticRegression
        Z = lambda v, kk: np.c_[v, kk, v * kk]
        lr = LogisticRegression(C=1.0).fit(Z(oof, ktr.astype(float)), viral[tr])
        pl[te] = lr.predict_proba(Z(pr, kte.astype(float)))[:, 1]
        pred[te] = pr; known[te] = kte; fold_id[te] = k; base[te] = viral[tr].mean()
    r = summarize(name, pred, lo, hi, pv, base, known, fold_id, chosen)
    m = fold_id >= 0
    r['brier_skill_logit'] = 1 - np.mean((pl[m] - viral[m]) ** 2) / np.mean((base[m] - viral[m]) ** 2)
    inside = (lo <= y) & (y <= hi)
    r['cover_cold'] = inside[m & ~known].mean(); r['cover_known'] = inside[m & known].mean() if (m & known).any() else float('nan')
    r['width'] = np.mean(hi[m] - lo[m])
    return r

def summarize(name, pred, lo, hi, pv, base, known, fold_id, chosen):
    m = fold_id >= 0
    P, Y, S, Vv = pred[m], y[m], size[m], viral[m]
    brier = np.mean((pv[m] - Vv) ** 2); brier0 = np.mean((base[m] - Vv) ** 2)
    cold = m & ~known
    fm = [np.mean(np.abs(pred[fold_id == k] - y[fold_id == k])) for k in sorted(set(fold_id[m]))]
    spf = [spearmanr(pred[fold_id == k], size[fold_id == k])[0] if np.ptp(pred[fold_id == k]) > 0 else 0.0
           for k in sorted(set(fold_id[m]))]
    return dict(name=name, n=int(m.sum()), spearman=spearmanr(P, S)[0], sp_fold=float(np.mean(spf)), mae=np.mean(np.abs(P - Y)),
                auc=roc_auc_score(Vv, P) if np.ptp(P) > 0 else 0.5, cover=np.mean((lo[m] <= Y) & (Y <= hi[m])),
                brier=brier, brier_skill=1 - brier / brier0,
                cold_n=int(cold.sum()), cold_sp=spearmanr(pred[cold], size[cold])[0] if cold.sum() > 2 and np.ptp(pred[cold]) > 0 else float('nan'),
                known_sp=spearmanr(pred[m & known], size[m & known])[0] if (m & known).sum() > 2 and np.ptp(pred[m & known]) > 0 else float('nan'),
                fold_mae=fm, params=chosen, pred=pred, fold_id=fold_id)

def line(r, const=None):
    fm = ' '.join(f'{v:.3f}' for v in r['fold_mae'])
    worse = ''
    if const is not None:
        worse = ' worse-than-const-folds=%d' % sum(a > b + 1e-12 for a, b in zip(r['fold_mae'], const['fold_mae']))
    return (f"{r['name']:<28} sp={r['spearman']:.3f} spFold={r['sp_fold']:.3f} mae={r['mae']:.3f} auc10={r['auc']:.3f} "
            f"cov80={r['cover']:.3f} brierSkill={100*r['brier_skill']:+.1f}% cold(n={r['cold_n']})sp={r['cold_sp']:.3f} "
            f"known_sp={r['known_sp']:.3f} foldMAE=[{fm}]{worse} params={r['params']}")

def boot_diff(a, b, B=1000):
    m = a['fold_id'] >= 0; pa, pb, s = a['pred'][m], b['pred'][m], size[m]
    d = []
    for _ in range(B):
        ix = RNG.integers(0, len(s), len(s))
        d.append(spearmanr(pa[ix], s[ix])[0] - spearmanr(pb[ix], s[ix])[0])
    d = np.array(d)
    return spearmanr(pa, s)[0] - spearmanr(pb, s)[0], np.quantile(d, [0.025, 0.975]), (d <= 0).mean()

def line2(r):
    return (line(r) + f" | brierSkill(logistic)={100*r['brier_skill_logit']:+.1f}% cov80 cold/known="
            f"{r['cover_cold']:.3f}/{r['cover_known']:.3f} width={r['width']:.2f}")

def final():
    """The recommended recipe and its variants, with logistic P(viral)."""
    fold_story = make_folds(story); fold_sa = make_folds(story_author)
    rec = lambda: Combined('ridge', ('track', 'emb'), pca=8, k_eb=4.0)
    cands = [('const', Const()), ('author EB', Author()),
             ('REC track+pca8', rec()),
             ('REC +tfidf', Combined('ridge', ('track', 'emb', 'tfidf'), pca=8, k_eb=4.0)),
             ('REC +aud', Combined('ridge', ('track', 'aud', 'emb'), pca=8, k_eb=4.0)),
             ('REC pca16', Combined('ridge', ('track', 'emb'), pca=16, k_eb=4.0)),
             ('REC k_eb=2', Combined('ridge', ('track', 'emb'), pca=8, k_eb=2.0))]
    order = np.argsort(T); blocks = np.array_split(order, 5)
    fwd = [(np.concatenate(blocks[:k]), blocks[k]) for k in range(1, 5)]
    for proto, folds, groups, splits in (('A', fold_story, story, None), ('B', fold_sa, story_author, None),
                                         ('B0', fold_sa, story_author, None), ('B', None, story_author, fwd)):
        print(f"\n=== final: protocol {proto}{' forward' if splits else ''} ===")
        res = {}
        for name, m in (cands if proto != 'B0' and not splits else cands[:3]):
            res[name] = evaluate(m, proto, folds, groups, name, splits=splits)
            print(line2(res[name]), flush=True)
        d, ci, p = boot_diff(res['REC track+pca8'], res['author EB'])
        print(f'bootstrap REC - author EB: dSpearman={d:+.3f} 95%CI=[{ci[0]:+.3f},{ci[1]:+.3f}] P(d<=0)={p:.3f}')
    # coefficients of the recipe fitted on everything (protocol B features), for the record
    m = rec(); m.groups = story_author; tr = np.arange(n); pool = pool_of(tr); mu = y.mean()
    pca = PCA(8, random_state=0).fit(EMB); X = m.X(tr, 'B', pool, mu, pca, None)
    sc = StandardScaler().fit(X); rg = Ridge(alpha=100).fit(sc.transform(X), y)
    print('\nrecipe on all data (B features): mu=%.3f coefs(std units)=' % mu,
          np.round(rg.coef_, 3).tolist(), 'intercept=%.3f' % rg.intercept_)
    print('explained var of PCA8 of pooled vector: %.2f' % pca.explained_variance_ratio_.sum())

# ----------------------------------------------------------------------------- main
if __name__ == '__main__':
    t0 = time.time()
    fold_story = make_folds(story)
    fold_sa = make_folds(story_author)
    print(f'cascades {n}; final size median {np.median(size):.0f}, viral threshold (top 10%) size >= {VIRAL_THR:.0f} '
          f'({viral.sum()} viral); authors {len(by_author)}; story groups {len(set(story))}; '
          f'story+author groups {len(set(story_author))} (largest {collections.Counter(story_author).most_common(1)[0][1]})')
    print('fold sizes story-only', np.bincount(fold_story), 'story+author', np.bincount(fold_sa))
    for proto, folds in (('A', fold_story), ('B', fold_sa)):
        kn = []
        for k in range(5):
            te = np.where(folds == k)[0]; kn.append(known_mask(te, proto, pool_of(np.where(folds != k)[0])).sum())
        print(f'protocol {proto}: test cascades with a known author = {sum(kn)} / {n}')
    nb0 = sum(1 for i in range(n) if any(T[j] < T[i] for j in by_author[authors[i]]))
    print(f'(B with no 7-day maturity gap: {nb0} / {n})')

    models = [('const', Const()), ('author EB', Author()), ('audience', Audience()),
              ('text hand', Hand()), ('text tfidf', Tfidf()), ('text pooled-vec', Emb()),
              ('comb ridge', Combined('ridge')),
              ('comb ridge +tfidf', Combined('ridge', ('track', 'aud', 'hand', 'emb', 'tfidf'))),
              ('comb gbm', Combined('gbm')),
              ('comb -track', Combined('ridge', ('aud', 'hand', 'emb'))),
              ('comb -aud', Combined('ridge', ('track', 'hand', 'emb'))),
              ('comb -hand', Combined('ridge', ('track', 'aud', 'emb'))),
              ('comb -emb', Combined('ridge', ('track', 'aud', 'hand'))),
              ('comb track+aud only', Combined('ridge', ('track', 'aud'))),
              ('comb text only', Combined('ridge', ('hand', 'emb'))),
              ('comb pca32', Combined('ridge', pca=32)),
              ('comb pca8', Combined('ridge', pca=8)),
              ('uid alone (not in spec)', Combined('ridge', ('uid',))),
              ('comb +uid (not in spec)', Combined('ridge', ('track', 'aud', 'hand', 'emb', 'uid')))]
    if QUICK: models = models[:3] + models[6:7]
    if '--final' in sys.argv:
        final(); sys.exit()
    results = {}
    for proto, folds, groups in (('A', fold_story, story), ('B', fold_sa, story_author)):
        print(f'\n=== protocol {proto} ===')
        res = {}
        for name, m in models:
            res[name] = evaluate(m, proto, folds, groups, name)
            print(line(res[name], res.get('const')), f'[{time.time()-t0:.0f}s]', flush=True)
        for other in ('comb ridge', 'comb gbm', 'comb ridge +tfidf'):
            if other in res:
                d, ci, p = boot_diff(res[other], res['author EB'])
                print(f'bootstrap {other} - author EB: dSpearman={d:+.3f} 95%CI=[{ci[0]:+.3f},{ci[1]:+.3f}] P(d<=0)={p:.3f}')
        results[proto] = res

    # forward-chaining check (train on the past only; store-based track record)
    order = np.argsort(T); blocks = np.array_split(order, 5)
    splits = [(np.concatenate(blocks[:k]), blocks[k]) for k in range(1, 5)]
    print('\n=== protocol B-forward (time blocks; train on earlier blocks, test next) ===')
    for k, (tr, te) in enumerate(splits):
        print(f'block {k+1}: train {len(tr)} test {len(te)} {time.strftime("%Y-%m", time.gmtime(T[te].min()))}..{time.strftime("%Y-%m", time.gmtime(T[te].max()))}')
    fw = {}
    for name, m in models[:2] + [('text hand', Hand()), ('text pooled-vec', Emb()), ('comb ridge', Combined('ridge'))]:
        fw[name] = evaluate(m, 'B', None, story_author, name, splits=splits)
        print(line(fw[name], fw.get('const')))
    print(f'total {time.time()-t0:.0f}s')
