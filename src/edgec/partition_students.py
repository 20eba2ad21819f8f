"""The NoNN networks: one small CNN student per device, the shared head, and sizing a student to
its device's budget.

A student is a plain CNN of width w: a 3×3 stem and three stages of w, 2w and 4w channels (conv,
BatchNorm, ReLU; six convolutions in all), then global average pooling. Its pooled vector (4w
floats) is all it sends. Plain convolutions rather than residual blocks: the students are small,
export to the simplest ONNX an edge runtime can run, and their cost grows steadily with w, which
the width search relies on. The stride-2 layers are placed so the student's last feature map has
the spatial size of the teacher's (for the attention and feature losses), earliest first: the
stem, then stages 2, 3 and 1, so early layers, which see the largest maps, cost least.

Sizing: every cost (params, MACs, weight bytes, peak activations) grows with w, so the largest
width that fits is found by doubling then bisection, each candidate measured on its exported ONNX
with the layer-wise planner's own cost model (the numbers the report shows and the same
definitions as a layer-wise piece, not a formula that could drift).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from edgec.errors import BudgetError, UsageError
from edgec.partition_budget import DeviceBudget, describe_overruns, overruns

# stride-2 positions in the order they are used: stem, stage 2, stage 3, stage 1
_STRIDE_ORDER = (0, 2, 3, 1)


class NonnStudent(nn.Module):
    """Input → N×4w pooled features. ``features`` gives the last map (for the training losses)."""

    def __init__(self, in_channels: int, width: int, downsample: int = 0):
        super().__init__()
        strides = [1, 1, 1, 1]
        for pos in _STRIDE_ORDER[:min(max(downsample, 0), 4)]:
            strides[pos] = 2
        w = int(width)
        layers, cin = [], in_channels
        # (out channels, stride): stem; stage 1; stage 2 (2 convs); stage 3 (2 convs)
        for cout, stride in ((w, strides[0]), (w, strides[1]), (2 * w, strides[2]), (2 * w, 1),
                             (4 * w, strides[3]), (4 * w, 1)):
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.width, self.feature_dim = w, 4 * w

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)


class NonnHead(nn.Module):
    """The shared classifier: one linear layer over the devices' concatenated vectors."""

    def __init__(self, feature_dims: list[int], num_classes: int):
        super().__init__()
        self.feature_dims = list(feature_dims)
        self.fc = nn.Linear(sum(feature_dims), num_classes)

    def forward(self, *vectors: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.cat(vectors, 1))


class NonnSystem(nn.Module):
    """All devices and the head as one module: what the assembled ONNX pipeline must reproduce."""

    def __init__(self, students: list[NonnStudent], head: NonnHead):
        super().__init__()
        self.students, self.head = nn.ModuleList(students), head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(*(s(x) for s in self.students))


def downsample_steps(input_size: int, feature_size: int) -> int:
    """How many stride-2 layers bring ``input_size`` closest to the teacher's ``feature_size``."""
    if feature_size <= 0 or input_size <= feature_size:
        return 0
    return min(4, round(math.log2(input_size / feature_size)))


def onnx_cost(path: Path | str, input_shape: tuple[int, ...] | None = None) -> dict:
    """What a device model needs, from its ONNX file, in the terms the layer-wise split checks:
    params, MACs, weight bytes ("flash"), activation bytes live at its busiest step without buffer
    reuse ("ram", the bound max_ram_kb limits), plus memory.py's estimate with reuse ("peak")."""
    from edgec.memory import estimate_memory
    from edgec.partition_layerwise import plan_layerwise

    whole = plan_layerwise(path, 1, DeviceBudget(), input_shape).pieces[0]
    return {"params": whole.params, "macs": whole.macs, "flash": whole.flash_bytes,
            "ram": whole.ram_bound_bytes,
            "peak": estimate_memory(path, input_shape).peak_activation_bytes}


def combine(student: dict, head: dict) -> dict:
    """Costs of a device running its student then the head: stored weights and work add up,
    the RAM peak is the larger of the two runs (one after the other)."""
    return {k: max(student[k], head[k]) if k in ("ram", "peak") else student[k] + head[k]
            for k in student}


def export_student(student: nn.Module, input_shape: tuple[int, ...], path: Path) -> Path:
    from edgec.export import export_onnx
    from edgec.recipe import ExportConfig

    export_onnx(student, input_shape, path, ExportConfig())
    return path


def export_head(head: NonnHead, path: Path, opset: int = 17) -> Path:
    """head.onnx: one input per device (from_device_K, N×dim), output the logits."""
    import warnings

    import onnx

    from edgec.export import TORCH_EXPORT_LOCK  # torch.onnx.export is not thread-safe

    names = [f"from_device_{k + 1}" for k in range(len(head.feature_dims))]
    dummies = tuple(torch.zeros(1, d) for d in head.feature_dims)
    dynamic = {n: {0: "batch"} for n in [*names, "output"]}
    with TORCH_EXPORT_LOCK, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(head.eval(), dummies, str(path), dynamo=False, opset_version=opset,
                          input_names=names, output_names=["output"], dynamic_axes=dynamic)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return path


def head_cost(feature_dims: list[int], num_classes: int) -> dict:
    """The head's costs, measured on its export like a student's."""
    with tempfile.TemporaryDirectory() as tmp:
        path = export_head(NonnHead(feature_dims, num_classes), Path(tmp) / "head.onnx")
        return onnx_cost(path)


def fit_width(device: int, devices: int, budget: DeviceBudget, make: Callable[[int], nn.Module],
              input_shape: tuple[int, ...], extra: Callable[[int, dict], dict] | None = None,
              max_width: int = 256) -> tuple[int, dict]:
    """The largest width (≤ max_width) whose student fits ``budget``; returns (width, cost).
    ``extra(width, cost)`` adds what else the device runs (the head on device 1). Raises
    BudgetError naming the device when even width 1 does not fit."""
    if all(v is None for v in budget.model_dump().values()):
        raise UsageError(f"Device {device} has no budget, so its NoNN student cannot be sized.",
                         hint="Give max_params, max_flash_kb, max_macs or max_ram_kb (or a target).")
    memo: dict[int, dict] = {}

    def cost(width: int) -> dict:
        if width not in memo:
            with tempfile.TemporaryDirectory() as tmp:
                c = onnx_cost(export_student(make(width), input_shape, Path(tmp) / "s.onnx"),
                              input_shape)
            memo[width] = extra(width, c) if extra else c
        return memo[width]

    if overruns(budget, cost(1)):
        with_head = " plus the shared head" if extra else ""
        raise BudgetError(
            f"Device {device} of {devices} cannot hold even the smallest NoNN student (width 1, "
            f"{cost(1)['params']:,} params{with_head}): {describe_overruns(cost(1), budget)}. Raise "
            f"device {device}'s budget, or use the layer-wise method or fewer devices.")
    low, high = 1, 2
    while high <= max_width and not overruns(budget, cost(high)):
        low, high = high, high * 2
    high = min(high, max_width + 1)
    while high - low > 1:  # invariant: low fits, high does not (or is past max_width)
        mid = (low + high) // 2
        low, high = (mid, high) if not overruns(budget, cost(mid)) else (low, mid)
    return low, cost(low)
