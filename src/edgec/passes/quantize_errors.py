"""Per-layer quantization error: where an int8 model loses accuracy.

Both graphs (float and QDQ) are run on the same calibration inputs with every compute layer's input
and output exposed. In a QDQ graph a layer keeps its name and computes in float from dequantized
inputs and weights, so its output tensor is directly comparable with the float model's. Two
numbers per layer:

- ``sqnr_db``: signal-to-quantization-noise ratio of the layer's output (averaged over channels),
  accumulated from the input of the network (what the user sees at that depth);
- ``added_noise``: the layer's output noise-to-signal ratio minus that of its input. Relative noise
  passes through a linear layer roughly unchanged, so this is the noise the layer itself adds
  (rounding its input activations and weights). The accuracy-aware fallback ranks layers by it;
  ranking by accumulated error would always blame the last layers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import onnx

COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
TABLE_ROWS = 15  # report.md shows the worst layers; report.json has them all


@dataclass
class LayerError:
    name: str
    op_type: str
    macs: int
    int8: bool  # False when the layer stayed float (excluded or not quantizable)
    sqnr_db: float | None  # None when the output is exactly equal (no noise)
    added_noise: float

    def to_dict(self) -> dict:
        return asdict(self)


def quantized_layers(model: onnx.ModelProto) -> set[str]:
    """Names of compute nodes with a dequantized *weight* (the int8 layers of a QDQ graph; a
    float layer may still read a dequantized activation from an int8 neighbour)."""
    weights = {t.name for t in model.graph.initializer}
    dq_weights = {n.output[0] for n in model.graph.node
                  if n.op_type == "DequantizeLinear" and n.input[0] in weights}
    return {n.name for n in model.graph.node if n.op_type in COMPUTE_OPS
            and any(i in dq_weights for i in n.input[:2])}


def layer_errors(fp32: Path, quant: Path, batches: list[np.ndarray], input_name: str,
                 macs: dict[str, int] | None = None) -> list[LayerError]:
    """Errors of every compute layer of the QDQ model ``quant`` that ``fp32`` has by name."""
    import onnx

    float_model, quant_model = onnx.load(str(fp32)), onnx.load(str(quant))
    float_tensors = {o for n in float_model.graph.node for o in n.output} | {input_name}
    float_names = {n.name for n in float_model.graph.node}
    int8 = quantized_layers(quant_model)
    pairs = []  # (node, (float name, quant name) of its input, ... of its output)
    for node in quant_model.graph.node:
        if node.op_type not in COMPUTE_OPS or node.name not in float_names:
            continue
        x = _before_qdq(quant_model, node.input[0])
        y = _after_qdq(quant_model, node.output[0])
        # quantizers drop a Relu after a layer (Q clamps instead) and give the layer its name
        y_float = node.output[0] if node.output[0] in float_tensors else y
        if x in float_tensors and y_float in float_tensors:
            pairs.append((node, (x, node.input[0]), (y_float, y)))
    ref = _run_exposed(float_model, sorted({p[i][0] for p in pairs for i in (1, 2)}), batches,
                       input_name)
    got = _run_exposed(quant_model, sorted({p[i][1] for p in pairs for i in (1, 2)}), batches,
                       input_name)
    out = []
    for node, (xf, xq), (yf, yq) in pairs:
        nsr_out, nsr_in = _nsr(ref[yf], got[yq]), _nsr(ref[xf], got[xq])
        out.append(LayerError(
            name=node.name, op_type=node.op_type, macs=(macs or {}).get(node.name, 0),
            int8=node.name in int8,
            sqnr_db=None if nsr_out == 0 else round(-10 * math.log10(nsr_out), 2),
            added_noise=round(max(nsr_out - nsr_in, 0.0), 8),
        ))
    return out


def _before_qdq(model: onnx.ModelProto, name: str) -> str:
    """The float tensor a dequantized tensor came from (DQ ← Q ← it), else ``name``."""
    producers = {o: n for n in model.graph.node for o in n.output}
    dq = producers.get(name)
    if dq is not None and dq.op_type == "DequantizeLinear":
        q = producers.get(dq.input[0])
        if q is not None and q.op_type == "QuantizeLinear":
            return q.input[0]
    return name


def _after_qdq(model: onnx.ModelProto, name: str) -> str:
    """The dequantized copy of a tensor (it → Q → DQ), else ``name``: the value consumers see."""
    nodes = model.graph.node
    q = next((n for n in nodes if n.op_type == "QuantizeLinear" and n.input[0] == name), None)
    if q is not None:
        dq = next((n for n in nodes if n.op_type == "DequantizeLinear"
                   and n.input[0] == q.output[0]), None)
        if dq is not None:
            return dq.output[0]
    return name


def rank_for_fallback(errors: list[LayerError]) -> list[str]:
    """int8 layers, the one adding the most noise first."""
    return [e.name for e in sorted(errors, key=lambda e: -e.added_noise) if e.int8]


def int8_mac_share(errors: list[LayerError]) -> float | None:
    total = sum(e.macs for e in errors)
    return round(sum(e.macs for e in errors if e.int8) / total, 4) if total else None


def _nsr(ref: np.ndarray, got: np.ndarray) -> float:
    """Noise-to-signal ratio averaged over channels (axis 1). Per channel, because one channel
    with a huge range ruins the others' int8 resolution while dominating a global ratio."""
    import numpy as np

    ref, got = ref.astype(np.float64), got.astype(np.float64)
    if ref.ndim < 2:
        ref, got = ref.reshape(1, -1), got.reshape(1, -1)
    axes = tuple(i for i in range(ref.ndim) if i != 1)
    signal = np.sum(ref * ref, axis=axes)
    noise = np.sum((ref - got) ** 2, axis=axes)
    live = signal > 0
    if not live.any():
        return 0.0 if not noise.any() else math.inf
    return float(np.mean(noise[live] / signal[live]))


def _run_exposed(model: onnx.ModelProto, tensors: list[str], batches: list[np.ndarray],
                 input_name: str) -> dict[str, np.ndarray]:
    """Values of ``tensors`` over all batches. Graph optimizations are off so fusions cannot
    remove a tensor, and the QDQ graph computes exactly the simulated-int8 values."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    known = {o.name for o in m.graph.output}
    for name in tensors:
        if name not in known:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    parts: dict[str, list] = {t: [] for t in tensors}
    for batch in batches:
        values = dict(zip(names, session.run(None, {input_name: batch}), strict=True))
        values[input_name] = batch
        for t in tensors:
            parts[t].append(np.asarray(values[t]))
    return {t: np.concatenate(v) for t, v in parts.items()}


def errors_markdown(details: dict) -> list[str]:
    """report.md section: the per-layer error table of a static quantization (worst first)."""
    rows = details.get("layer_errors")
    if not rows:
        return []
    total = sum(r["macs"] for r in rows) or 1
    worst = sorted(rows, key=lambda r: -r["added_noise"])[:TABLE_ROWS]
    lines = [f"#### Per-layer quantization error ({len(worst)} worst of {len(rows)} layers)", "",
             "Calibration inputs, float vs int8 model. SQNR: output signal-to-noise (dB, higher is "
             "better, accumulated from the input); added noise: what this layer adds.", "",
             "| layer | op | MACs share | runs in | SQNR dB | added noise |", "|---|---|---|---|---|---|"]
    for r in worst:
        sqnr = "exact" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f}"
        lines.append(f"| {r['name']} | {r['op_type']} | {r['macs'] / total:.1%} | "
                     f"{'int8' if r['int8'] else 'float'} | {sqnr} | {r['added_noise']:.2e} |")
    return [*lines, ""]
