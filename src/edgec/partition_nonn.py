"""`method: nonn`: a Network of Neural Networks across K devices (issue 10).

Instead of cutting one model into a chain that ships a large activation tensor at every cut, K
small students run side by side, one per device, each mimicking one community of the teacher's
final-convolution filters (partition_graph), and send only their pooled feature vector. Device 1
also runs the shared head on the vectors it receives (its own plus K−1 others), so K−1 vectors
cross the network per inference.

Steps: teacher outputs on the training data (or on inputs synthesized from the teacher when there
is no data: distill_datafree) → co-activation graph → K balanced communities → each student as
wide as its device's budget allows (partition_students; device 1's budget also holds the head)
→ joint training with KD and community-restricted feature transfer (partition_nonn_train) →
device_K.onnx + head.onnx, checked device by device in onnxruntime against the torch system
(partition_nonn_export) → partition.json and partition.png.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import BudgetError, DataError, UsageError
from edgec.partition_budget import RAM_NOTE, DeviceBudget, describe_overruns, overruns, per_device
from edgec.passes.partition_settings import NonnSettings

if TYPE_CHECKING:
    import torch.nn as nn

    from edgec.data import DataSplits, Split
    from edgec.progress import Progress


@dataclass
class NonnDevice:
    device: int  # 1-based; device 1 also runs the head
    filters: list[int]  # the teacher filters (feature-map channels) its student learns
    width: int
    feature_dim: int  # floats in the vector it sends
    params: int  # device totals: on device 1 student + head
    macs: int
    flash_bytes: int
    ram_bound_bytes: int  # activations at the busiest step, no buffer reuse (what max_ram_kb limits)
    peak_activation_bytes: int  # memory.py's estimate, with buffer reuse
    bytes_out: int  # sent to device 1 per inference (0 for device 1)
    onnx_path: str
    compute_ms: float | None = None  # its student, median onnxruntime time on this host


@dataclass
class NonnPlan:
    devices: list[NonnDevice]
    head: dict  # params, macs, onnx_path, compute_ms
    feature_layer: str
    teacher_filters: int
    modularity: float
    intra_weight_fraction: float  # co-activation weight kept inside communities
    bytes_per_inference: int
    input_bytes: int  # one input; not counted above: each device reads the input itself
    teacher_params: int | None = None
    teacher_accuracy: float | None = None
    accuracy: float | None = None  # assembled files in onnxruntime, on the eval split
    agreement: float | None = None  # with the teacher's top-1 on the eval split
    max_abs_diff: float | None = None  # assembled onnxruntime vs the torch system
    link_mbps: float | None = None
    estimated_latency_ms: float | None = None
    training: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """As in partition.json: file paths relative to its folder, so the folder can move."""
        d = asdict(self)
        for row in [*d["devices"], d["head"]]:
            row["onnx_path"] = Path(row["onnx_path"]).name
        return d


def run_nonn(teacher: nn.Module, data: DataSplits, input_shape: tuple[int, ...], devices: int,
             budgets: DeviceBudget | list[DeviceBudget], settings: NonnSettings, out_dir: Path, *,
             seed: int = 0, link_mbps: float | None = None, progress: Progress | None = None,
             base_dir: Path | None = None) -> NonnPlan:
    """Build, train, export and verify a NoNN system; writes partition.json and partition.png.
    ``base_dir``: where relative paths in ``settings`` (synthesis metadata) resolve. The teacher
    is frozen meanwhile and handed back as it came (a pass after this one may still train it)."""
    from edgec.passes.distill_datafree import frozen

    with frozen(teacher):
        return _run_nonn(teacher, data, input_shape, devices, budgets, settings, out_dir, seed,
                         link_mbps, progress, base_dir)


def _run_nonn(teacher, data, input_shape, devices, budgets, settings, out_dir, seed, link_mbps,
              progress, base_dir) -> NonnPlan:
    import numpy as np
    import torch

    from edgec.partition_graph import balanced_communities, coactivation_graph, intra_fraction, modularity
    from edgec.partition_nonn_export import accuracy, check_parity, export_system, run_assembled
    from edgec.partition_nonn_train import feature_layer, teacher_view, train_students
    from edgec.partition_students import NonnHead, NonnSystem
    from edgec.progress import Progress
    from edgec.torch_stats import count_params
    from edgec.training import evaluate_accuracy

    progress = progress or Progress(enabled=False)
    budgets = per_device(budgets, devices)
    start = time.perf_counter()
    # sizing first: a device that cannot be served fails before any synthesis or training
    layer, feature_shape, num_classes = feature_layer(teacher, input_shape, settings.feature_layer)
    if not 1 <= devices <= feature_shape[1]:
        raise UsageError(f"NoNN gives each device at least one of the teacher's {feature_shape[1]} "
                         f"final filters ('{layer}'), so it needs 1 to {feature_shape[1]} devices, "
                         f"not {devices}.", hint="Use fewer devices, or method: layerwise.")
    students = _sized_students(feature_shape[2], budgets, input_shape, num_classes, settings, seed)
    train_split, val, source = _training_inputs(teacher, data, input_shape, settings, seed, progress,
                                               base_dir or Path.cwd())
    view = teacher_view(teacher, train_split.x, layer)
    graph = coactivation_graph(view.activations)
    communities = balanced_communities(graph, devices)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = NonnHead([s.feature_dim for s in students], num_classes)
    system = NonnSystem(students, head)
    labels = None if settings.alpha >= 1 else train_split.y
    result = train_students(system, communities, view, train_split.x, labels, val, settings, seed, progress)
    paths, head_path = export_system(system, input_shape, out_dir)
    eval_x = data.eval.x
    diff = check_parity(system, paths, head_path, eval_x[:64])
    plan = _measure(paths, head_path, students, communities, budgets, input_shape, link_mbps)
    logits = run_assembled(paths, head_path, eval_x)
    with torch.no_grad():
        t_pred = np.concatenate([teacher(torch.from_numpy(eval_x[i:i + 256])).argmax(1).numpy()
                                 for i in range(0, len(eval_x), 256)])
    plan.feature_layer, plan.teacher_filters = layer, view.features.shape[1]
    plan.modularity = modularity(graph, communities)
    plan.intra_weight_fraction = intra_fraction(graph, communities)
    plan.teacher_params = count_params(teacher)[0]
    plan.teacher_accuracy = evaluate_accuracy(teacher, data.eval)
    plan.accuracy, plan.max_abs_diff = accuracy(logits, data.eval.y), diff
    plan.agreement = float((logits.argmax(1) == t_pred).mean()) if len(t_pred) else None
    plan.training = {"data": source, "train_samples": len(train_split), "epochs": result.history,
                     "best_epoch": result.best_epoch, "seconds": round(time.perf_counter() - start, 2)}
    _write(plan, out_dir, devices)
    return plan


def _training_inputs(teacher, data: DataSplits, input_shape, settings: NonnSettings, seed: int,
                     progress, base_dir: Path) -> tuple[Split, Split | None, str]:
    """(train, hold-out, "real" | "synthetic"). A synthetic hold-out is labelled with the teacher's
    predictions, so the best epoch is the one that agrees with the teacher most."""
    import numpy as np
    import torch

    from edgec.data import Split
    from edgec.training import holdout

    no_data = data.train is None or len(data.train) == 0
    if settings.data == "real" and no_data:
        raise DataError("partition (nonn, data: real) needs a training split, but this run's data "
                        "has none.", hint="Use data: digits / npz / imagefolder, or data: synthetic.")
    if settings.data == "real" or (settings.data == "auto" and not no_data):
        if settings.alpha < 1 and data.train.y is None:
            raise DataError(f"partition (nonn): alpha {settings.alpha} < 1 mixes in the labels, but "
                            "the training data has none.", hint="Set alpha: 1.")
        train_split, val = holdout(data.train, settings.val_fraction, seed)
        return train_split, val, "real"
    from edgec.passes.distill_datafree import synthesize

    with torch.no_grad():
        classes = int(teacher(torch.zeros((1, *input_shape[1:]))).shape[1])
    metadata = None
    if settings.synthetic.method == "dream":
        from edgec.passes.distill_metadata import Metadata

        metadata = Metadata.load(base_dir / settings.synthetic.metadata)
    made = synthesize(teacher, input_shape, classes, settings.synthetic, seed, progress, metadata)
    train_split, val = holdout(Split(made.x, made.y), settings.val_fraction, seed)
    if val is not None:
        with torch.no_grad():
            val = Split(val.x, teacher(torch.from_numpy(val.x)).argmax(1).numpy().astype(np.int64))
    return train_split, val, "synthetic"


def _sized_students(feature_size: int, budgets: list[DeviceBudget], input_shape, num_classes: int,
                    settings: NonnSettings, seed: int) -> list:
    """One student per device, each the widest its budget holds. Devices 2..K first: device 1's
    budget must also hold the head, whose input is every device's vector."""
    import torch

    from edgec.partition_students import NonnStudent, combine, downsample_steps, fit_width, head_cost

    steps = downsample_steps(input_shape[2], feature_size)
    k_total = len(budgets)

    def make(k: int):
        def build(width: int):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + k)  # each student's initialization follows the seed
                return NonnStudent(input_shape[1], width, steps)
        return build

    widths = {}
    for k in range(2, k_total + 1):
        widths[k], _ = fit_width(k, k_total, budgets[k - 1], make(k), input_shape,
                                 max_width=settings.max_width)
    others = [4 * widths[k] for k in range(2, k_total + 1)]
    widths[1], _ = fit_width(1, k_total, budgets[0], make(1), input_shape,
                             extra=lambda w, c: combine(c, head_cost([4 * w, *others], num_classes)),
                             max_width=settings.max_width)
    return [make(k)(widths[k]) for k in range(1, k_total + 1)]


