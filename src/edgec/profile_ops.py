"""Where does the time go: per-operator time from onnxruntime's own profiler.

The profiler records every kernel call of every run. We keep the runs after ``warmup`` (the first
runs allocate arenas and warm caches), take each operator type's median time per run and divide
by the median ``model_run`` time, so each op's *share of latency* is a ratio within one model:
comparable between baseline and compressed even though absolute times on a shared machine are
not. Op types are the ones onnxruntime executes after its graph optimizations (e.g. Conv+Relu
fused, QLinearConv for a QDQ int8 convolution), which is what the time is really spent in. What
is not in a kernel (input copies, scheduling) is reported as "(framework overhead)".
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from edgec.config import ConfigModel

if TYPE_CHECKING:
    import numpy as np

    from edgec.measure_memo import MeasureMemo

OVERHEAD = "(framework overhead)"


class ProfileConfig(ConfigModel):
    """The operator time profile shown in report.html (and report.json's op_profile)."""

    enabled: bool = Field(True, description="Profile baseline and compressed with onnxruntime's "
                          "profiler after benchmarking (a few seconds on small models).")
    runs: int = Field(30, ge=1, le=10_000, description="Profiled inferences per model (after warmup).")
    warmup: int = Field(5, ge=0, le=10_000, description="Inferences per model left out of the profile.")
    top: int = Field(8, ge=1, le=100, description="Operator types listed per model; the rest are "
                     "summed as '(other)'.")


@dataclass
class OpTime:
    op_type: str
    us_per_run: float  # median over runs of the µs one inference spends in this op type
    share: float  # us_per_run / the median model_run time (shares of medians: may not sum to 1)
    calls_per_run: float


@dataclass
class OpProfile:
    runs: int
    run_us: float  # median model_run time of the profiled runs, µs (with the profiler's own cost)
    ops: list[OpTime] = field(default_factory=list)  # by share, descending; overhead included

    def to_dict(self) -> dict:
        return asdict(self)


def profile_model(path: Path, x: np.ndarray, threads: int, runs: int, warmup: int,
                  name: str = "model") -> OpProfile:
    """Run ``path`` on ``x`` warmup + runs times under onnxruntime's profiler; aggregate per op."""
    from edgec.benchmark import _feed
    from edgec.latency import make_session, run_session

    with tempfile.TemporaryDirectory(prefix="edgec-profile-") as tmp:
        session = make_session(path, threads, profile_prefix=str(Path(tmp) / "ort"))
        feed = _feed(session, x, name)
        for _ in range(warmup + runs):
            run_session(session, feed, name)
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    return summarize_events(events, warmup)


def summarize_events(events: list[dict], warmup: int) -> OpProfile:
    """Aggregate a Chrome-trace profile (onnxruntime's format) into per-op-type shares.

    Per op type, the median over runs of its time in one run: a neighbour's burst on a shared
    machine inflates one run, not the median.
    """
    import bisect
    import statistics

    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                   if e.get("cat") == "Session" and e.get("name") == "model_run")[warmup:]
    if not spans:
        return OpProfile(runs=0, run_us=0.0)
    starts = [begin for begin, _ in spans]
    per_run: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(spans))
    calls: dict[str, int] = defaultdict(int)
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        i = bisect.bisect_right(starts, e["ts"]) - 1
        if i < 0 or e["ts"] > spans[i][1]:
            continue  # a warmup run's kernel
        op = e.get("args", {}).get("op_name", "?")
        per_run[op][i] += e["dur"]
        calls[op] += 1
    run_times = [end - begin for begin, end in spans]
    kernel_sums = [sum(times[i] for times in per_run.values()) for i in range(len(spans))]
    per_run[OVERHEAD] = [max(0.0, r - k) for r, k in zip(run_times, kernel_sums, strict=True)]
    run_us = statistics.median(run_times)
    ops = []
    for op, times in per_run.items():
        us = statistics.median(times)
        ops.append(OpTime(op, round(us, 2), round(us / run_us, 4) if run_us else 0.0,
                          round(calls[op] / len(spans), 2)))
    ops.sort(key=lambda o: -o.us_per_run)
    return OpProfile(runs=len(spans), run_us=round(run_us, 2), ops=ops)


def top_ops(profile: dict, top: int) -> list[dict]:
    """The ``top`` largest op rows of a profile dict, the rest summed as '(other)'."""
    ops = profile.get("ops", [])
    head, tail = ops[:top], ops[top:]
    if tail:
        head = [*head, {"op_type": "(other)", "us_per_run": round(sum(o["us_per_run"] for o in tail), 2),
                        "share": round(sum(o["share"] for o in tail), 4),
                        "calls_per_run": round(sum(o["calls_per_run"] for o in tail), 2)}]
    return head


def profile_run(models: dict[str, Path], eval_x, input_shape: tuple[int, ...], batch_size: int,
                threads: int, config: ProfileConfig, memo: MeasureMemo | None = None,
                reference: str = "baseline") -> dict | None:
    """Profiles of each named model on the benchmark's latency input; None when disabled.
    ``memo`` (a sweep's) keeps the ``reference`` model's profile for the variants after the first."""
    if not config.enabled:
        return None
    from edgec.benchmark import _latency_input

    x = _latency_input(eval_x, input_shape, batch_size)
    out = {}
    for name, path in models.items():
        key = None
        if memo is not None and name == reference:
            settings = {"threads": threads, "runs": config.runs, "warmup": config.warmup}
            key = memo.key("profile", path, (x,), settings)
            cached = memo.get(key)
            out[name] = cached if isinstance(cached, dict) and {"runs", "ops"} <= cached.keys() else None
        if out.get(name) is None:
            out[name] = profile_model(path, x, threads, config.runs, config.warmup, name).to_dict()
            if key is not None:
                memo.put(key, out[name])
    return {"threads": threads, "batch_size": batch_size, "models": out}
