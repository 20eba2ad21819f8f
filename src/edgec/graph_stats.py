"""What an ONNX file holds: parameters, MACs/FLOPs per layer, operators and weight dtypes.

Counted from the graph, not from torch, so the same numbers describe a float, a QDQ int8, a
QOperator int8 or a 4-bit MatMulNBits model: quantization scales and zero points, shape constants
and int64 tensors are metadata, not parameters. MACs count the multiply-accumulates of
convolutions and matrix products (the work that dominates edge models; element-wise ops are not
counted), FLOPs = 2 × MACs, for one inference at the input shape given (a dynamic batch = 1;
other dynamic dims need the shape: model_input.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import UsageError, not_a_file

if TYPE_CHECKING:
    import numpy as np
    import onnx

# (op_type, input index) pairs that carry quantization metadata, never parameters.
_QUANT_META = {
    "QuantizeLinear": {1, 2}, "DequantizeLinear": {1, 2},
    "QLinearConv": {1, 2, 4, 5, 6, 7}, "QLinearMatMul": {1, 2, 4, 5, 6, 7},
    "QLinearAdd": {1, 2, 4, 5, 6, 7}, "QLinearMul": {1, 2, 4, 5, 6, 7},
    "QGemm": {1, 2, 4, 5, 7, 8}, "ConvInteger": {2, 3}, "MatMulInteger": {2, 3},
    "DynamicQuantizeMatMul": {2, 3}, "MatMulNBits": {2, 3, 4}, "GatherBlockQuantized": {2, 3},
}
# op_type → (index of the weight input, index of the bias input or None)
_COMPUTE = {
    "Conv": (1, 2), "ConvInteger": (1, None), "QLinearConv": (3, 8), "ConvTranspose": (1, 2),
    "Gemm": (1, 2), "QGemm": (3, 6), "MatMul": (1, None), "MatMulInteger": (1, None),
    "QLinearMatMul": (3, None), "MatMulNBits": (1, 5), "DynamicQuantizeMatMul": (1, 4),
}
_NOT_PARAMS = {"INT64", "BOOL", "STRING"}


@dataclass
class LayerStats:
    name: str
    op_type: str
    params: int
    macs: int
    output_shape: list[int | str] | None
    weight_dtype: str | None = None
    nonzero_params: int | None = None  # weights + bias that are not zero (per-layer sparsity)


@dataclass
class GraphStats:
    params: int
    nonzero_params: int
    macs: int
    opset: int
    input_shape: list[int] | None
    layers: list[LayerStats] = field(default_factory=list)
    op_counts: dict[str, int] = field(default_factory=dict)
    weight_dtypes: dict[str, int] = field(default_factory=dict)  # dtype → parameters stored in it

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_dict(self) -> dict:
        d = asdict(self)
        d["flops"] = self.flops
        return d


def not_an_onnx_file(path: Path) -> UsageError:
    """The error for a model path that is no file; a run folder gets the names of its models."""
    if not path.is_dir():
        return UsageError(f"ONNX file '{path}' {not_a_file(path)}.", hint="Check the path."
                          if not path.exists() else "Give the path of a .onnx file.")
    inside = [path / n for n in ("model.onnx", "baseline.onnx") if (path / n).is_file()]
    if inside:  # an edgec run folder: the compressed model and the exported original
        return UsageError(f"'{path}' is a folder, not an ONNX file.",
                          hint=f"Did you mean '{inside[0]}'" + (f" (compressed) or '{inside[1]}' "
                          "(the original, exported)" if len(inside) > 1 else "") + "?")
    return UsageError(f"'{path}' is a folder, not an ONNX file.", hint="Give the path of a .onnx file.")


def load_onnx(path: Path) -> onnx.ModelProto:
    """Load and structurally check an ONNX file; a user's bad file becomes a UsageError."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise not_an_onnx_file(path)
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, ValidationError, missing external data
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"'{path}' is not a valid ONNX model ({first[:200]}).",
            hint="Re-export it (torch.onnx.export) or check that the file was copied completely.",
        ) from exc
    return model


def count_onnx_params(path: Path) -> tuple[int, int]:
    """(parameters, non-zero parameters) stored in an ONNX file."""
    model = load_onnx(path)
    tensors = _readable_params(model, path)
    return sum(t.size for t in tensors.values()), sum(
        _nonzero(model.graph, n, t) for n, t in tensors.items())


def analyze_onnx(path: Path, input_shape: tuple[int, ...] | None = None) -> GraphStats:
    """Full statistics of an ONNX file at ``input_shape`` (checked against the model's fixed
    dims), else at the model's own shape with a dynamic batch as 1 (model_input.py)."""
    from edgec.graph_shapes import infer_shapes
    from edgec.model_input import resolve_input_shape

    model = load_onnx(path)
    shapes, fixed = infer_shapes(model, resolve_input_shape(model, Path(path), input_shape))
    graph = model.graph
    tensors = _readable_params(model, path)
    producers = {o: n for n in graph.node for o in n.output}
    layers, dtypes = [], Counter()
    for node in graph.node:
        if node.op_type not in _COMPUTE:
            continue
        w_idx, b_idx = _COMPUTE[node.op_type]
        weight = _source_param(node, w_idx, tensors, producers)
        if weight is None and node.op_type in ("MatMul", "MatMulInteger", "QLinearMatMul"):
            weight = _source_param(node, 0, tensors, producers)  # constant on the left
        bias = _source_param(node, b_idx, tensors, producers) if b_idx is not None else None
        params = sum(tensors[t].size for t in (weight, bias) if t is not None)
        out = shapes.get(node.output[0])
        layers.append(LayerStats(
            name=node.name or node.output[0], op_type=node.op_type, params=params,
            macs=_macs(node, shapes), output_shape=out,
            weight_dtype=tensors[weight].dtype if weight else None,
            nonzero_params=sum(_nonzero(graph, t, tensors[t]) for t in (weight, bias) if t is not None),
        ))
    for t in tensors.values():
        dtypes[t.dtype] += t.size
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return GraphStats(
        params=sum(t.size for t in tensors.values()),
        nonzero_params=sum(_nonzero(graph, n, t) for n, t in tensors.items()),
        macs=sum(layer.macs for layer in layers), opset=opset, input_shape=fixed, layers=layers,
        op_counts=dict(Counter(n.op_type for n in graph.node).most_common()),
        weight_dtypes=dict(dtypes.most_common()),
    )


