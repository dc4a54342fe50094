#!/usr/bin/env python3
"""Distils the bundled tweet model into a smaller student with the same heads and files.

The teacher is the float32 bundle scripts/build_model.py writes (model.onnx run with
onnxruntime, so torch never needs the teacher's training state). Its logits for all four heads
are computed once for every training text of every task and cached; the student then learns,
on every text, all four of the teacher's distributions (temperature-scaled KL) plus the text's
own hard label (the class-weighted cross-entropy of train.py). A sentiment tweet thus also
teaches emotion, offensiveness and hate through the teacher, which is what lets a 3-layer
student keep up on emotion's 3,257 labelled texts.

The student starts from the teacher: its layers are copies of the teacher layers named by
--layers (recovered from the ONNX graph: each MatMul's weight is named after the bias added to
its output), the embeddings are the base model's (frozen, so the export can leave the word
embeddings out as train.py's does) and the heads are the teacher's. With --ffn N the student
keeps all the layers it is given but only N of each layer's 1,536 feed-forward neurons, those
that carry the most on 2,000 training tweets.

    python training/distill.py DATA --teacher .pulse/models/minilm-tweets-fp32 \
        --out models/minilm-tweets-l4 --layers 0,3,4,5 --ffn 768 --head-weight offensive=2 --minutes 75

Writes graph.onnx, weights.safetensors and pulse-model.json into --out, as train.py does; val
decides the checkpoint, the sentiment biases and the thresholds; test is never read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train  # noqa: E402  (the data, model, metrics and export of the teacher's training)

TASKS = train.TASKS


def pooled_output(model) -> str:
    """The tensor the heads read: the input every head's Gemm shares."""
    return next(n.input[0] for n in model.graph.node if n.op_type == "Gemm" and n.output[0] in TASKS)


