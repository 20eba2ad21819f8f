"""Latency with onnxruntime on the host CPU, measured side by side.

Models are timed *interleaved* — one run of each per round, in a fresh seeded random order every round — so a
noisy neighbour, frequency scaling or thermal drift hits all models alike and their ratio stays
stable even when absolute times wander (the property CI gates rely on). Sessions are configured
identically: the given intra-op thread count, one inter-op thread, sequential execution, all graph
optimizations on.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import BenchmarkError
from edgec.progress import Progress

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort


@dataclass
class LatencyStats:
    """Milliseconds per inference of ``batch`` samples over ``runs`` timed runs (after
    ``warmup`` untimed ones)."""

    p1: float  # the undisturbed speed: see latency_gate.py for why speed gates use it
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    runs: int
    warmup: int
    samples: list[float] = field(default_factory=list, repr=False)  # not serialized: too long
    batch: int = 1  # the batch timed: MACs are per sample, a time is for the whole batch

    @classmethod
    def from_samples(cls, samples_ms: list[float], warmup: int, batch: int = 1) -> LatencyStats:
        ordered = sorted(samples_ms)

        def pct(q: float) -> float:
            return nearest_rank(ordered, q)

        return cls(
            p1=round(pct(0.01), 4), p50=round(statistics.median(ordered), 4),
            p90=round(pct(0.90), 4), p99=round(pct(0.99), 4),
            mean=round(statistics.fmean(ordered), 4),
            std=round(statistics.pstdev(ordered), 4) if len(ordered) > 1 else 0.0,
            min=round(ordered[0], 4), runs=len(ordered), warmup=warmup, samples=list(samples_ms),
            batch=batch,
        )

    def to_dict(self) -> dict:
        return {k: getattr(self, k)
                for k in ("p1", "p50", "p90", "p99", "mean", "std", "min", "runs", "warmup", "batch")}


def make_session(path: Path, threads: int, profile_prefix: str | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session with a fixed, recorded configuration (optionally profiling)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if profile_prefix:  # same session settings as the benchmark, plus onnxruntime's profiler
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # warnings about unused initializers are noise for users
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise BenchmarkError(
            f"onnxruntime cannot load '{path}': {text}",
            hint="If an operator or data type is not implemented, change what produced the model "
            "(in a recipe: exclude that op from quantization, or lower export.opset).",
        ) from exc


def run_session(session: ort.InferenceSession, feed: dict[str, np.ndarray], name: str):
    """One inference; an onnxruntime failure names the model."""
    try:
        return session.run(None, feed)
    except Exception as exc:
        # the whole message on one line: its first line alone ends mid-sentence ("for the
        # following indices"), the indices are on the next ones
        text = " ".join(str(exc).split()).removeprefix("[ONNXRuntimeError] : ")[:500]
        text = text or type(exc).__name__
        raise BenchmarkError(
            f"onnxruntime failed running model '{name}': {text}",
            hint="Check the input shape (--input-shape / model.input_shape) matches the model.",
        ) from exc


def measure_latency_interleaved(
    sessions: Mapping[str, ort.InferenceSession],
    feeds: Mapping[str, dict[str, np.ndarray]],
    runs: int,
    warmup: int,
    progress: Progress | None = None,
    min_seconds: float = 0.0,
) -> dict[str, LatencyStats]:
    """Time every session ``runs`` times, interleaved round by round — and on, until the timed
    rounds span ``min_seconds``; returns stats by name."""
    names = list(sessions)
    for name in names:  # first run allocates arenas and can fail: keep it out of the timings
        run_session(sessions[name], feeds[name], name)
    samples: dict[str, list[float]] = {n: [] for n in names}
    import numpy as np

    rng = np.random.default_rng(0)
    with (progress or Progress()).task("latency", warmup + runs) as advance:
        r, until, shown = 0, None, 0.0
        while r < warmup + runs or (until is not None and time.perf_counter() < until):
            if r == warmup and min_seconds > 0:
                until = time.perf_counter() + min_seconds
            # A fresh seeded order each round: rotating a fixed order would keep every model's
            # predecessor the same, and a heavy predecessor (cache, frequency) biases the ratio.
            for name in rng.permutation(names).tolist():
                session, feed = sessions[name], feeds[name]
                t0 = time.perf_counter_ns()
                session.run(None, feed)
                elapsed = (time.perf_counter_ns() - t0) / 1e6
                if r >= warmup:
                    samples[name].append(elapsed)
            r += 1
            if r <= warmup + runs:
                advance(1)
            elif until is not None and time.perf_counter() - shown > 0.5:  # filling min_seconds
                shown = time.perf_counter()
                advance(0, rounds=r - warmup, left=f"{max(0.0, until - shown):.0f}s")
    return {n: LatencyStats.from_samples(samples[n], warmup, batch=_fed_batch(feeds[n]))
            for n in names}


def _fed_batch(feed: Mapping[str, np.ndarray]) -> int:
    """The batch a feed really holds (a fixed-batch model's inputs are padded to its batch)."""
    x = next(iter(feed.values()), None)
    return int(x.shape[0]) if x is not None and x.ndim else 1


def nearest_rank(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted samples by nearest rank: robust, no interpolation between
    outliers. The speed gate's p1 ratio (latency_gate.quantile_ratio) uses it too."""
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def paired_speedup(reference: LatencyStats, other: LatencyStats) -> float | None:
    """Median of per-round time ratios reference/other: robust to drift that hits both alike."""
    pairs = [a / b for a, b in zip(reference.samples, other.samples, strict=False) if b > 0]
    return round(statistics.median(pairs), 4) if pairs else None
