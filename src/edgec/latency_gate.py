"""Noise-aware speed gates: a bootstrap confidence interval on the interleaved speedup.

On a shared 2-core runner one p50 ratio wobbles by several percent from run to run, so a gate that
compares a point estimate with its limit flips between pass and fail when the true speedup is near
the limit. Here the gate decides on an interval instead: it fails only when the whole interval is
below the limit, passes when the whole interval is at or above it, and otherwise says
"inconclusive" (which fails only when asked to).

The statistic is p1(baseline) / p1(compressed): the ratio of the two models' 1st-percentile
times over the same interleaved rounds (latency.py). Why not the median of per-round ratios, which
cancels drift that hits both models of a round alike? Because the drift on this VM does not hit
them alike: for seconds at a time (episodes of 1-7 s, a quarter to over half of the time) a
neighbour adds a fixed ~20 µs to every inference of a 48-µs fp32 and a 28-µs int8 model (1.70x
undisturbed, 1.42x disturbed) and ~100-150 µs to a 0.72-ms / 0.33-ms pair (2.19x vs 1.7x). A
median moves with the share of disturbed rounds in its window: over 10-second windows of 8 and 5
minutes of recorded rounds it ranged 1.42-1.66x and 1.70-2.10x. The 1st percentile is set by the
undisturbed rounds whenever 1% of the window is undisturbed: over the same windows it stayed
within 1.68-1.72x and 2.16-2.20x (the 10th percentile still moved 1.76-2.18x on the second pair).
It estimates the models' own speed, not the neighbours'; it is the robust form of timeit's advice
to trust the fastest repeat. A gated run measures for ``benchmark.min_seconds`` (10 s by default
when min_speedup is set), longer than the longest disturbed episode seen.

The interval is a circular *block* bootstrap over rounds (a round's two times stay together,
consecutive rounds share load), and it is widened by SESSION_DRIFT on each side for what no
resampling of one run sees: two byte-identical models timed in the same rounds differed by up to
2% here (benchmarks/reference.py's A/A control): arena placement, code alignment, the core.

The median of per-round ratios (``bootstrap_median_ci``) stays the reported ``speedup_paired``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class RatioInterval:
    estimate: float  # the statistic itself: p1 ratio (quantile_ratio_ci) or median per-round ratio
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


GATE_QUANTILE = 0.01  # the undisturbed speed; see the module docstring
MAX_BOOTSTRAP_ROUNDS = 10_000  # a 10-second measurement of a 50-µs model has ~120k rounds


def quantile_ratio(reference: list[float], other: list[float], q: float = GATE_QUANTILE) -> float:
    """The gate's statistic over all rounds: nearest-rank quantile_q(reference) / quantile_q(other)
    from the unrounded times. benchmark.ratios reports the same number as speedup_p1; a ratio of
    LatencyStats.p1 (rounded to 0.1 µs: 0.2% of a 30-µs model) or of a thinned set drifted from it
    by ~0.001, so a miss read 'limit 1.24, actual 1.24'."""
    from edgec.latency import nearest_rank

    n = min(len(reference), len(other))
    return nearest_rank(sorted(reference[:n]), q) / nearest_rank(sorted(other[:n]), q)


def quantile_ratio_ci(
    reference: list[float], other: list[float], q: float = GATE_QUANTILE,
    confidence: float = 0.95, resamples: int = 1000, seed: int = 0,
) -> RatioInterval:
    """quantile_q(reference) / quantile_q(other) with a circular block-bootstrap CI over rounds
    (a round's two times stay together); deterministic for a given seed. Long measurements are
    thinned evenly in time to MAX_BOOTSTRAP_ROUNDS first, so they keep their whole span."""
    import numpy as np

    n = min(len(reference), len(other))
    if n == 0:
        raise ValueError("no rounds to bootstrap")
    estimate = quantile_ratio(reference, other, q)  # all rounds: the reported speedup_p1
    x = np.asarray(reference[:n], dtype=np.float64)
    y = np.asarray(other[:n], dtype=np.float64)
    if n > MAX_BOOTSTRAP_ROUNDS:
        keep = np.linspace(0, n - 1, MAX_BOOTSTRAP_ROUNDS).astype(np.int64)
        x, y = x[keep], y[keep]
    m = len(x)
    if m < 10:
        return RatioInterval(estimate, estimate, estimate, confidence, n)
    block = max(1, round(math.sqrt(m)))
    rng = np.random.default_rng(seed)
    ratios = []
    for chunk in range(0, resamples, 100):  # 100 resamples at a time bounds the memory
        k = min(100, resamples - chunk)
        starts = rng.integers(0, m, size=(k, math.ceil(m / block)))
        idx = ((starts[:, :, None] + np.arange(block)) % m).reshape(k, -1)[:, :m]
        ratios.append(np.quantile(x[idx], q, axis=1) / np.quantile(y[idx], q, axis=1))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(np.concatenate(ratios), [alpha, 1 - alpha])
    return RatioInterval(estimate, float(min(low, estimate)), float(max(high, estimate)),
                         confidence, n)


def speedup_interval(reference_samples: list[float], other_samples: list[float],
                     confidence: float) -> RatioInterval | None:
    """CI of the gate's speedup (p1 ratio), or None when the per-round samples were not kept."""
    if not reference_samples or not other_samples:
        return None
    return quantile_ratio_ci(reference_samples, other_samples, confidence=confidence)
