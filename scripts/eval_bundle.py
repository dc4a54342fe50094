#!/usr/bin/env python3
"""Reference evaluation of a Pulse model bundle with onnxruntime (no torch).

    python scripts/eval_bundle.py BUNDLE_DIR DATA_DIR [--split val|test] [--record JSON]

BUNDLE_DIR holds model.onnx, tokenizer.json and pulse-model.json; DATA_DIR holds
{sentiment,emotion,offensive,hate}/{train,val,test}.tsv (`label<TAB>text` per line). Applies the
bundle's own decision rules, exactly as the server does:

    sentiment  argmax(logits + logit_bias)
    emotion    argmax(softmax(logits))
    offensive  softmax P(offensive) >= threshold
    hate       softmax P(hate) >= threshold

and prints, per task, the literature's metric (sentiment: macro-averaged recall; the others:
macro-F1), the accuracy and the throughput. With --record, the figures are also written into that
pulse-model.json under metrics_by_precision[<bundle precision>][<split>] (and under "metrics" for
the default bundle, float32). Needs numpy, onnxruntime and tokenizers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

# The bundle scripts/models.sh points PULSE_MODEL_DIR at; its figures are the json's "metrics".
DEFAULT_PRECISION = "fp32"

_HANDLE = re.compile(r"@\w+")
_URL = re.compile(r"https?://\S+")
_UESC = re.compile(r"\\u([0-9a-fA-F]{4})")


def preprocess(rule: str, text: str) -> str:
    if rule == "tweet":
        text = _HANDLE.sub("@user", text)
        text = _URL.sub("http", text)
    elif rule not in ("", "none", None):
        raise ValueError(f"unknown preprocess rule {rule!r}")
    return text


def clean_source_text(text: str) -> str:
    """Undoes escaping left in some of the data files (literal \\uXXXX and \\" sequences); the
    same cleaning training/train.py applies when it reads them."""
    text = _UESC.sub(lambda m: chr(int(m.group(1), 16)), text)
    return text.replace('\\""""', '"').replace('\\"', '"')


def load_split(path: Path, labels: list[str]) -> tuple[list[str], np.ndarray]:
    texts, ys = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                label, text = line.split("\t", 1)
                texts.append(clean_source_text(text))
                ys.append(labels.index(label))
    return texts, np.array(ys, dtype=np.int64)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def decide(head: dict, logits: np.ndarray) -> np.ndarray:
    """Index of the predicted label per row, following the head's decision rule."""
    if "threshold" in head:
        pos = head["labels"].index(head["positive"][0])
        p = softmax(logits)[:, pos]
        return np.where(p >= head["threshold"], pos, 1 - pos)
    bias = np.asarray(head.get("logit_bias", [0.0] * logits.shape[1]), dtype=np.float32)
    return np.argmax(logits + bias, axis=1)


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


class Bundle:
    def __init__(self, path: Path, threads: int):
        self.meta = json.loads((path / "pulse-model.json").read_text())
        self.tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tok.enable_truncation(self.meta["max_length"])
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest in the batch
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path / "model.onnx"), so, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.sess.get_inputs()}

    def logits(self, texts: list[str], batch_size: int) -> dict[str, np.ndarray]:
        rule = self.meta.get("preprocess", "none")
        enc_names = self.meta["inputs"]
        outs = [h["output"] for h in self.meta["heads"]]
        order = np.argsort([len(t) for t in texts])
        result = {o: None for o in outs}
        for i in range(0, len(texts), batch_size):
            idx = order[i : i + batch_size]
            encs = self.tok.encode_batch([preprocess(rule, texts[j]) for j in idx])
            feed = {
                enc_names["input_ids"]: np.array([e.ids for e in encs], dtype=np.int64),
                enc_names["attention_mask"]: np.array([e.attention_mask for e in encs], dtype=np.int64),
            }
            if enc_names.get("token_type_ids") and enc_names["token_type_ids"] in self.input_names:
                feed[enc_names["token_type_ids"]] = np.array([e.type_ids for e in encs], dtype=np.int64)
            for o, v in zip(outs, self.sess.run(outs, feed)):
                if result[o] is None:
                    result[o] = np.zeros((len(texts), v.shape[1]), dtype=np.float32)
                result[o][idx] = v
        return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("data", type=Path)
    ap.add_argument("--split", choices=["val", "test"], default="val")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--record", type=Path, help="pulse-model.json to record the figures in")
    args = ap.parse_args()

    bundle = Bundle(args.bundle, args.threads)
    meta = bundle.meta
    precision = meta.get("precision", "fp32")
    print(f"{meta['name']} {meta.get('version', '')} {precision} on {args.split} "
          f"(onnxruntime {ort.__version__}, {args.threads} thread(s))")
    figures = {}
    for head in meta["heads"]:
        task = head["output"]
        texts, y = load_split(args.data / task / f"{args.split}.tsv", head["labels"])
        t0 = time.perf_counter()
        # One encoder pass gives all heads; the per-task loop evaluates each task's own texts.
        logits = bundle.logits(texts, args.batch_size)[task]
        secs = time.perf_counter() - t0
        pred = decide(head, logits)
        k = len(head["labels"])
        if task == "sentiment":
            name, value = "macro_recall", macro_recall(y, pred, k)
        else:
            name, value = "macro_f1", macro_f1(y, pred, k)
        acc = float(np.mean(pred == y))
        figures[task] = {"metric": name, "value": round(value * 100, 2), "accuracy": round(acc * 100, 2),
                         "n": len(y), "texts_per_s": round(len(y) / secs, 1)}
        print(f"  {task:10s} {name:13s} {value * 100:6.2f}  accuracy {acc * 100:6.2f}  "
              f"n={len(y):5d}  {len(y) / secs:7.1f} texts/s")
    if args.record:
        import fcntl

        # Several evaluations may run side by side; take turns at the read-modify-write.
        with open(args.record, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            rec = json.load(f)
            by = rec.setdefault("metrics_by_precision", {})
            by.setdefault(precision, {})[args.split] = {t: fig["value"] for t, fig in figures.items()}
            if precision == DEFAULT_PRECISION:
                rec.setdefault("metrics", {})[args.split] = {t: fig["value"] for t, fig in figures.items()}
            f.seek(0)
            f.truncate()
            f.write(json.dumps(rec, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