def _measure(paths, head_path, students, communities, budgets, input_shape, link_mbps) -> NonnPlan:
    """Per-device costs from the exported files (checked against the budgets once more), traffic,
    compute times and the latency estimate."""
    import math

    from edgec.partition_pieces import median_compute_ms
    from edgec.partition_students import combine, onnx_cost

    head = onnx_cost(head_path)
    rows = []
    for k, (path, student, filters) in enumerate(zip(paths, students, communities, strict=True)):
        cost = onnx_cost(path, input_shape)
        cost = combine(cost, head) if k == 0 else cost
        if overruns(budgets[k], cost):  # sizing measured the same files; this guards the export
            raise BudgetError(f"Device {k + 1} of {len(paths)}: the exported student needs "
                              f"{describe_overruns(cost, budgets[k])}.")
        rows.append(NonnDevice(
            device=k + 1, filters=list(filters), width=student.width, feature_dim=student.feature_dim,
            params=cost["params"], macs=cost["macs"], flash_bytes=cost["flash"],
            ram_bound_bytes=cost["ram"], peak_activation_bytes=cost["peak"],
            bytes_out=0 if k == 0 else 4 * student.feature_dim,
            onnx_path=str(path), compute_ms=median_compute_ms(path)))
    head_ms = median_compute_ms(head_path)
    sent = sum(d.bytes_out for d in rows)
    plan = NonnPlan(devices=rows, head={"params": head["params"], "macs": head["macs"],
                                        "onnx_path": str(head_path), "compute_ms": head_ms},
                    feature_layer="", teacher_filters=0, modularity=0.0, intra_weight_fraction=0.0,
                    bytes_per_inference=sent, input_bytes=4 * math.prod(input_shape[1:]))
    if link_mbps:
        # the students run at once; their vectors share one link to device 1; then the head
        plan.link_mbps = link_mbps
        plan.estimated_latency_ms = (max(d.compute_ms for d in rows) + sent * 8 / (link_mbps * 1e3)
                                     + head_ms)
    return plan


