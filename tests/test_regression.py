"""Regression gates against a stored report, on constructed reports (no measurement)."""

from types import SimpleNamespace

import pytest

from edgec.recipe import BudgetsConfig
from edgec.regression import apply_against, environment_diff
from edgec.report import Report

ENV = {"cpu": "X", "machine": "x86_64", "cpu_count": 2, "cpu_flags": ["avx2"], "onnxruntime": "1"}


def _current(size=1000, accuracy=0.95, speedup=2.0, env=ENV):
    report = Report(recipe={}, environment=dict(env))
    report.compressed = SimpleNamespace(size_bytes=size, accuracy=accuracy)
    report.ratios = {"speedup_paired": speedup}
    return report


def _stored(size=1000, accuracy=0.96, speedup=2.2, env=ENV):
    return {"schema": "edgec.report/1", "status": "ok", "environment": dict(env),
            "compressed": {"size_bytes": size, "accuracy": accuracy},
            "ratios": {"speedup_paired": speedup}, "_path": "main.json"}


def test_growth_values_and_gates():
    report = _current(size=1100, accuracy=0.95, speedup=2.0)
    budgets = BudgetsConfig(max_size_growth=0.05, max_latency_growth=0.2, max_accuracy_loss=0.02)
    apply_against(report, _stored(), budgets)
    rows = {r.name: r for r in report.budgets}
    assert rows["max_size_growth"].actual == pytest.approx(0.1) and not rows["max_size_growth"].passed
    assert rows["max_latency_growth"].actual == pytest.approx(0.1)  # 2.2 / 2.0 - 1
    assert rows["max_latency_growth"].passed and rows["max_latency_growth"].verdict == "pass"
    assert rows["max_accuracy_loss"].actual == pytest.approx(0.01) and rows["max_accuracy_loss"].passed
    assert report.against["cross_cpu"] is False and report.against["environment_diff"] == {}
    from edgec.report_text import budget_lines

    shown = {line[0]: line[1:3] for line in budget_lines(report)}  # growth as people read it
    assert shown["max_size_growth"] == ("+5%", "+10%")
    assert shown["max_accuracy_loss"] == ("+2 points", "+1 points")


def test_missing_accuracy_fails_the_gate():
    report = _current(accuracy=None)
    apply_against(report, _stored(), BudgetsConfig(max_accuracy_loss=0.01))
    (row,) = report.budgets
    assert row.actual is None and not row.passed


def test_regression_budgets_without_against_are_reported_not_silent():
    report = _current()
    apply_against(report, None, BudgetsConfig(max_size_growth=0.1))
    assert "--against" in report.findings[0]
    (row,) = report.budgets  # a skipped case in JUnit, SKIPPED in the table: visible, not failed
    assert (row.name, row.passed, row.verdict, row.actual) == ("max_size_growth", True, "skipped", None)


def test_environment_diff_flags_cpu_flags():
    other = {**ENV, "cpu_flags": ["avx2", "avx512_vnni"], "onnxruntime": "2"}
    assert set(environment_diff(other, ENV)) == {"cpu_flags", "onnxruntime"}
    report = _current(env=other)
    apply_against(report, _stored(), BudgetsConfig(max_latency_growth=0.5))
    (row,) = report.budgets
    assert report.against["cross_cpu"] and row.verdict == "inconclusive" and row.passed
    assert any("different CPU" in f for f in report.findings)


def test_a_different_baseline_model_is_pointed_out():
    report = _current()
    report.baseline = SimpleNamespace(params=100, macs=1000)
    report.recipe = {"model": {"input_shape": [1, 1, 8, 8]}}
    stored = {**_stored(), "baseline": {"params": 100, "macs": 1000},
              "recipe": {"model": {"input_shape": [1, 1, 8, 8]}}}
    apply_against(report, stored, BudgetsConfig(max_size_growth=0.1))
    assert not any("different baseline" in f for f in report.findings)
    report = _current()
    report.baseline = SimpleNamespace(params=100, macs=1000)
    apply_against(report, {**stored, "baseline": {"params": 900, "macs": 1000}},
                  BudgetsConfig(max_size_growth=0.1))
    assert any("different baseline model (params 900 there, 100 here)" in f for f in report.findings)


def test_against_without_regression_budgets_says_nothing_is_gated():
    report = _current()
    apply_against(report, _stored(), BudgetsConfig(max_size_kb=100))
    assert any("nothing is gated" in f for f in report.findings) and report.against is not None


