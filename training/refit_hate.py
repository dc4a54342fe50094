#!/usr/bin/env python3
"""Replaces a committed model's hate head with one that holds up on tweets unlike its training set.

The fine-tuned hate head reaches 74.6 macro-F1 on val and 42.7 on the test set, whose tweets
differ from train and val (other targets, other words): fine-tuning let it lean on words that
only train and val tie to hate. This head is a class-balanced logistic regression on the same
sentence embedding, standardised, with an L2 penalty chosen on val (PENALTIES); a stronger
penalty than fine-tuning's keeps it on what hateful tweets share. The standardisation is folded
into the weights, so the graph does not change: the weight rows are [0, w / sd], the biases
[0, b - w . mean / sd], and softmax over the two logits is the regression's sigmoid. The
threshold is then chosen on val. No other head and no encoder weight changes.

    python scripts/build_model.py --src models/minilm-tweets --out /tmp/b --force
    python training/refit_hate.py DATA --model models/minilm-tweets --bundle /tmp/b/minilm-tweets-fp32

Reads hate train and val only; writes weights.safetensors and pulse-model.json in --model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distill  # noqa: E402
import train  # noqa: E402


PENALTIES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def ridge_logistic(x: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression with penalty / 2 * |w|^2 added to the mean loss."""
    xt = torch.tensor(x)
    yy = torch.tensor(y, dtype=torch.float64)
    pos = float(y.mean())
    sample_weight = torch.where(yy > 0, 0.5 / pos, 0.5 / (1 - pos))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = xt @ w + b
        loss = (sample_weight * F.binary_cross_entropy_with_logits(z, yy, reduction="none")).mean()
        loss = loss + penalty / 2 * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.detach().numpy()[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--model", type=Path, required=True, help="committed model directory to rewrite")
    ap.add_argument("--bundle", type=Path, required=True, help="that model's built float32 bundle")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("/var/tmp/pulse-train/cache"),
                    help="where the embeddings are cached, as distill.py caches the teacher's outputs")
    args = ap.parse_args()

    tok = train.load_tokenizer()
    xs, ys = {}, {}
    for split in ("train", "val"):
        text, ys[split] = train.load_split(args.data_dir, "hate", split)
        seqs = train.encode(tok, text)
        emb = distill.teacher_logits(args.bundle, seqs, args.cache, args.threads, pooled=True)["pooled"]
        xs[split] = emb.astype(np.float64)

    x, y = xs["train"], ys["train"]
    mean, sd = x.mean(0), x.std(0) + 1e-9
    z = {k: (v - mean) / sd for k, v in xs.items()}
    best = None
    for penalty in PENALTIES:
        w, b = ridge_logistic(z["train"], y, penalty)
        t, f1 = train.tune_threshold("hate", np.stack([np.zeros(len(z["val"])), z["val"] @ w + b], 1), ys["val"])
        print(f"penalty {penalty:g}: val macro-F1 {f1 * 100:.2f} at threshold {t}", flush=True)
        if best is None or f1 > best[0] + 1e-9:
            best = (f1, penalty, w, b)
    _, penalty, w, b = best
    # Standardisation folded into the head: w . (x - mean) / sd + b.
    weight = np.zeros((2, x.shape[1]), dtype=np.float16)
    weight[1] = (w / sd).astype(np.float16)
    bias = np.array([0.0, b - float(w @ (mean / sd))], dtype=np.float16)

    def logits(emb: np.ndarray) -> np.ndarray:
        return emb @ weight.astype(np.float64).T + bias.astype(np.float64)

    threshold, val_f1 = train.tune_threshold("hate", logits(xs["val"]), ys["val"])
    train_f1 = train.score("hate", y, (train.softmax(logits(x))[:, 1] >= threshold).astype(np.int64))
    print(f"hate head: penalty {penalty:g}, threshold {threshold}; "
          f"macro-F1 train {train_f1 * 100:.2f}, val {val_f1 * 100:.2f}", flush=True)

    path = args.model / "weights.safetensors"
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors["heads.hate.weight"] = weight
    tensors["heads.hate.bias"] = bias
    save_file(tensors, str(path), metadata=meta)

    manifest_path = args.model / "pulse-model.json"
    manifest = json.loads(manifest_path.read_text())
    for head in manifest["heads"]:
        if head["output"] == "hate":
            head["threshold"] = threshold
    manifest.setdefault("training", {})["hate_head"] = {
        "method": "class-balanced logistic regression on the standardised sentence embedding",
        "penalty": penalty,
        "threshold_on": "val",
        "val_fp16_weights": round(val_f1 * 100, 2),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {path} and {manifest_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
