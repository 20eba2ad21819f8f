"""Calibration input for static quantization: which graph input to feed, and in what batches.

onnxruntime's calibrators only need an object with ``get_next()`` returning one feed dict per call
and ``None`` at the end (``CalibrationDataReader`` accepts any such class through its subclass
hook), so this module needs no onnxruntime import at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgec.errors import PassError

if TYPE_CHECKING:
    import numpy as np
    import onnx

# With a dynamic batch axis any batch size works; batching calibration runs makes them several
# times faster than one sample per run, and MinMax / histogram statistics do not depend on it.
DYNAMIC_CALIB_BATCH = 32


@dataclass(frozen=True)
class GraphInput:
    name: str
    shape: tuple[int | None, ...]  # None where the dimension is symbolic (e.g. a dynamic batch)
    elem_type: int  # onnx.TensorProto data type


def graph_input(model: onnx.ModelProto) -> GraphInput:
    """The model's one real input (initializers listed as inputs by old exporters do not count)."""
    from onnx import TensorProto

    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise PassError(
            f"Static quantization calibrates models with exactly one input, but this graph has "
            f"{len(inputs)} ({names}). Use mode: dynamic (no calibration) for this model."
        )
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type not in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE):
        raise PassError(
            f"Graph input '{inputs[0].name}' is {TensorProto.DataType.Name(tensor.elem_type)}, but "
            "static quantization calibrates float inputs. Use mode: dynamic for this model."
        )
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                  for d in tensor.shape.dim)
    return GraphInput(inputs[0].name, shape, tensor.elem_type)


def calibration_batches(x: np.ndarray, inp: GraphInput) -> tuple[list[np.ndarray], list[str]]:
    """Split calibration samples into batches the graph accepts; returns (batches, notes)."""
    import numpy as np
    from onnx import helper

    x = np.asarray(x)
    notes: list[str] = []
    want = inp.shape[1:]
    fits = len(want) == x.ndim - 1 and all(
        w is None or w == h for w, h in zip(want, x.shape[1:], strict=True))
    if not fits:
        raise PassError(
            f"Calibration samples have shape {tuple(x.shape[1:])} (after the batch axis), but the "
            f"model input '{inp.name}' expects {_fmt_shape(want)}. Make the data's size match "
            "model.input_shape (e.g. data: {source: digits, resize: ...})."
        )
    x = x.astype(helper.tensor_dtype_to_np_dtype(inp.elem_type), copy=False)
    batch = inp.shape[0] if inp.shape else None
    if batch is None:
        return [x[i:i + DYNAMIC_CALIB_BATCH] for i in range(0, len(x), DYNAMIC_CALIB_BATCH)], notes
    if len(x) < batch:
        # a fixed batch larger than the calibration set: repeat samples rather than refuse to run
        notes.append(f"the model's fixed batch of {batch} exceeds the {len(x)} calibration "
                     "samples; samples were repeated to fill one batch")
        x = np.resize(x, (batch, *x.shape[1:]))
    usable = len(x) - len(x) % batch
    if usable < len(x):
        notes.append(f"{len(x) - usable} calibration samples left out to fill whole batches "
                     f"of {batch} (the model's fixed batch size)")
    return [x[i:i + batch] for i in range(0, usable, batch)], notes


class CalibrationReader:
    """Feeds batches to onnxruntime's calibrator and reports progress as they are consumed."""

    def __init__(self, input_name: str, batches: list[np.ndarray],
                 advance: Callable[..., None] | None = None):
        self.input_name = input_name
        self.batches = batches
        self.advance = advance
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self.batches):
            return None
        batch = self.batches[self._next]
        self._next += 1
        if self.advance is not None:
            self.advance(len(batch))
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._next = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        feed = self.get_next()
        if feed is None:
            raise StopIteration
        return feed

    def __len__(self) -> int:
        return len(self.batches)


def _fmt_shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