def _readable_params(model: onnx.ModelProto, path: Path) -> dict[str, _Param]:
    """Weights of a model that passed the checker but whose tensor bytes may still be damaged."""
    try:
        return _param_tensors(model.graph)
    except (ValueError, TypeError) as exc:  # raw_data shorter/longer than its declared dims
        raise UsageError(
            f"'{path}' has a damaged weight tensor ({exc}).",
            hint="Re-export it or check that the file was copied completely.",
        ) from exc


@dataclass
class _Param:
    array: np.ndarray
    size: int  # logical weights (a packed 4-bit byte holds two)
    dtype: str


def _param_tensors(graph: onnx.GraphProto) -> dict[str, _Param]:
    """Initializers and Constant outputs that are learned weights, by name."""
    from onnx import TensorProto, numpy_helper

    raw = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            raw[node.output[0]] = node.attribute[0].t
    meta = {node.input[i] for node in graph.node for i in _QUANT_META.get(node.op_type, ())
            if i < len(node.input)}
    compute_inputs = {i for node in graph.node if node.op_type in _COMPUTE for i in node.input}
    packed = {n.input[1]: n for n in graph.node if n.op_type == "MatMulNBits"}
    out = {}
    for name, proto in raw.items():
        if name in meta or TensorProto.DataType.Name(proto.data_type) in _NOT_PARAMS:
            continue
        array = numpy_helper.to_array(proto)
        if array.size <= 1 and name not in compute_inputs:
            continue  # scalar constants of arithmetic (x / 2.0), not weights
        if name in packed:  # MatMulNBits packs K×N weights of `bits` bits into uint8 blocks
            attrs = {a.name: a.i for a in packed[name].attribute}
            out[name] = _Param(array, attrs["K"] * attrs["N"], f"int{attrs.get('bits', 4)}")
        else:
            out[name] = _Param(array, int(array.size), str(array.dtype))
    return out


def _nonzero(graph: onnx.GraphProto, name: str, param: _Param) -> int:
    """Non-zero weights; a quantized weight is zero where it equals its zero point.

    Packed low-bit blocks are counted as all non-zero (unpacking them is not worth it here)."""
    import numpy as np
    from onnx import numpy_helper

    array = param.array
    if param.size != array.size:
        return param.size
    zp = _zero_point(graph, name)
    if zp is None:
        return int(np.count_nonzero(array))
    node, zero = zp
    zero = numpy_helper.to_array(zero)
    if zero.ndim == 1 and zero.size > 1:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * array.ndim
        shape[axis] = zero.size
        zero = zero.reshape(shape)
    return int(np.count_nonzero(array.astype(np.int32) != zero.astype(np.int32)))


def _zero_point(graph: onnx.GraphProto, name: str):
    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        is_dq = node.op_type == "DequantizeLinear" and node.input[0] == name
        if is_dq and len(node.input) > 2 and node.input[2] in inits:
            return node, inits[node.input[2]]
    return None


def _source_param(node, index: int, tensors: dict, producers: dict) -> str | None:
    """The parameter tensor feeding ``node.input[index]``, looking through DequantizeLinear."""
    if index >= len(node.input) or not node.input[index]:
        return None
    name = node.input[index]
    for _ in range(3):  # weight → DequantizeLinear → (Transpose/Reshape) → node
        if name in tensors:
            return name
        producer = producers.get(name)
        if producer is None or producer.op_type not in ("DequantizeLinear", "Transpose", "Reshape", "Cast"):
            return None
        name = producer.input[0]
    return name if name in tensors else None


def _macs(node, shapes: dict) -> int:
    import math

    out = shapes.get(node.output[0])
    if not out or not all(isinstance(d, int) for d in out):
        return 0
    op = node.op_type
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        w = shapes.get(node.input[3 if op == "QLinearConv" else 1])
        return math.prod(out) * math.prod(w[1:]) if w and _static(w) else 0
    if op == "ConvTranspose":
        x, w = shapes.get(node.input[0]), shapes.get(node.input[1])
        return math.prod(x) * math.prod(w[1:]) if x and w and _static(x) and _static(w) else 0
    if op == "MatMulNBits":
        return math.prod(out) * next(a.i for a in node.attribute if a.name == "K")
    a = shapes.get(node.input[0])
    if not a or not _static(a):
        return 0
    trans_a = any(at.name == "transA" and at.i for at in node.attribute)
    k = a[0] if op in ("Gemm", "QGemm") and trans_a else a[-1]
    return math.prod(out) * k


def _static(shape) -> bool:
    return all(isinstance(d, int) for d in shape)
