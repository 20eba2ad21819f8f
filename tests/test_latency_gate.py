"""Noise-aware speed gate: verdicts from a bootstrap CI on injected per-round samples (no timing)."""

import random

import pytest

from edgec.budgets import check_budgets
from edgec.latency import LatencyStats
from edgec.latency_gate import (
    MAX_BOOTSTRAP_ROUNDS,
    bootstrap_median_ci,
    decide_at_least,
    quantile_ratio_ci,
    round_ratios,
    speedup_interval,
)
from edgec.recipe import BudgetsConfig


def _paired(speedup: float, noise: float, n: int = 200, seed: int = 1):
    """Baseline/compressed per-round samples with a true speedup and multiplicative noise."""
    rng = random.Random(seed)
    base, comp = [], []
    for _ in range(n):
        load = rng.uniform(1.0, 3.0)  # a neighbour's load hits both models of a round alike
        base.append(1.0 * load * rng.uniform(1 - noise, 1 + noise))
        comp.append(1.0 / speedup * load * rng.uniform(1 - noise, 1 + noise))
    return base, comp


def test_interval_brackets_true_ratio_and_is_deterministic():
    base, comp = _paired(1.5, 0.05)
    ci = bootstrap_median_ci(round_ratios(base, comp))
    assert ci.low < ci.estimate < ci.high and abs(ci.estimate - 1.5) < 0.03
    assert ci.low < 1.5 + 0.03 and ci.high > 1.5 - 0.03
    assert ci.high - ci.low < 0.1  # the shared load cancels in the per-round ratio
    assert bootstrap_median_ci(round_ratios(base, comp)) == ci


@pytest.mark.parametrize(("limit", "verdict"), [(1.2, "pass"), (2.0, "fail"), (None, "inconclusive")])
def test_verdicts(limit, verdict):
    ci = bootstrap_median_ci(round_ratios(*_paired(1.5, 0.05)))
    assert decide_at_least(ci, ci.estimate if limit is None else limit) == verdict


def test_more_noise_widens_the_interval():
    narrow = bootstrap_median_ci(round_ratios(*_paired(1.5, 0.02)))
    wide = bootstrap_median_ci(round_ratios(*_paired(1.5, 0.3)))
    assert wide.high - wide.low > 2 * (narrow.high - narrow.low)


def _metrics(samples):
    from types import SimpleNamespace

    stats = LatencyStats.from_samples(samples, warmup=0)
    return SimpleNamespace(size_bytes=1, size_gzip_bytes=1, params=1, macs=1, latency_ms=stats,
                           accuracy=None)


@pytest.mark.parametrize(("policy", "passed"), [("pass", True), ("fail", False)])
def test_min_speedup_row_inconclusive_policy(policy, passed):
    base, comp = _paired(1.5, 0.05)
    limit = speedup_interval(base, comp, 0.95).estimate  # right inside the interval
    budgets = BudgetsConfig(min_speedup=limit, inconclusive=policy)
    (row,) = check_budgets(budgets, _metrics(base), _metrics(comp), {"speedup_p50": 1.5})
    assert row.verdict == "inconclusive" and row.passed is passed
    assert row.low < limit < row.high and "CI" in row.note


def test_min_speedup_clear_fail_fails_regardless_of_policy():
    base, comp = _paired(1.1, 0.05)
    (row,) = check_budgets(BudgetsConfig(min_speedup=1.5), _metrics(base), _metrics(comp), {})
    assert row.verdict == "fail" and not row.passed and row.high < 1.5


def test_without_samples_falls_back_to_point_ratio():
    from types import SimpleNamespace

    m = SimpleNamespace(size_bytes=1, size_gzip_bytes=1, params=1, macs=1, accuracy=None,
                        latency_ms=SimpleNamespace(p50=1.0, p90=1.0))
    (row,) = check_budgets(BudgetsConfig(min_speedup=1.2), m, m, {"speedup_p50": 1.3})
    assert row.passed and row.verdict is None and row.actual == 1.3