def test_a_different_thread_count_makes_latency_inconclusive():
    """Speed-ups change with onnxruntime's thread count (environment.threads = benchmark.threads),
    as they do with the CPU: a comparison across thread counts is flagged, never trusted."""
    from edgec.ci_outputs import summary_markdown

    report = _current(env={**ENV, "threads": 4})
    budgets = BudgetsConfig(max_latency_growth=0.5, max_size_growth=0.1)
    apply_against(report, _stored(env={**ENV, "threads": 1}), budgets)
    rows = {r.name: r for r in report.budgets}
    assert rows["max_latency_growth"].verdict == "inconclusive" and rows["max_latency_growth"].passed
    assert "1 vs 4 threads" in rows["max_latency_growth"].note
    assert rows["max_size_growth"].verdict == "pass"  # sizes do not depend on threads
    assert report.against["cross_threads"] and not report.against["cross_cpu"]
    assert any("1 onnxruntime thread(s), this run with 4" in f for f in report.findings)
    assert "different thread count" in summary_markdown(report)
    report = _current(env={**ENV, "threads": 4})
    apply_against(report, _stored(env={**ENV, "threads": 1}),
                  BudgetsConfig(max_latency_growth=0.5, inconclusive="fail"))
    assert not report.budgets[0].passed
    report = _current(env={**ENV, "threads": 2})
    apply_against(report, _stored(env={**ENV, "threads": 2}), budgets)
    assert {r.verdict for r in report.budgets} == {"pass"} and not report.against["cross_threads"]


def test_a_different_onnxruntime_makes_latency_inconclusive():
    """onnxruntime's kernels time both models: a new version changes the speed-ups as a new CPU
    does, so it is flagged, not trusted (the fingerprint recorded it, but nothing said so)."""
    from edgec.ci_outputs import summary_markdown

    budgets = BudgetsConfig(max_latency_growth=0.5, max_size_growth=0.1)
    report = _current(env={**ENV, "onnxruntime": "1.18.0"})
    apply_against(report, _stored(env={**ENV, "onnxruntime": "1.17.0"}), budgets)
    rows = {r.name: r for r in report.budgets}
    assert rows["max_latency_growth"].verdict == "inconclusive" and rows["max_latency_growth"].passed
    assert "onnxruntime 1.17.0 vs 1.18.0" in rows["max_latency_growth"].note
    assert rows["max_size_growth"].verdict == "pass"  # the model's size does not depend on it
    assert report.against["cross_onnxruntime"] and not report.against["cross_cpu"]
    assert any("onnxruntime 1.17.0, this run with 1.18.0" in f for f in report.findings)
    assert "different onnxruntime" in summary_markdown(report)
    report = _current(env={**ENV, "onnxruntime": "1.18.0"})
    apply_against(report, _stored(env={**ENV, "onnxruntime": "1.17.0"}),
                  BudgetsConfig(max_latency_growth=0.5, inconclusive="fail"))
    assert not report.budgets[0].passed
    report = _current(env={**ENV, "onnxruntime": "1.18.0"})  # unknown in an older report
    apply_against(report, _stored(env={**ENV, "onnxruntime": None}), budgets)
    assert {r.verdict for r in report.budgets} == {"pass"} and not report.against["cross_onnxruntime"]


def _gated_across(current_env: dict, stored_env: dict, size: int = 1000):
    """A run of ``size`` bytes gated against a stored one, each made in its own environment;
    returns the report and its budget rows by name."""
    budgets = BudgetsConfig(max_latency_growth=0.5, max_size_growth=0.05)
    report = _current(size=size, env={**ENV, **current_env})
    apply_against(report, _stored(env={**ENV, **stored_env}), budgets)
    return report, {r.name: r for r in report.budgets}


def test_a_different_exporter_is_a_finding_not_a_verdict():
    """torch and onnx write the graph: sizes and accuracy may move with them, which a reader of
    a size regression must know; the gates still judge the model as built, latency included
    (both models of each run are exported and timed alike)."""
    report, rows = _gated_across({"torch": "2.5.0+cpu", "onnx": "1.17.0"},
                                 {"torch": "2.4.1+cpu", "onnx": "1.17.0"}, size=1100)
    assert rows["max_size_growth"].verdict == "fail" and rows["max_latency_growth"].verdict == "pass"
    assert report.against["cross_exporter"] and not report.against["cross_onnxruntime"]
    (finding,) = [f for f in report.findings if "exporter" in f]
    assert "made with torch 2.4.1+cpu, this run with torch 2.5.0+cpu:" in finding  # onnx is equal
    # one release, another build: no claim
    report, _ = _gated_across({"torch": "2.5.0+cu121"}, {"torch": "2.5.0+cpu"})
    assert not report.against["cross_exporter"] and not any("exporter" in f for f in report.findings)


