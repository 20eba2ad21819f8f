"""Shapes of every tensor of an ONNX graph at one input shape, for counting MACs.

onnx's shape inference, run on a copy whose graph input is fixed at the shape given (resolved and
checked against the model by model_input.py; further inputs' dynamic dims become 1), plus what it
cannot infer for onnxruntime's contrib ops (MatMulNBits, from int4 quantization). Shapes that no
valid model has (negative dims from impossible pads or strides) are refused here, before any count
goes negative.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from edgec.errors import UsageError

if TYPE_CHECKING:
    import onnx


def infer_shapes(model: onnx.ModelProto, input_shape: tuple[int, ...]) -> tuple[dict, list[int] | None]:
    """Tensor name → shape (ints; str for unknown dims), after fixing the first graph input's dims
    to ``input_shape`` (model_input.resolve_input_shape's: one value per dimension)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    init_names = {t.name for t in m.graph.initializer}
    inputs = [i for i in m.graph.input if i.name not in init_names]
    fixed = None
    for k, inp in enumerate(inputs):
        dims = inp.type.tensor_type.shape.dim
        if k == 0:
            for d, v in zip(dims, input_shape, strict=True):
                d.dim_value = int(v)
            fixed = [d.dim_value for d in dims]
        else:
            for d in dims:
                if not d.HasField("dim_value"):
                    d.dim_value = 1
    del m.graph.value_info[:]
    _standardize_contrib_ops(m.graph)
    with contextlib.suppress(Exception):  # contrib ops without shape functions: keep what we have
        m = onnx.shape_inference.infer_shapes(m, strict_mode=False)
    shapes: dict[str, list] = {}
    for vi in [*m.graph.input, *m.graph.value_info, *m.graph.output]:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                               for d in t.shape.dim]
    for t in m.graph.initializer:
        shapes[t.name] = list(t.dims)
    _fill_contrib_shapes(m.graph, shapes)
    bad = next(((name, dims) for name, dims in shapes.items()
                if any(isinstance(d, int) and d < 0 for d in dims)), None)
    if bad is not None:  # e.g. pads or strides that no valid model has: counting would go negative
        raise UsageError(
            f"Shape inference gives tensor '{bad[0]}' the impossible shape {bad[1]}: the model's "
            "attributes (pads, strides, kernel shapes) or its input shape do not fit together.",
            hint="Re-export the model, or check --input-shape / model.input_shape.",
        )
    return shapes, fixed


def _standardize_contrib_ops(graph) -> None:
    """In the copy used for shape inference only, stand MatMulNBits in as a MatMul against a
    K×N placeholder input, so that shapes flow on through the layers after it."""
    from onnx import TensorProto, helper

    for node in graph.node:
        if node.op_type != "MatMulNBits":
            continue
        attrs = {a.name: a.i for a in node.attribute}
        weight = f"{node.name or node.output[0]}__KxN"
        graph.input.append(helper.make_tensor_value_info(weight, TensorProto.FLOAT,
                                                         [attrs["K"], attrs["N"]]))
        a, out = node.input[0], node.output[0]
        node.Clear()
        node.op_type, node.domain = "MatMul", ""
        node.input.extend([a, weight])
        node.output.append(out)


def _fill_contrib_shapes(graph, shapes: dict) -> None:
    """Output shapes onnx cannot infer for onnxruntime's contrib MatMulNBits."""
    for node in graph.node:
        if node.op_type == "MatMulNBits" and node.output[0] not in shapes:
            a = shapes.get(node.input[0])
            n = next((x.i for x in node.attribute if x.name == "N"), None)
            if a and n:
                shapes[node.output[0]] = [*a[:-1], n]


