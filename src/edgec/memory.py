"""Estimated memory of an ONNX model: weight bytes and peak activation bytes (liveness analysis).

Activations: shape inference gives every tensor's shape and dtype; walking the nodes in the
graph's execution order (ONNX graphs are topologically sorted), a tensor is live from the step
that produces it (graph inputs: from the start) to the last step that reads it (graph outputs: to
the end). The peak is the largest byte sum of tensors live at one step; a node's inputs and outputs
count together, as a runtime without in-place reuse needs both buffers at once.

QDQ models are analysed as an int8 runtime executes them: DequantizeLinear of an activation and
the QuantizeLinear right after an op are folded into the op (onnxruntime fuses them into int8
kernels, a TFLite converter into int8 ops), so activations count at 1 byte, not as float copies.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import UsageError

if TYPE_CHECKING:
    import onnx

# Bytes per element of ONNX tensor types, by numpy-style name (4-bit types pack two per byte).
_SUB_BYTE = {"int4": 0.5, "uint4": 0.5, "float4e2m1": 0.5}


@dataclass
class TensorInfo:
    dtype: str
    shape: list  # ints; str for dims shape inference could not resolve

    @property
    def nbytes(self) -> int | None:
        if not all(isinstance(d, int) for d in self.shape):
            return None
        return math.ceil(math.prod(self.shape) * dtype_size(self.dtype))


@dataclass
class MemoryEstimate:
    """Estimated bytes for one inference at the given input shape."""

    weight_bytes: int
    peak_activation_bytes: int
    peak_node: str | None  # the node executing when the peak occurs
    peak_op: str | None
    peak_tensors: list[dict] = field(default_factory=list)  # largest live tensors at the peak
    peak_by_dtype: dict[str, int] = field(default_factory=dict)
    weight_by_dtype: dict[str, int] = field(default_factory=dict)
    unknown_tensors: int = 0  # activations whose size shape inference could not resolve

    def ram_bytes(self, weights_in_ram: bool = True) -> int:
        return self.peak_activation_bytes + (self.weight_bytes if weights_in_ram else 0)

    def to_dict(self) -> dict:
        return asdict(self)


def dtype_size(dtype: str) -> float:
    import numpy as np

    if dtype in _SUB_BYTE:
        return _SUB_BYTE[dtype]
    try:
        return float(np.dtype(dtype).itemsize)
    except TypeError:
        return 1.0  # exotic 8-bit float types (float8e4m3fn, ...)


def tensor_infos(model: onnx.ModelProto, input_shape=None) -> dict[str, TensorInfo]:
    """Tensor name → dtype and shape after shape inference; ``input_shape`` fixes the first
    input's dims, other dynamic dims become 1 (one inference, batch 1)."""
    import onnx
    from onnx import helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {t.name for t in m.graph.initializer}
    for k, inp in enumerate(i for i in m.graph.input if i.name not in inits):
        dims = inp.type.tensor_type.shape.dim
        if k == 0 and input_shape is not None:
            if len(input_shape) != len(dims):
                raise UsageError(
                    f"Input shape {list(input_shape)} has {len(input_shape)} dims but the model's "
                    f"input '{inp.name}' has {len(dims)}.", hint="Give one value per dimension.")
            for d, v in zip(dims, input_shape, strict=True):
                d.dim_value = int(v)
        for d in dims:
            if not d.HasField("dim_value"):
                d.dim_value = 1
    del m.graph.value_info[:]
    with contextlib.suppress(Exception):  # contrib ops without shape functions: keep what we have
        m = onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
    out: dict[str, TensorInfo] = {}
    for vi in [*m.graph.input, *m.graph.value_info, *m.graph.output]:
        t = vi.type.tensor_type
        if t.elem_type:
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                    for d in t.shape.dim] if t.HasField("shape") else ["?"]
            out[vi.name] = TensorInfo(_dtype_name(helper, t.elem_type), dims)
    for t in m.graph.initializer:
        out[t.name] = TensorInfo(_dtype_name(helper, t.data_type), list(t.dims))
    for node in m.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            t = node.attribute[0].t
            out[node.output[0]] = TensorInfo(_dtype_name(helper, t.data_type), list(t.dims))
    return out


