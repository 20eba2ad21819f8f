"""The NoNN system as deployment files, and checking it the way it would run.

device_K.onnx is device K's student (input → its pooled feature vector); head.onnx takes one
input per device (from_device_K) and returns the logits. ``run_assembled`` runs them in
onnxruntime device by device, then the head on what they send, so its accuracy is the deployed
system's, and ``max_abs_diff`` compares that with the torch system on the same inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import ExportError

if TYPE_CHECKING:
    import numpy as np

    from edgec.partition_students import NonnSystem

# The files run the very same float kernels as torch; beyond float noise means a wrong export.
PARITY_ATOL = 1e-3


def export_system(system: NonnSystem, input_shape: tuple[int, ...], out_dir: Path) -> tuple[list[Path], Path]:
    """Write device_1.onnx … device_K.onnx and head.onnx; returns (device paths, head path)."""
    from edgec.partition_students import export_head, export_student

    out_dir.mkdir(parents=True, exist_ok=True)
    system.eval()
    devices = [export_student(s, input_shape, out_dir / f"device_{k + 1}.onnx")
               for k, s in enumerate(system.students)]
    return devices, export_head(system.head, out_dir / "head.onnx")


def run_assembled(device_paths: list[Path], head_path: Path, x: np.ndarray,
                  batch_size: int = 256) -> np.ndarray:
    """Logits of the deployed system on ``x``: each device's file, then the head on the vectors."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    devices = [ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
               for p in device_paths]
    head = ort.InferenceSession(str(head_path), opts, providers=["CPUExecutionProvider"])
    head_inputs = [i.name for i in head.get_inputs()]
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].astype(np.float32)
        sent = [d.run(None, {d.get_inputs()[0].name: xb})[0] for d in devices]
        out.append(head.run(None, dict(zip(head_inputs, sent, strict=True)))[0])
    return np.concatenate(out)


def check_parity(system: NonnSystem, device_paths: list[Path], head_path: Path, x: np.ndarray) -> float:
    """Largest |assembled onnxruntime − torch system| on ``x``; ExportError above PARITY_ATOL."""
    import numpy as np
    import torch

    with torch.no_grad():
        want = system.eval()(torch.from_numpy(x.astype(np.float32))).numpy()
    got = run_assembled(device_paths, head_path, x)
    diff = float(np.max(np.abs(got - want))) if want.size else 0.0
    if not np.isfinite(diff) or diff > PARITY_ATOL:
        raise ExportError(f"The assembled NoNN files (device_*.onnx, head.onnx) differ from the torch "
                          f"system by {diff:.2e} (> {PARITY_ATOL}).",
                          hint="This is a bug in the NoNN export; run with --debug and report it.")
    return diff


def accuracy(logits: np.ndarray, labels: np.ndarray | None) -> float | None:
    if labels is None or len(labels) == 0:
        return None
    return float((logits.argmax(1) == labels).mean())
