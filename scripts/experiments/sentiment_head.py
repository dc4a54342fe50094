"""Whether a sentiment head refitted on frozen sentence embeddings holds up better on the shifted
sentiment test set, as the refitted hate head does.

An offline check, not part of Pulse: for a built float32 bundle (scripts/build_model.py), a
class-balanced softmax regression on the standardised sentence embedding the heads read, trained
on the sentiment training tweets, for each L2 penalty; macro-recall on val by argmax and with
biases tuned on val, against the bundle's own head. With --test, test figures are printed beside
them for the report; the penalty is chosen on val before reading them.

    python scripts/experiments/sentiment_head.py .pulse/models/minilm-tweets-l4-fp32 ../shared/data [--test]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
import distill  # noqa: E402
import train  # noqa: E402

PENALTIES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3)


def softmax_regression(x: np.ndarray, y: np.ndarray, penalty: float, k: int = 3):
    """Class-balanced multinomial logistic regression with penalty / 2 * |W|^2 added."""
    xt, yt = torch.tensor(x), torch.tensor(y)
    weight = torch.tensor(len(y) / (k * np.bincount(y, minlength=k)), dtype=torch.float64)
    w = torch.zeros(x.shape[1], k, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xt @ w + b, yt, weight=weight) + penalty / 2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--test", action="store_true", help="also print test figures, for the report")
    ap.add_argument("--cache", type=Path, default=Path("/var/tmp/pulse-train/cache"))
    args = ap.parse_args()

    tok = train.load_tokenizer()
    splits = ["train", "val"] + (["test"] if args.test else [])
    emb, logits, y = {}, {}, {}
    for split in splits:
        text, y[split] = train.load_split(args.data_dir, "sentiment", split)
        out = distill.teacher_logits(args.bundle, train.encode(tok, text), args.cache, 2, pooled=True)
        emb[split] = out["pooled"].astype(np.float64)
        logits[split] = out["sentiment"].astype(np.float64)

    def recall(split, lg, bias=(0.0, 0.0, 0.0)):
        return train.score("sentiment", y[split], np.argmax(lg + np.asarray(bias), axis=1)) * 100

    def report(name, lg):
        bias, _ = train.tune_sentiment_bias(lg["val"], y["val"])
        line = f"{name}: val argmax {recall('val', lg['val']):.2f}, biases {bias} {recall('val', lg['val'], bias):.2f}"
        if args.test:
            line += f" | test argmax {recall('test', lg['test']):.2f}, biased {recall('test', lg['test'], bias):.2f}"
        print(line, flush=True)

    report("bundle's head", logits)
    mean, sd = emb["train"].mean(0), emb["train"].std(0) + 1e-9
    z = {s: (v - mean) / sd for s, v in emb.items()}
    for penalty in PENALTIES:
        w, b = softmax_regression(z["train"], y["train"], penalty)
        report(f"refit, penalty {penalty:g}", {s: v @ w + b for s, v in z.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