def test_session_drift_widens_the_interval_both_ways():
    from edgec.latency_gate import SESSION_DRIFT, RatioInterval, decide_at_least, with_session_drift

    ci = RatioInterval(estimate=1.50, low=1.49, high=1.51, confidence=0.95, rounds=200)
    wide = with_session_drift(ci)
    assert wide.estimate == 1.50 and wide.rounds == 200
    assert wide.low == pytest.approx(1.49 * (1 - SESSION_DRIFT))
    assert wide.high == pytest.approx(1.51 * (1 + SESSION_DRIFT))
    # a limit 1% above a tight interval is within run-to-run drift: not a failure
    assert decide_at_least(ci, 1.52) == "fail" and decide_at_least(wide, 1.52) == "inconclusive"


def _disturbed(speedup: float, share: float, n: int = 2000, seed: int = 3):
    """Rounds of a 48-µs baseline and a faster model; in ``share`` of them (in spells, as on a
    shared VM) a neighbour adds the same 20 µs to both, which lowers their per-round ratio."""
    rng = random.Random(seed)
    base, comp, slow = [], [], False
    for _ in range(n):
        if rng.random() < 0.02:  # spells of ~50 rounds
            slow = rng.random() < share
        extra = 0.020 if slow else 0.0
        base.append(0.048 * rng.uniform(1.0, 1.03) + extra)
        comp.append(0.048 / speedup * rng.uniform(1.0, 1.03) + extra)
    return base, comp


def test_p1_gate_measures_the_models_not_the_neighbours():
    """A shared machine's slow spells add the same time to both models: once they are most of
    the rounds the median per-round ratio drops to the disturbed one, while the 1st-percentile
    ratio stays at the models' own speedup."""
    quiet = quantile_ratio_ci(*_disturbed(1.7, share=0.0))
    assert abs(quiet.estimate - 1.7) < 0.03
    for share in (0.3, 0.7, 0.9):
        base, comp = _disturbed(1.7, share=share)
        assert quantile_ratio_ci(base, comp).estimate == pytest.approx(quiet.estimate, rel=0.02)
    assert bootstrap_median_ci(round_ratios(*_disturbed(1.7, share=0.9))).estimate < 1.5


def test_quantile_interval_is_deterministic_and_thins_long_measurements():
    base, comp = _disturbed(1.5, share=0.5, n=3 * MAX_BOOTSTRAP_ROUNDS)
    ci = quantile_ratio_ci(base, comp)
    assert ci.rounds == 3 * MAX_BOOTSTRAP_ROUNDS  # all rounds counted, a thinned set resampled
    assert ci.low <= ci.estimate <= ci.high and ci.high - ci.low < 0.1
    assert quantile_ratio_ci(base, comp) == ci
    assert speedup_interval([], comp, 0.95) is None


@pytest.mark.parametrize("rounds", [200, 3 * MAX_BOOTSTRAP_ROUNDS])
def test_gate_actual_is_the_reported_speedup_p1(rounds):
    """min_speedup's actual and ratios.speedup_p1 are one number (not 1.2403 vs 1.2412 from
    rounded p1 times or a thinned set), and the stored interval reproduces the verdict."""
    from types import SimpleNamespace

    from edgec.benchmark import ratios
    from edgec.latency_gate import RatioInterval

    base, comp = _disturbed(1.2407, share=0.3, n=rounds)  # 48-µs vs 39-µs models
    base_m, comp_m = (SimpleNamespace(**vars(_metrics(s)), nonzero_params=1, flops=2)
                      for s in (base, comp))
    speedup_p1 = ratios(base_m, comp_m)["speedup_p1"]
    for limit in (1.1, speedup_p1, 1.4):
        (row,) = check_budgets(BudgetsConfig(min_speedup=limit), base_m, comp_m, {})
        assert row.actual == speedup_p1 and row.low <= row.actual <= row.high
        stored = RatioInterval(row.actual, row.low, row.high, 0.95, rounds)  # as report.json has it
        assert row.verdict == decide_at_least(stored, limit)