def _write(plan: NonnPlan, out_dir: Path, devices: int) -> None:
    from edgec.partition_diagram import draw_nonn

    plan.notes.append(f"students run in parallel; devices 2..{devices} send their pooled vectors "
                      "to device 1, which runs the head; each device reads the input itself "
                      f"(forwarding it from one device would add {plan.input_bytes:,} B per other "
                      "device)" if devices > 1 else "one device: nothing is sent")
    if plan.link_mbps:
        plan.notes.append(f"estimated latency at {plan.link_mbps:g} Mbit/s: "
                          f"{plan.estimated_latency_ms:.3f} ms (slowest student + transfers + head)")
    draw_nonn(plan, out_dir / "partition.png", title=f"NoNN, {devices} devices")
    (out_dir / "partition.json").write_text(json.dumps(
        {"method": "nonn", "devices": devices, **plan.to_dict()}, indent=2))


def format_nonn(plan: NonnPlan) -> str:
    """A plain-text table, one row per device, then traffic, accuracy and parity."""
    rows = [f"{'device':>6} {'filters':>7} {'width':>5} {'params':>9} {'MACs':>11} {'flash KiB':>9} "
            f"{'RAM KiB':>8} {'ms':>7} {'sends B':>8}  file"]
    for d in plan.devices:
        ms = f"{d.compute_ms:.3f}" if d.compute_ms is not None else "?"
        extra = " + head.onnx" if d.device == 1 else ""
        rows.append(f"{d.device:>6} {len(d.filters):>7} {d.width:>5} {d.params:>9,} {d.macs:>11,} "
                    f"{d.flash_bytes / 1024:>9.1f} {d.ram_bound_bytes / 1024:>8.1f} {ms:>7} "
                    f"{d.bytes_out:>8,}  {Path(d.onnx_path).name}{extra}")
    rows.append(f"bytes sent between devices per inference: {plan.bytes_per_inference:,}; "
                f"head: {plan.head['params']:,} params on device 1; {RAM_NOTE}")
    acc = (f"accuracy (assembled, onnxruntime) {plan.accuracy:.2%} vs teacher {plan.teacher_accuracy:.2%}"
           if plan.accuracy is not None and plan.teacher_accuracy is not None else "accuracy: no labels")
    if plan.agreement is not None:
        acc += f"; agreement with teacher {plan.agreement:.2%}"
    rows.append(acc)
    rows.append(f"communities of '{plan.feature_layer}' ({plan.teacher_filters} filters): modularity "
                f"{plan.modularity:.3f}, {plan.intra_weight_fraction:.1%} of co-activation kept inside")
    if plan.max_abs_diff is not None:
        rows.append(f"assembled files vs torch system (onnxruntime): max |diff| {plan.max_abs_diff:.2e}")
    rows.extend(plan.notes)
    return "\n".join(rows)
