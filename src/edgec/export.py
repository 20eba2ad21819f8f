"""torch → ONNX, the ONNX checker, and a numerical parity check against torch.

"Export fails after compression" is a top complaint about compression tools, so every export is
checked twice: structurally (onnx.checker, full) and numerically (onnxruntime vs torch on real
inputs). A failure names the op or module at fault and exits 3.
"""

from __future__ import annotations

import re
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import ExportError

if TYPE_CHECKING:
    import numpy as np
    import torch.nn as nn

    from edgec.recipe import ExportConfig

INPUT_NAME, OUTPUT_NAME = "input", "output"
_UNSUPPORTED_OP = re.compile(r"operator '?([\w:.]+)'? to ONNX opset version (\d+)", re.I)
# torch.onnx.export keeps its state in process-wide globals (GLOBALS.in_onnx_export, the opset),
# and warnings.catch_warnings swaps the process's filters: two threads exporting at once broke each
# other ("GLOBALS.in_onnx_export must be True", edgec.compress from a thread pool). One export at a
# time per process; the rest of a run (training, measuring) still runs in parallel. Every module
# that calls torch.onnx.export takes it.
TORCH_EXPORT_LOCK = threading.Lock()
# What torch says when another thread's export reset its globals under this one (not held here)
_CONCURRENT_EXPORT = re.compile(r"GLOBALS\.in_onnx_export must be (True|False)")


@dataclass(frozen=True)
class Parity:
    """How closely onnxruntime reproduces torch on the same inputs."""

    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float | None  # None when the output is not a class-score vector

    def to_dict(self) -> dict:
        return asdict(self)


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: Path, config: ExportConfig) -> None:
    """Export ``model`` (eval mode) to ``path`` and run the full ONNX checker on it."""
    import onnx
    import torch

    model = model.eval()
    dummy = torch.zeros(input_shape, dtype=torch.float32)
    dynamic = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if config.dynamic_batch else None
    active = _ModuleTracker(model)
    try:
        with TORCH_EXPORT_LOCK, torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated upstream but remains the faster, more
            # compact path for CNNs; silence its notice so users see only what matters.
            warnings.simplefilter("ignore")
            if config.exporter == "dynamo":
                torch.onnx.export(
                    model, (dummy,), str(path), dynamo=True, opset_version=config.opset,
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_shapes=({0: torch.export.Dim("batch")},) if dynamic else None,
                    external_data=False, verbose=False,
                )
            else:
                torch.onnx.export(
                    model, (dummy,), str(path), dynamo=False, opset_version=config.opset,
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=dynamic,
                    do_constant_folding=True,
                )
    except Exception as exc:
        raise ExportError(_explain_export_failure(exc, active.failed_in, config)) from exc
    finally:
        active.remove()
    from edgec.export_qdq import fold_weight_quantization, has_quantize_nodes

    if has_quantize_nodes(path):  # a QAT model: store its fake-quantized weights as int8
        fold_weight_quantization(path)
    try:
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    except Exception as exc:
        raise ExportError(
            f"The exported ONNX model '{path.name}' fails onnx.checker: {exc}. This is usually an "
            "exporter bug for an unusual op; try `export: {exporter: dynamo}` or another opset."
        ) from exc


def export_checked(model: nn.Module, input_shape: tuple[int, ...], path: Path,
                   config: ExportConfig, eval_x: np.ndarray, atol: float) -> dict:
    """Export, then check parity on the first ``config.parity_samples`` of ``eval_x``: the
    report's parity entry."""
    export_onnx(model, input_shape, path, config)
    return check_parity(model, path, eval_x[: config.parity_samples], atol).to_dict()


def check_parity(model: nn.Module, onnx_path: Path, inputs: np.ndarray, atol: float) -> Parity:
    """Run torch and onnxruntime on the same inputs; raise ExportError if they disagree."""
    import numpy as np
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    fixed_batch = session.get_inputs()[0].shape[0]
    step = fixed_batch if isinstance(fixed_batch, int) else len(inputs)
    ref_parts, got_parts = [], []
    with torch.no_grad():
        for start in range(0, len(inputs), step):
            chunk = inputs[start : start + step].astype(np.float32)
            ref_parts.append(model.eval()(torch.from_numpy(chunk)).numpy())
            got_parts.append(session.run(None, {session.get_inputs()[0].name: chunk})[0])
    ref, got = np.concatenate(ref_parts), np.concatenate(got_parts)
    diff = np.abs(ref.astype(np.float64) - got)
    top1 = None
    if ref.ndim == 2 and ref.shape[1] > 1:
        top1 = float(np.mean(ref.argmax(1) == got.argmax(1)))
    parity = Parity(len(inputs), float(diff.max()), float(diff.mean()), top1)
    if not np.isfinite(parity.max_abs_diff) or parity.max_abs_diff > atol:
        raise ExportError(
            f"onnxruntime's output for '{onnx_path.name}' differs from torch by up to "
            f"{parity.max_abs_diff:.3g} (limit export.parity_atol = {atol:g}). The export changed "
            "the model's numerics; a custom op or a training-mode layer is the usual cause. "
            "Raise parity_atol only if that difference is acceptable."
        )
    return parity


class _ModuleTracker:
    """Remembers which leaf module was running when tracing failed, to name it in the error."""

    def __init__(self, model: nn.Module):
        self.stack: list[str] = []
        self.failed_in: str | None = None
        self.handles = []
        for name, module in model.named_modules():
            if name and not list(module.children()):
                self.handles.append(module.register_forward_pre_hook(self._enter(name)))
                self.handles.append(module.register_forward_hook(self._leave()))

    def _enter(self, name: str):
        def hook(module, args):
            self.stack.append(f"{name} ({type(module).__name__})")
            self.failed_in = self.stack[-1]

        return hook

    def _leave(self):
        def hook(module, args, output):
            self.stack.pop()
            self.failed_in = self.stack[-1] if self.stack else None

        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _explain_export_failure(exc: Exception, module: str | None, config: ExportConfig) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if _CONCURRENT_EXPORT.search(str(exc)):  # not the model's fault: say so, never blame it
        return (
            f"ONNX export failed: {type(exc).__name__}: {text}. torch.onnx.export is not "
            "thread-safe, and another thread of this process was exporting at the same time "
            "outside edgec (edgec's own exports take edgec.export.TORCH_EXPORT_LOCK). Export from "
            "one thread at a time (hold that lock around your own exports), or run in separate "
            "processes."
        )
    op = _UNSUPPORTED_OP.search(str(exc))
    if op:
        return (
            f"ONNX export failed: operator '{op.group(1)}' is not supported at opset "
            f"{op.group(2)}. Try a newer `export: {{opset: N}}`, the other exporter "
            f"(`export: {{exporter: {'torchscript' if config.exporter == 'dynamo' else 'dynamo'}}}`), "
            "or replace the layer that uses it."
        )
    where = f" while running module {module}" if module else ""
    return (
        f"ONNX export failed{where}: {type(exc).__name__}: {text}. Check that the model runs on "
        "an input of model.input_shape, or try the other exporter via `export: {exporter: ...}`."
    )
