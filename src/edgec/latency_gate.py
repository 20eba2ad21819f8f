"""Noise-aware speed gates: a bootstrap confidence interval on the interleaved per-round ratio.

On a shared 2-core runner one p50 ratio wobbles by several percent from run to run, so a gate that
compares a point estimate with its limit flips between pass and fail when the true speedup is near
the limit. Here the gate decides on an interval instead: it fails only when the whole interval is
below the limit, passes when the whole interval is at or above it, and otherwise says
"inconclusive" (which fails only when asked to).

The statistic is the median of per-round ratios baseline_i / compressed_i: rounds are interleaved
(latency.py), so drift that hits both models within a round cancels in each ratio. Neighbouring
rounds still share load spikes, so the resampling is a circular *block* bootstrap: blocks of
consecutive rounds keep that short-range correlation, which an i.i.d. bootstrap would ignore
(giving intervals that are too narrow and verdicts that flip).

Resampling rounds cannot see what differs *between* runs: which memory a session's arenas got,
code alignment, the core it ran on. Two byte-identical copies of one model, timed in the same
rounds, differed by up to 2% here (benchmarks/reference.py's A/A control), and repeated gates at a
limit equal to the true speedup failed 2 of 20 times with the bare interval. So the gate widens the
interval by SESSION_DRIFT on each side before deciding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class RatioInterval:
    estimate: float  # median of the per-round ratios
    low: float
    high: float
    confidence: float
    rounds: int


def round_ratios(reference: list[float], other: list[float]) -> list[float]:
    """Per-round reference/other time ratios (>1: other is faster), rounds paired by position."""
    return [a / b for a, b in zip(reference, other, strict=False) if b > 0]


def bootstrap_median_ci(
    ratios: list[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0,
    block: int | None = None,
) -> RatioInterval:
    """Percentile CI of the median by circular block bootstrap; deterministic for a given seed."""
    import numpy as np

    x = np.asarray(ratios, dtype=np.float64)
    n = len(x)
    if n == 0:
        raise ValueError("no ratios to bootstrap")
    estimate = float(np.median(x))
    if n < 3:
        return RatioInterval(estimate, estimate, estimate, confidence, n)
    # sqrt(n) rounds per block (14 of 200, 45 of 2000): longer than the n^(1/3) textbook rate, so
    # slower load swings on a shared runner stay inside a block (measured: benchmarks/gate_agreement)
    block = block or max(1, round(math.sqrt(n)))
    blocks = math.ceil(n / block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n, size=(resamples, blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % n  # circular blocks
    medians = np.median(x[idx.reshape(resamples, -1)[:, :n]], axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(medians, [alpha, 1 - alpha])
    return RatioInterval(estimate, float(low), float(high), confidence, n)


SESSION_DRIFT = 0.02  # measured run-to-run spread of identical models; see the module docstring


def with_session_drift(interval: RatioInterval, drift: float = SESSION_DRIFT) -> RatioInterval:
    """The interval widened by the between-run drift that per-round resampling cannot see."""
    return RatioInterval(interval.estimate, interval.low * (1 - drift), interval.high * (1 + drift),
                         interval.confidence, interval.rounds)


def decide_at_least(interval: RatioInterval, limit: float) -> Verdict:
    """Verdict for 'ratio >= limit': fail only when the interval is entirely on the wrong side."""
    if interval.low >= limit:
        return "pass"
    if interval.high < limit:
        return "fail"
    return "inconclusive"


def speedup_interval(reference_samples: list[float], other_samples: list[float],
                     confidence: float) -> RatioInterval | None:
    """CI of the paired speedup, or None when the per-round samples were not kept."""
    ratios = round_ratios(reference_samples, other_samples)
    if not ratios:
        return None
    return bootstrap_median_ci(ratios, confidence)
