"""The input an ONNX model is analysed and run at: its shape, checked before any work.

Every command that takes an ONNX file (bench, check-budgets, inspect, check, doctor, partition)
resolves the shape here, so all of them refuse the same mistakes with the same words: an
--input-shape that contradicts a fixed dimension of the model, and a model whose height or width
is dynamic with no --input-shape to fix it (counting it at 1x1 would be a silently wrong number).
A dynamic batch alone is fine: it is 1 unless --input-shape says otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import UsageError

if TYPE_CHECKING:
    import onnx

# Element types edgec can feed random data of (benchmark._feed, memory_probe, doctor).
_FED_TYPES = {1: "float32", 10: "float16"}  # TensorProto.FLOAT, TensorProto.FLOAT16


def _real_inputs(model: onnx.ModelProto) -> list:
    """Graph inputs that are not initializers (older exporters list weights as inputs too)."""
    init = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in init]


def input_dims(model: onnx.ModelProto, path: Path) -> tuple[str, list[int | None]]:
    """The first real input's name and dimensions (None where dynamic)."""
    inputs = _real_inputs(model)
    if not inputs:
        raise UsageError(f"'{path}' has no input: every graph input is a stored weight.",
                         hint="Re-export the model with its input as a graph input.")
    inp = inputs[0]
    return inp.name, [d.dim_value if d.HasField("dim_value") else None
                      for d in inp.type.tensor_type.shape.dim]


def resolve_input_shape(model: onnx.ModelProto, path: Path,
                        input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """``input_shape`` checked against the model's fixed dimensions, or, without one, the model's
    own shape (a dynamic batch as 1). UsageError (exit 2) when they clash or a dimension other
    than the batch is dynamic and no shape was given."""
    name, dims = input_dims(model, path)
    sized = all(d is not None for d in dims[1:])  # the model's own shape is usable without one
    if input_shape is None:
        if not sized:
            raise UsageError(
                f"'{path}' has a dynamic input shape ({name}: {_shown(dims)}) beyond the batch "
                "dimension: its sizes, memory and MACs depend on the shape it is given.",
                hint="Give the shape to measure with --input-shape, e.g. 1,3,224,224.")
        return (dims[0] or 1, *dims[1:]) if dims else ()
    clash = len(dims) != len(input_shape) or any(
        d is not None and d != s for d, s in zip(dims, input_shape, strict=False))
    if clash:
        legend = ", ".join(([] if dims[:1] != [None] else ["N: any batch"]) +
                           ([] if sized else ["?: any size"]))
        legend = f" ({legend})" if legend else ""
        raise UsageError(
            f"--input-shape {','.join(map(str, input_shape))} does not fit '{path}', whose input "
            f"'{name}' is {_shown(dims) or 'a scalar'}{legend}.",
            hint="Pass an --input-shape of that form"
            + (", or leave it out to use the model's own." if sized else "."))
    return tuple(input_shape)


def _shown(dims: list[int | None]) -> str:
    """The input's dims as the messages write them: N for a dynamic batch, ? for any other."""
    return ",".join("N" if i == 0 and d is None else "?" if d is None else str(d)
                    for i, d in enumerate(dims))


def check_runnable_input(model: onnx.ModelProto, path: Path) -> None:
    """edgec runs a model on one random float tensor: refuse, before anything runs, a model that
    takes several inputs or integer ones (token ids, masks), whose data it cannot invent."""
    inputs = _real_inputs(model)
    if len(inputs) != 1:
        names = ", ".join(f"'{i.name}'" for i in inputs)
        raise UsageError(
            f"'{path}' has {len(inputs)} inputs ({names}); edgec measures single-input models.",
            hint="Wrap the model so that it takes one tensor.")
    inp = inputs[0]
    elem = inp.type.tensor_type.elem_type
    if elem not in _FED_TYPES:
        from onnx import helper

        dtype = helper.tensor_dtype_to_string(elem).removeprefix("TensorProto.").lower()
        raise UsageError(
            f"'{path}' takes input '{inp.name}' of type {dtype}; edgec runs models on random "
            "float32/float16 tensors and cannot make up valid values of another type (token ids, "
            "masks).",
            hint="Time it with your own inputs in onnxruntime, or export the float part of the "
            "model (e.g. after the embedding) as its own model.")


def with_fixed_input(model: onnx.ModelProto, path: Path,
                     shape: tuple[int, ...]) -> onnx.ModelProto | None:
    """A copy of ``model`` whose first input is exactly ``shape`` (resolved), or None when it
    already is, or differs only by a dynamic batch given as 1 (which every tool reads as 1). For
    the tools that read tensor shapes from the graph itself (the partitioner's pieces, its check
    and timings): on the original they would take the dynamic dims as 1."""
    import onnx

    name, dims = input_dims(model, path)
    if all(d is not None or (i == 0 and s == 1)
           for i, (d, s) in enumerate(zip(dims, shape, strict=True))):
        return None
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    inp = next(i for i in fixed.graph.input if i.name == name)
    for dim, size in zip(inp.type.tensor_type.shape.dim, shape, strict=True):
        dim.dim_value = size  # replaces a dim_param (one of the two)
    del fixed.graph.value_info[:]  # inferred at the dynamic shape: stale
    return fixed