def _dtype_name(helper, elem_type: int) -> str:
    try:
        return str(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return helper.tensor_dtype_to_string(elem_type).replace("TensorProto.", "").lower()


def estimate_memory(path: Path | str, input_shape=None) -> MemoryEstimate:
    """Weights and peak activations of the ONNX file at ``path`` (see the module docstring)."""
    from edgec.graph_stats import load_onnx

    model = load_onnx(Path(path))
    return estimate_model_memory(model, input_shape)


def estimate_model_memory(model: onnx.ModelProto, input_shape=None) -> MemoryEstimate:
    infos = tensor_infos(model, input_shape)
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    weights |= {n.output[0] for n in graph.node if n.op_type == "Constant"}
    folded = constant_tensors(graph)
    weight_by_dtype: Counter = Counter()
    for name in weights:
        info = infos.get(name)
        if info and info.nbytes:
            weight_by_dtype[info.dtype] += info.nbytes
    nodes, alias, dtype_of = _fold_qdq(graph, folded, infos)
    nodes = [n for n in nodes if not all(o in folded for o in n.output)]
    weights = folded
    return peak_activations(nodes, graph, infos, weights, alias, dtype_of, weight_by_dtype)


def constant_tensors(graph) -> set[str]:
    """Weights, and outputs of nodes fed only by weights (converters fold them into constants)."""
    folded = {t.name for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" or (node.input and all(not i or i in folded for i in node.input)):
            folded.update(node.output)
    return folded


def _fold_qdq(graph, weights: set[str], infos: dict):
    """Nodes as an int8 runtime runs them: (kept nodes, tensor alias map, dtype overrides)."""
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    alias: dict[str, str] = {}  # a folded tensor → the tensor that really holds its data
    dtype_of: dict[str, str] = {}  # a kept tensor that really holds another dtype
    dropped = set()
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.output[0] not in outputs:
            alias[node.output[0]] = node.input[0]  # weight DQ → the weight (not an activation)
            dropped.add(id(node))
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear", "Constant") or not node.output:
            continue
        out = node.output[0]
        users = consumers.get(out, [])
        if users and out not in outputs and all(u.op_type == "QuantizeLinear" for u in users):
            for q in users:  # the op writes the quantized tensor directly
                alias[q.output[0]] = out
                dropped.add(id(q))
            q_info = infos.get(users[0].output[0])
            if q_info:
                dtype_of[out] = q_info.dtype
    kept = [n for n in graph.node if id(n) not in dropped and n.op_type != "Constant"]
    return kept, alias, dtype_of


def peak_activations(nodes, graph, infos, weights, alias=None, dtype_of=None,
                     weight_by_dtype=None) -> MemoryEstimate:
    """Liveness over ``nodes`` in order; returns the estimate (weights summed from the Counter)."""
    alias, dtype_of = dict(alias or {}), dtype_of or {}

    def real(name: str) -> str:
        for _ in range(64):  # alias chains: Q → op output, DQ → Q output, in-place and views
            if name not in alias:
                break
            name = alias[name]
        return name

    def size(name: str) -> tuple[int | None, str]:
        info = infos.get(name)
        dtype = dtype_of.get(name, info.dtype if info else "?")
        return (TensorInfo(dtype, info.shape).nbytes if info and dtype != "?" else None), dtype

    weights = weights | {real(w) for w in weights}
    birth, death = _lifetimes(nodes, graph, real, weights)
    _share_buffers(nodes, graph, real, alias, birth, death, size)
    sizes = {name: size(name) for name in birth}
    live_at = [0] * max(len(nodes), 1)
    for name, (nbytes, _) in sizes.items():
        for step in range(birth[name], death[name] + 1):
            live_at[step] += nbytes or 0
    peak_step = max(range(len(live_at)), key=live_at.__getitem__)
    live = sorted(((sizes[n][0] or 0, n, sizes[n][1]) for n in birth
                   if birth[n] <= peak_step <= death[n]), reverse=True)
    by_dtype: Counter = Counter()
    for nbytes, _, dtype in live:
        by_dtype[dtype] += nbytes
    node = nodes[peak_step] if nodes else None
    weight_by_dtype = weight_by_dtype or Counter()
    return MemoryEstimate(
        weight_bytes=int(sum(weight_by_dtype.values())), peak_activation_bytes=live_at[peak_step],
        peak_node=(node.name or node.output[0]) if node else None,
        peak_op=node.op_type if node else None,
        peak_tensors=[{"name": n, "bytes": b, "dtype": d} for b, n, d in live[:5]],
        peak_by_dtype=dict(by_dtype.most_common()), weight_by_dtype=dict(weight_by_dtype.most_common()),
        unknown_tensors=sum(1 for nbytes, _ in sizes.values() if nbytes is None),
    )


def _lifetimes(nodes, graph, real, weights) -> tuple[dict[str, int], dict[str, int]]:
    """First and last step of every activation (graph inputs from 0, outputs to the end)."""
    birth: dict[str, int] = {}
    death: dict[str, int] = {}
    for inp in graph.input:
        if inp.name not in weights:
            birth[inp.name] = death[inp.name] = 0
    for step, node in enumerate(nodes):
        for name in map(real, node.input):
            if name and name not in weights and name in birth:
                death[name] = max(death[name], step)
        for name in map(real, node.output):
            if name and name not in birth:
                birth[name] = death[name] = step
    for out in graph.output:
        if real(out.name) in birth:
            death[real(out.name)] = max(len(nodes) - 1, 0)
    return birth, death


# Ops whose output shares its input's buffer: views always, element-wise ops when the input dies
# there and is large enough (onnxruntime's planner reuses it; TFLite fuses such activations).
_VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}
_INPLACE_OPS = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Add",
                "Sub", "Mul", "Div", "Neg", "Abs", "Sqrt", "Exp", "BatchNormalization", "PRelu"}


def _share_buffers(nodes, graph, real, alias, birth, death, size) -> None:
    """Merge in-place and view outputs into their input's buffer (updates alias/birth/death)."""
    keep = {real(i.name) for i in graph.input} | {real(o.name) for o in graph.output}
    for step, node in enumerate(nodes):
        if node.op_type not in _VIEW_OPS | _INPLACE_OPS or not node.output:
            continue
        out = real(node.output[0])
        if out in keep or out not in birth or birth[out] != step:
            continue
        candidates = node.input[:1] if node.op_type in _VIEW_OPS else node.input
        for name in map(real, candidates):
            if not name or name not in birth or name in keep or name == out:
                continue
            in_bytes, out_bytes = size(name)[0], size(out)[0]
            fits = in_bytes is not None and out_bytes is not None and in_bytes >= out_bytes
            if fits and size(name)[1] == size(out)[1] and (
                    node.op_type in _VIEW_OPS or death[name] == step):
                alias[out] = name
                death[name] = max(death[name], death.pop(out))
                del birth[out]
                break