def test_a_different_edgec_is_a_finding_and_python_is_not():
    """A new edgec may change a pass's defaults: a size or accuracy regression may come from the
    upgrade, which the reader is told; Python's version changes neither graph nor kernels."""
    from edgec.ci_outputs import summary_markdown

    report, rows = _gated_across({"edgec": "0.3.0", "python": "3.12.1"},
                                 {"edgec": "0.2.0", "python": "3.11.7"}, size=1100)
    assert rows["max_size_growth"].verdict == "fail" and rows["max_latency_growth"].verdict == "pass"
    assert report.against["cross_edgec"] and not report.against["cross_exporter"]
    (finding,) = report.findings
    assert "made with edgec 0.2.0, this run with edgec 0.3.0:" in finding
    assert "different edgec" in summary_markdown(report)
    report, _ = _gated_across({"python": "3.12.1"}, {"python": "3.11.7"})
    assert report.findings == [] and report.against["environment_diff"] == {
        "python": ["3.11.7", "3.12.1"]}


def _timed(speedup=2.0, rounds=2000, stored_speedup=2.2, stored_runs=2000):
    """This run with kept timing rounds (p1 speedup about ``speedup``), and a stored report whose
    p1 speedup is ``stored_speedup``, timed for ``stored_runs`` rounds."""
    import numpy as np

    from edgec.latency import LatencyStats

    rng = np.random.default_rng(0)
    base = list(1.0 + rng.exponential(0.05, rounds))
    comp = list(1.0 / speedup + rng.exponential(0.05 / speedup, rounds))
    report = _current()
    report.baseline = SimpleNamespace(latency_ms=LatencyStats.from_samples(base, 10))
    report.compressed.latency_ms = LatencyStats.from_samples(comp, 10)
    report.ratios = {"speedup_p1": round(report.baseline.latency_ms.p1
                                         / report.compressed.latency_ms.p1, 4)}
    stored = _stored()
    stored["ratios"] = {"speedup_p1": stored_speedup}
    stored["baseline"] = {"latency_ms": {"runs": stored_runs, "mean": 1.05}}
    stored["compressed"]["latency_ms"] = {"runs": stored_runs, "mean": 1.05 / stored_speedup}
    return report, stored


@pytest.mark.parametrize(("limit", "verdict"), [(0.2, "pass"), (0.1, "inconclusive"),
                                                 (0.04, "fail")])
def test_latency_growth_is_decided_on_the_interval_not_the_point(limit, verdict):
    """Like min_speedup: the growth interval (stored p1 speedup over this run's interval, widened
    by the run-to-run drift) must be wholly above the limit to fail, wholly below to pass."""
    report, stored = _timed()
    apply_against(report, stored, BudgetsConfig(max_latency_growth=limit))
    (row,) = report.budgets
    assert row.low < row.actual < row.high and row.low == pytest.approx(0.1, abs=0.04)
    assert row.high - row.low > 0.04  # at least the 2% drift on each side
    assert row.verdict == verdict and row.passed == (verdict != "fail")
    assert "CI" in row.note and "drift" in row.note


def test_a_stored_snapshot_makes_latency_growth_inconclusive():
    """A stored report from a run without a speed budget timed its models for a few ms: its
    ratio is a snapshot of that moment's load (an identical model read 11.6% 'faster' against
    one here), so the gate says inconclusive and how to store a better reference."""
    report, stored = _timed(stored_speedup=3.0, stored_runs=20)
    apply_against(report, stored, BudgetsConfig(max_latency_growth=0.1))
    (row,) = report.budgets
    assert row.verdict == "inconclusive" and row.passed  # growth ~50%: would fail on the point
    assert "snapshot" in row.note and "benchmark.min_seconds: 10" in row.note
    assert any("speed-up is a snapshot" in f for f in report.findings)
    report, stored = _timed(stored_speedup=3.0, stored_runs=20)
    apply_against(report, stored, BudgetsConfig(max_latency_growth=0.1, inconclusive="fail"))
    assert not report.budgets[0].passed


def test_the_growth_interval_is_shown_in_percent():
    from edgec.budgets import BudgetRow

    row = BudgetRow("max_latency_growth", 0.1, 0.1, True, "fraction", "inconclusive", 0.078, 0.122)
    assert row.missed_text() == "max_latency_growth (limit +10%, actual +10%, CI +7.8% to +12.2%)"
