"""mode: auto — int8 only where it pays on this CPU, so the result is never slower than float.

1. Profile the float and the all-int8 model with onnxruntime's profiler (same session settings
   as the benchmark: 1 thread, all optimizations) and attribute each kernel's time to a layer of
   the original graph. onnxruntime renames nodes while optimizing (``fused X``, ``X_token_3``,
   NCHWc convolutions named after their *output tensor* + ``_nchwc``), so names are resolved
   back through those patterns and, for tensor names, through the producing activation/Add.
2. Layers whose int8 kernel is not faster than their float kernel stay float (``decide``).
3. Quantize again with them excluded, then time float, all-int8 and mixed end to end, interleaved,
   and keep the smallest (``prefer: speed``: the fastest) model that is not slower than float —
   the float model itself if neither int8 model is (``choose_model``). Conversions (Quantize/
   Dequantize/Transpose) that a per-layer view cannot attribute are covered by that check.

The decision functions take plain numbers so tests can inject profiles instead of timing.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.passes.quantize_errors import COMPUTE_OPS

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from edgec.passes.base import Pass

CHECK_RUNS = 150  # interleaved end-to-end runs for the final choice
_ACTIVATIONS = {"Relu", "Clip", "Add", "Sigmoid", "HardSigmoid", "Mul", "BatchNormalization",
                "LeakyRelu", "Sum"}


@dataclass
class Decision:
    name: str
    op_type: str
    float_us: float | None
    int8_us: float | None
    decision: str  # "int8" | "float"
    reason: str


def decide(layers: dict[str, str], float_us: dict[str, float], int8_us: dict[str, float],
           min_gain: float = 1.0) -> list[Decision]:
    """Per layer (name → op type): int8 only when its kernel is faster than float by min_gain×."""
    out = []
    for name, op in layers.items():
        f, q = float_us.get(name), int8_us.get(name)
        if q is None or f is None:
            d, why = "float", "not found in both profiles"
        elif q * min_gain < f:
            d, why = "int8", f"int8 kernel {f / q:.2f}x faster"
        else:
            d, why = "float", f"int8 kernel {f / q:.2f}x the float speed: does not pay"
        out.append(Decision(name, op, f, q, d, why))
    return out


def choose_model(speedups: dict[str, float], sizes: dict[str, int], prefer: str = "size") -> str:
    """Of the candidates not slower than "float" (speed-up vs float >= 1), the smallest (prefer:
    size) or the fastest (speed; ties go to the smaller); "float" when none qualifies."""
    ok = [n for n, s in speedups.items() if n != "float" and s >= 1.0]
    if not ok:
        return "float"
    if prefer == "speed":
        return max(ok, key=lambda n: (speedups[n], -sizes[n]))
    return min(ok, key=lambda n: sizes[n])


def keep_fast_layers(p: Pass, fp32: Path, dst: Path, requantize: Callable[[list[str], Path], None],
                     excluded: list[str], x: np.ndarray) -> bool:
    """Turn the all-int8 model at ``dst`` into the auto result; True if ``dst`` changed."""
    import onnx

    runs = p.config.profile_runs
    float_model = onnx.load(str(fp32))
    layers = {n.name: n.op_type for n in float_model.graph.node
              if n.op_type in COMPUTE_OPS and n.name not in excluded}
    float_us = profile_layers(fp32, float_model, x, runs)
    int8_us = profile_layers(dst, onnx.load(str(dst)), x, runs)
    decisions = decide(layers, float_us, int8_us)
    slow = [d.name for d in decisions if d.decision == "float"]
    mixed = dst.with_name(dst.stem + "-mixed.onnx")
    all_int8 = dst.with_name(dst.stem + "-all-int8.onnx")
    shutil.copyfile(dst, all_int8)
    candidates = {"float": fp32, "all_int8": all_int8}
    if slow and len(slow) < len(layers):
        requantize([*excluded, *slow], mixed)
        candidates["mixed"] = mixed
    speedups = _speedups(candidates, x)
    sizes = {n: path.stat().st_size for n, path in candidates.items()}
    chosen = choose_model(speedups, sizes, p.config.prefer)
    if chosen == "float":
        slow = list(layers)
    elif chosen == "all_int8":
        slow = []
    for d in decisions:  # the final model's truth, with the per-layer reason kept
        if (d.name in slow) != (d.decision == "float"):
            d.decision = "float" if d.name in slow else "int8"
            d.reason += (f"; overridden: end-to-end the {chosen} model was the "
                         + ("fastest" if p.config.prefer == "speed" else "smallest not slower"))
    shutil.copyfile(candidates[chosen], dst)
    for path in (mixed, all_int8):
        path.unlink(missing_ok=True)
    p.details.update(auto_choice=chosen, auto_speedups_vs_float=speedups, auto_sizes=sizes,
                     auto_float_layers=slow, auto_decisions=[asdict(d) for d in decisions])
    p.note(f"mode: auto kept {len(layers) - len(slow)} of {len(layers)} layers in int8 "
           f"({chosen} model; end-to-end speed vs float: "
           + ", ".join(f"{n} {s:.2f}x" for n, s in speedups.items() if n != "float") + ")")
    return chosen != "all_int8"


def _speedups(candidates: dict[str, Path], x: np.ndarray) -> dict[str, float]:
    from edgec.benchmark import _feed
    from edgec.latency import make_session, measure_latency_interleaved, paired_speedup

    sessions = {n: make_session(path, 1) for n, path in candidates.items()}
    feeds = {n: _feed(s, x, n) for n, s in sessions.items()}
    stats = measure_latency_interleaved(sessions, feeds, CHECK_RUNS, 20)
    return {n: (1.0 if n == "float" else paired_speedup(stats["float"], stats[n]) or 0.0)
            for n in candidates}


def profile_layers(path: Path, model: onnx.ModelProto, x: np.ndarray, runs: int) -> dict[str, float]:
    """Mean kernel µs per inference of each compute layer of ``model`` (by original node name)."""
    import os
    import tempfile

    import onnxruntime as ort

    from edgec.benchmark import _feed

    with tempfile.TemporaryDirectory(prefix="edgec-profile-") as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "profile")
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = _feed(session, x, path.name)
        for _ in range(3):  # warm-up runs are profiled too; they are dropped below
            session.run(None, feed)
        warm = 3
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    return attribute_events(events, model, warm, runs)


def attribute_events(events: list[dict], model: onnx.ModelProto, skip_runs: int,
                     runs: int) -> dict[str, float]:
    """Sum profiler kernel times per original layer, skipping the first ``skip_runs`` runs."""
    resolve = _resolver(model)
    per_node: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            per_node.setdefault(e["name"][: -len("_kernel_time")], []).append(float(e["dur"]))
    out: dict[str, float] = {}
    for node, times in per_node.items():
        layer = resolve(node)
        if layer is not None:
            kept = times[len(times) - runs:] if len(times) >= runs + skip_runs else times
            out[layer] = out.get(layer, 0.0) + sum(kept) / max(len(kept), 1)
    return {k: round(v, 3) for k, v in out.items()}


def _resolver(model: onnx.ModelProto) -> Callable[[str], str | None]:
    compute = {n.name for n in model.graph.node if n.op_type in COMPUTE_OPS}
    producer = {o: n for n in model.graph.node for o in n.output}

    def walk_back(tensor: str, depth: int = 0) -> str | None:
        node = producer.get(tensor)
        if node is None or depth > 4:
            return None
        if node.name in compute:
            return node.name
        if node.op_type in _ACTIVATIONS | {"QuantizeLinear", "DequantizeLinear"}:
            for inp in node.input:
                found = walk_back(inp, depth + 1)
                if found:
                    return found
        return None

    def resolve(name: str) -> str | None:
        base = re.sub(r"(_token_\d+)+$", "", name.removeprefix("fused ")).removesuffix("_nchwc")
        if base in compute:
            return base
        return walk_back(base)

    return resolve