def teacher_session(bundle: Path, threads: int, pooled: bool = False):
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    model = str(bundle / "model.onnx")
    if pooled:
        m = onnx.load(model)
        m.graph.output.append(onnx.helper.make_tensor_value_info(pooled_output(m), onnx.TensorProto.FLOAT, None))
        model = m.SerializeToString()
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def teacher_logits(bundle: Path, seqs: list[list[int]], cache: Path, threads: int,
                   pooled: bool = False) -> dict[str, np.ndarray]:
    """The teacher's logits for every head on every sequence, cached by model and input hash;
    with `pooled`, also its sentence embedding (the mean-pooled last layer the heads read) under
    the key "pooled"."""
    h = hashlib.sha256((bundle / "model.onnx").read_bytes())
    h.update(json.dumps(seqs).encode())
    keys = [*TASKS, "pooled"] if pooled else list(TASKS)
    path = cache / f"teacher-{h.hexdigest()[:16]}{'-pooled' if pooled else ''}.npz"
    if path.exists():
        with np.load(path) as z:
            return {t: z[t] for t in keys}
    sess = teacher_session(bundle, threads, pooled)
    out: dict[str, np.ndarray] = {}
    # The heads by name, in TASKS order; the embedding is the output appended last.
    names = [*TASKS, sess.get_outputs()[-1].name] if pooled else list(TASKS)
    order = np.argsort([len(s) for s in seqs], kind="stable")
    t0 = time.time()
    for i in range(0, len(seqs), 64):
        idx = order[i : i + 64]
        ids, mask = train.pad_batch([seqs[j] for j in idx])
        res = sess.run(names, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        for t, v in zip(keys, res):
            if t not in out:
                out[t] = np.zeros((len(seqs), v.shape[1]), dtype=np.float32)
            out[t][idx] = v
    print(f"teacher logits for {len(seqs)} texts in {time.time() - t0:.0f}s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def teacher_state(bundle: Path) -> dict[str, torch.Tensor]:
    """The teacher's parameters under train.py's names, read back from its ONNX graph.

    Biases, LayerNorm parameters, embeddings and heads keep their names in the export; a
    Linear's weight becomes an anonymous MatMul initializer (transposed), found through the Add
    of its bias.
    """
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(bundle / "model.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    state = {k: torch.from_numpy(v.copy()) for k, v in inits.items() if k.startswith(("bert.", "heads."))}
    consumers: dict[str, list] = {}
    for n in m.graph.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    for n in m.graph.node:
        if n.op_type != "MatMul" or n.input[1] not in inits or n.input[1].startswith("bert."):
            continue
        for c in consumers.get(n.output[0], []):
            bias = next((x for x in c.input if x.endswith(".bias") and x in inits), None)
            if c.op_type == "Add" and bias:
                state[bias[: -len(".bias")] + ".weight"] = torch.from_numpy(inits[n.input[1]].T.copy())
    return state


def build_student(teacher: dict[str, torch.Tensor], layers: list[int]) -> train.MultiTask:
    cfg = json.loads((train.base_model_dir() / "config.json").read_text())
    # A student built by an earlier stage may have narrower feed-forward blocks than the base.
    width = teacher["bert.encoder.layer.0.intermediate.dense.bias"].shape[0]
    cfg = dict(cfg, num_hidden_layers=len(layers), intermediate_size=width)
    model = train.MultiTask(cfg)
    from safetensors.torch import load_file

    # The embedding block was frozen in the teacher's training, so the base model's is the
    # teacher's (the export may fold the token-type embedding away; the base file has it).
    base = load_file(str(train.base_model_dir() / "model.safetensors"))
    sd = {"bert." + k: v for k, v in base.items() if k.startswith("embeddings.") and not k.endswith("position_ids")}
    for k, v in teacher.items():
        if k.startswith("bert.encoder.layer."):
            src = int(k.split(".")[3])
            if src in layers:
                parts = k.split(".")
                parts[3] = str(layers.index(src))
                sd[".".join(parts)] = v
        elif k.startswith("heads."):
            sd[k] = v
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert not missing, missing
    for p in model.bert.embeddings.parameters():
        p.requires_grad_(False)
    return model


def prune_ffn(model: train.MultiTask, sample: list[list[int]], width: int) -> None:
    """Keeps each layer's `width` feed-forward neurons that carry the most: their mean absolute
    activation on real tweets times the norm of their output weights.

    A narrower feed-forward block keeps all six layers (and the attention of each) while doing
    a fraction of the work; the neurons that stay start where the teacher's were.
    """
    layers = list(model.bert.encoder.layer)
    carried = [torch.zeros(layer.intermediate.dense.out_features) for layer in layers]
    mask_of: dict[str, torch.Tensor] = {}

    def hook(i):
        def record(_module, _inputs, out):
            carried[i] += (F.gelu(out).abs() * mask_of["mask"]).sum((0, 1))
        return record

    hooks = [layer.intermediate.dense.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    model.eval()
    with torch.no_grad():
        for start in range(0, len(sample), 64):
            ids, mask = train.pad_batch(sample[start:start + 64])
            mask_of["mask"] = mask.unsqueeze(-1).float()
            model.bert(ids, mask)
    for h in hooks:
        h.remove()
    for i, layer in enumerate(layers):
        w_in, b_in = layer.intermediate.dense.weight.data, layer.intermediate.dense.bias.data
        w_out, b_out = layer.output.dense.weight.data, layer.output.dense.bias.data
        score = carried[i] * w_out.norm(dim=0)
        keep = torch.sort(torch.topk(score, width).indices).values
        inner = torch.nn.Linear(w_in.shape[1], width)
        inner.weight.data, inner.bias.data = w_in[keep].clone(), b_in[keep].clone()
        outer = torch.nn.Linear(width, w_out.shape[0])
        outer.weight.data, outer.bias.data = w_out[:, keep].clone(), b_out.clone()
        layer.intermediate.dense, layer.output.dense = inner, outer


def augment(seqs: list[list[int]], copies: int, rng: np.random.Generator) -> list[list[int]]:
    """Unlabelled variants of the training texts, for the teacher to label and the student to
    imitate (the data augmentation of TinyBERT, without a masked-language model to draw
    replacement words from). Each variant either drops about 15% of a text's tokens or joins the
    start of one text to the end of another: texts the student has not seen whose teacher
    distributions lie between the labelled ones, so it learns the teacher's function rather
    than its answers on 72,000 points."""
    out = []
    n = len(seqs)
    for _ in range(copies):
        for s in seqs:
            cls, body, sep = s[0], s[1:-1], s[-1]
            if len(body) < 4 or rng.random() < 0.5:
                kept = [t for t in body if rng.random() >= 0.15] or body
            else:
                other = seqs[int(rng.integers(n))][1:-1]
                kept = body[: int(rng.integers(1, len(body)))] + other[int(rng.integers(0, max(1, len(other)))) :]
            out.append([cls, *kept[: train.MAX_LENGTH - 2], sep])
    return out


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    s = F.log_softmax(student / temperature, dim=1)
    t = F.softmax(teacher / temperature, dim=1)
    return F.kl_div(s, t, reduction="batchmean") * temperature**2


def retune(bundle: Path, model_dir: Path, val: dict) -> None:
    """Tunes the decision rules again on a built float32 bundle's own val logits and writes
    them into the committed pulse-model.json (for a model exported before rules were tuned
    on its float16 weights)."""
    sess = teacher_session(bundle, 2)
    logits = {}
    for t in TASKS:
        out = np.zeros((len(val[t][0]), len(TASKS[t])), dtype=np.float32)
        order = np.argsort([len(s) for s in val[t][0]], kind="stable")
        for i in range(0, len(order), 64):
            idx = order[i : i + 64]
            ids, mask = train.pad_batch([val[t][0][j] for j in idx])
            out[idx] = sess.run([t], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        logits[t] = out
    heads, metrics = train.tune_rules(logits, val)
    path = model_dir / "pulse-model.json"
    meta = json.loads(path.read_text())
    meta["heads"] = heads
    meta["metrics"] = {"val": {k: v["value"] for k, v in metrics.items()}}
    meta["training"]["val_bundle_fp32"] = metrics
    path.write_text(json.dumps(meta, indent=2) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--teacher", type=Path, required=True, help="the float32 bundle directory")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--layers", default="0,3,5", help="teacher layers the student starts from")
    ap.add_argument("--init", type=Path,
                    help="start from this built bundle's layers instead of the teacher's (a second stage: "
                         "--layers then names its layers, e.g. 0,1,2)")
    ap.add_argument("--minutes", type=float, default=45.0, help="training time budget (wall clock)")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=2e-4)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--hard-weight", type=float, default=0.5, help="weight of the hard-label loss")
    ap.add_argument("--head-weight", action="append", default=[], metavar="TASK=W",
                    help="weight of one head's losses (repeatable; default 1 each)")
    ap.add_argument("--pooled-weight", type=float, default=0.0, metavar="W",
                    help="weight of the mean squared distance to the teacher's sentence embedding")
    ap.add_argument("--augment", type=int, default=0, metavar="N",
                    help="add N unlabelled variants of every training text, labelled by the teacher only")
    ap.add_argument("--unlabelled", type=Path, metavar="FILE",
                    help="more texts, one per line, labelled by the teacher only (training/unlabelled_corpus.py)")
    ap.add_argument("--ffn", type=int, default=0, metavar="N",
                    help="keep N feed-forward neurons per layer (of 1,536), the ones that carry the most")
    ap.add_argument("--evals", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--cache", type=Path, default=Path("/var/tmp/pulse-train/cache"))
    ap.add_argument("--retune", type=Path, metavar="BUNDLE",
                    help="only tune the decision rules again on this built float32 bundle of --out")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    random.seed(args.seed)
    layers = [int(x) for x in args.layers.split(",")]
    head_weight = {t: 1.0 for t in TASKS}
    for item in args.head_weight:
        task, _, w = item.partition("=")
        if task not in head_weight:
            sys.exit(f"distill: --head-weight names an unknown task: {task}")
        head_weight[task] = float(w)
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    tok = train.load_tokenizer()
    seqs, task_of, label_of, val = [], [], [], {}
    for ti, t in enumerate(TASKS):
        x, y = train.load_split(args.data_dir, t, "train")
        seqs.extend(train.encode(tok, x))
        task_of.extend([ti] * len(y))
        label_of.extend(y.tolist())
        vx, vy = train.load_split(args.data_dir, t, "val")
        val[t] = (train.encode(tok, vx), vy)
    if args.retune:
        retune(args.retune, args.out, val)
        return 0
    print(f"{len(seqs)} training texts", flush=True)
    use_pooled = args.pooled_weight > 0
    soft = teacher_logits(args.teacher, seqs, args.cache, threads=2, pooled=use_pooled)
    # Texts only the teacher labels: variants of the training texts and texts from elsewhere.
    unlabelled = []
    if args.augment:
        unlabelled.append((augment(seqs, args.augment, np.random.default_rng(args.seed + 1)),
                           "unlabelled variants added"))
    if args.unlabelled:
        lines = args.unlabelled.read_text(encoding="utf-8").splitlines()
        unlabelled.append((train.encode(tok, [t for t in lines if t.strip()]),
                           f"unlabelled texts added from {args.unlabelled}"))
    for extra, what in unlabelled:
        more = teacher_logits(args.teacher, extra, args.cache, threads=2, pooled=use_pooled)
        soft = {t: np.concatenate([soft[t], more[t]]) for t in soft}
        seqs.extend(extra)
        task_of.extend([-1] * len(extra))
        label_of.extend([0] * len(extra))
        print(f"{len(extra)} {what}", flush=True)
    task_of = np.array(task_of)
    label_of = np.array(label_of)
    soft_t = {t: torch.from_numpy(v) for t, v in soft.items()}
    teacher_val = {}
    for t in TASKS:
        lg = teacher_logits(args.teacher, val[t][0], args.cache, threads=2)[t]
        teacher_val[t] = train.score(t, val[t][1], np.argmax(lg, axis=1))
    print("teacher val (argmax): " + " ".join(f"{k}={v * 100:.2f}" for k, v in teacher_val.items()), flush=True)

    model = build_student(teacher_state(args.init or args.teacher), layers)
    if args.ffn:
        pick = np.random.default_rng(args.seed + 2).choice(len(seqs), 2000, replace=False)
        prune_ffn(model, [seqs[i] for i in pick], args.ffn)
    weights = {}
    for ti, t in enumerate(TASKS):
        y = label_of[task_of == ti]
        k = len(TASKS[t])
        weights[t] = torch.tensor((len(y) / (k * np.bincount(y, minlength=k))) ** 0.5, dtype=torch.float32)

    groups = [
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("heads.")
                    and not (n.endswith(".bias") or "LayerNorm" in n)], "lr": args.lr, "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("heads.")
                    and (n.endswith(".bias") or "LayerNorm" in n)], "lr": args.lr, "weight_decay": 0.0},
        {"params": list(model.heads.parameters()), "lr": args.head_lr, "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups)
    base_lrs = [g["lr"] for g in groups]
    stream = train.batches_for(seqs, args.batch_size, rng)

    s0, _ = train.val_scores(model, val)
    print("student val before training: " + " ".join(f"{k}={v * 100:.2f}" for k, v in s0.items()), flush=True)

    total_steps = args.max_steps or 10**9
    calib, warmup, step, seen = 60, 0, 0, 0
    best = (-1.0, None, None, None)
    eval_every, eval_time, last_eval = None, 0.0, 0
    running = {"kd": [], "hard": [], "emb": []}
    t_train = time.time()
    while step < total_steps:
        if step == calib and not args.max_steps:
            rate = step / (time.time() - t_train)
            remaining = args.minutes * 60 - (time.time() - t_start) - 90
            n_val = sum(len(v[1]) for v in val.values())
            remaining -= args.evals * n_val / (3 * rate * args.batch_size)
            total_steps = int(max(calib + 100, remaining * rate))
            print(f"calibration: {rate:.2f} steps/s -> {total_steps} steps", flush=True)
        if warmup == 0 and (step == calib or args.max_steps):
            warmup = max(1, int(0.06 * total_steps))
            eval_every = max(1, total_steps // args.evals)
        frac = train.lr_fraction(step, warmup, total_steps, calib)
        for g, lr in zip(opt.param_groups, base_lrs):
            g["lr"] = lr * frac
        idx = next(stream)
        ids, mask = train.pad_batch([seqs[j] for j in idx])
        model.train()
        pooled = model.bert(ids, mask)
        outs = model.classify(pooled)
        kd = sum(head_weight[t] * kd_loss(o, soft_t[t][idx], args.temperature) for t, o in zip(TASKS, outs))
        hard = torch.zeros(())
        for ti, (t, o) in enumerate(zip(TASKS, outs)):
            sel = np.nonzero(task_of[idx] == ti)[0]
            if len(sel):
                y = torch.from_numpy(label_of[idx][sel])
                hard = hard + head_weight[t] * F.cross_entropy(o[sel], y, weight=weights[t]) * len(sel) / len(idx)
        loss = kd + args.hard_weight * hard
        if use_pooled:
            emb = F.mse_loss(pooled, soft_t["pooled"][idx])
            loss = loss + args.pooled_weight * emb
            running["emb"].append(emb.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running["kd"].append(kd.item())
        running["hard"].append(hard.item())
        step += 1
        seen += len(idx)
        if step % 100 == 0:
            el = time.time() - t_train - eval_time
            emb_note = f" emb={np.mean(running['emb'][-100:]):.5f}" if use_pooled else ""
            print(f"step {step}/{total_steps} {seen / el:.1f} ex/s lr={frac * args.lr:.2e} "
                  f"kd={np.mean(running['kd'][-100:]):.4f} hard={np.mean(running['hard'][-100:]):.4f}{emb_note}",
                  flush=True)
        due = eval_every and (step % eval_every == 0 or step == total_steps)
        if due and step - last_eval >= max(1, eval_every // 10):
            last_eval = step
            best, secs = train.checkpoint(model, val, step, best)
            eval_time += secs
    train_secs = time.time() - t_train - eval_time
    print(f"trained {step} steps, {seen} examples in {train_secs:.0f}s ({seen / train_secs:.1f} ex/s); "
          f"best val mean {best[0] * 100:.2f} at step {best[1]}", flush=True)
    model.load_state_dict(best[2])
    # The bundle keeps float16 weights; the decision rules are tuned on what it will compute.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    _, val_logits = train.val_scores(model, val)
    heads, metrics = train.tune_rules(val_logits, val)

    teacher_meta = json.loads((args.teacher / "pulse-model.json").read_text())
    meta = {
        "name": args.out.name,
        "version": "1.0.0",
        "max_length": train.MAX_LENGTH,
        "preprocess": "tweet",
        "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask", "token_type_ids": None},
        "heads": heads,
        "metrics": {"val": {k: v["value"] for k, v in metrics.items()}},
        "training": {
            "method": "distillation",
            "teacher": f"{teacher_meta['name']} {teacher_meta.get('version', '')} float32",
            "teacher_layers": layers,
            "ffn": args.ffn or None,
            "init": str(args.init.name) if args.init else "teacher",
            "steps": step,
            "best_step": best[1],
            "examples": seen,
            "train_seconds": round(train_secs),
            "examples_per_second": round(seen / train_secs, 1),
            "batch_size": args.batch_size,
            "lr": args.lr,
            "head_lr": args.head_lr,
            "temperature": args.temperature,
            "hard_weight": args.hard_weight,
            "augment": args.augment,
            "unlabelled": args.unlabelled.name if args.unlabelled else None,
            "pooled_weight": args.pooled_weight,
            "head_weights": head_weight,
            "seed": args.seed,
            "torch": torch.__version__,
            "val_torch_fp32": metrics,
        },
    }
    train.export(model, args.out, meta)
    print(f"wrote {args.out} in {time.time() - t_start:.0f}s total", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
