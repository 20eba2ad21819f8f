"""Side-by-side benchmark: latency statistics, interleaving, accuracy, agreement and ratios."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgec.benchmark import BenchmarkConfig, bench_files, benchmark_models, ratios
from edgec.errors import UsageError
from edgec.latency import LatencyStats, paired_speedup


def _export(model, path, features=16, dynamic=True):
    model.eval()
    torch.onnx.export(model, torch.randn(1, features), str(path), input_names=["x"], dynamo=False,
                      dynamic_axes={"x": {0: "n"}} if dynamic else None)
    return path


def test_latency_stats_percentiles():
    stats = LatencyStats.from_samples([float(i) for i in range(1, 101)], warmup=3)
    assert stats.p50 == 50.5 and stats.min == 1.0 and stats.runs == 100
    assert stats.p90 == 90.0 and stats.p99 == 99.0
    assert "samples" not in stats.to_dict()


def test_paired_speedup_is_median_of_round_ratios():
    a = LatencyStats.from_samples([2.0, 4.0, 6.0], 0)
    b = LatencyStats.from_samples([1.0, 1.0, 2.0], 0)
    assert paired_speedup(a, b) == 3.0


def test_benchmark_accuracy_agreement_and_ratios(tmp_path):
    torch.manual_seed(0)
    big = nn.Sequential(nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 3))
    small = nn.Sequential(nn.Linear(16, 3))
    paths = {"baseline": _export(big, tmp_path / "big.onnx"),
             "compressed": _export(small, tmp_path / "small.onnx")}
    x = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    with torch.no_grad():
        y = big(torch.from_numpy(x)).argmax(1).numpy()
    cfg = BenchmarkConfig(runs=20, warmup=2)
    metrics = benchmark_models(paths, x, y, cfg, (1, 16))
    base, comp = metrics["baseline"], metrics["compressed"]
    assert base.accuracy == 1.0 and base.agreement == 1.0  # labels are the baseline's predictions
    assert comp.accuracy == comp.agreement  # so agreement and accuracy coincide here
    assert base.params == 16 * 256 + 256 + 256 * 3 + 3 and comp.params == 16 * 3 + 3
    assert base.latency_ms.runs == comp.latency_ms.runs == 20
    assert base.eval_samples == 50
    r = ratios(base, comp)
    assert r["params"] == pytest.approx(base.params / comp.params, rel=1e-3)
    assert r["accuracy_drop"] == pytest.approx(1.0 - comp.accuracy)
    assert r["size"] > 10 and r["speedup_paired"] is not None
    d = base.to_dict()
    assert d["latency_ms"]["runs"] == 20 and d["flops"] == 2 * d["macs"]


def test_fixed_batch_model_is_evaluated_in_its_batch(tmp_path):
    path = _export(nn.Linear(16, 4), tmp_path / "fixed.onnx", dynamic=False)
    x = np.random.default_rng(1).standard_normal((7, 16)).astype(np.float32)
    metrics = benchmark_models({"m": path}, x, np.zeros(7, dtype=np.int64), BenchmarkConfig(runs=3),
                               (1, 16), reference="m")
    assert metrics["m"].eval_samples == 7 and metrics["m"].agreement == 1.0


def test_bench_files_reads_shape_and_names(tmp_path):
    a = _export(nn.Linear(16, 4), tmp_path / "a.onnx")
    b = _export(nn.Linear(16, 4), tmp_path / "b.onnx")
    metrics = bench_files([a, b], None, BenchmarkConfig(runs=5, warmup=1))
    assert list(metrics) == ["a", "b"]
    assert metrics["a"].accuracy is None and metrics["a"].agreement is None


def test_bench_files_missing_file(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        bench_files([tmp_path / "nope.onnx"], None, BenchmarkConfig(runs=1))


def test_min_seconds_keeps_timing_past_runs(tmp_path):
    """The rounds go on until they span min_seconds (a lower bound: noise only lengthens it)."""
    import time

    path = _export(nn.Linear(16, 3), tmp_path / "m.onnx")
    t0 = time.perf_counter()
    metrics = bench_files([path], (1, 16), BenchmarkConfig(runs=5, warmup=0, min_seconds=0.3))
    assert time.perf_counter() - t0 >= 0.3
    assert metrics["m"].latency_ms.runs > 5
    assert bench_files([path], (1, 16), BenchmarkConfig(runs=5, warmup=0))["m"].latency_ms.runs == 5


def test_speed_gates_measure_for_ten_seconds_unless_told():
    from edgec.benchmark import GATE_MIN_SECONDS, resolve_min_seconds
    from edgec.recipe import BudgetsConfig

    plain = BenchmarkConfig()
    assert resolve_min_seconds(plain, BudgetsConfig(max_size_kb=10)).min_seconds == 0
    assert resolve_min_seconds(plain, BudgetsConfig(min_speedup=1.2)).min_seconds == GATE_MIN_SECONDS
    assert resolve_min_seconds(plain, BudgetsConfig(max_latency_growth=0.1)).min_seconds == 10
    told = BenchmarkConfig(min_seconds=2)
    assert resolve_min_seconds(told, BudgetsConfig(min_speedup=1.2)).min_seconds == 2


def test_bench_times_the_batch_asked_and_counts_macs_per_sample(tmp_path):
    """--input-shape 8,16 times batches of 8 (the batch read from the very feed), while MACs stay
    per sample, as labelled: the two no longer describe different batches silently."""
    from click.testing import CliRunner

    from edgec.cli import cli

    path = _export(nn.Linear(16, 4), tmp_path / "m.onnx")
    cfg = BenchmarkConfig(runs=3, warmup=0)
    one, eight = (bench_files([path], shape, cfg)["m"] for shape in (None, (8, 16)))
    assert (one.latency_ms.batch, eight.latency_ms.batch) == (1, 8)
    assert one.macs == eight.macs == 16 * 4 and eight.flops == 2 * eight.macs
    assert eight.to_dict()["latency_ms"]["batch"] == 8
    out = CliRunner().invoke(cli, ["bench", str(path), "--input-shape", "8,16", "--runs", "2"]).output
    assert "MACs (batch 1)" in out and "p50 latency (batch 8)" in out


def test_fixed_batch_model_is_timed_at_its_own_batch(tmp_path):
    model = nn.Linear(16, 4).eval()
    path = tmp_path / "b4.onnx"
    torch.onnx.export(model, torch.randn(4, 16), str(path), input_names=["x"], dynamo=False)
    m = bench_files([path], None, BenchmarkConfig(runs=2, warmup=0))["b4"]
    assert m.latency_ms.batch == 4 and m.macs == 16 * 4  # the graph does 4x that per run
    with pytest.raises(UsageError, match=r"--input-shape 1,16 does not fit .*whose input 'x' is 4,16\."):
        bench_files([path], (1, 16), BenchmarkConfig(runs=1))


def test_report_macs_are_per_sample_whatever_the_recipe_batch(tmp_path):
    """model.input_shape [4, ...] in a recipe: report.json's macs (max_macs, 'MACs (batch 1)')
    stay the batch-1 count."""
    path = _export(nn.Linear(16, 4), tmp_path / "m.onnx")
    metrics = benchmark_models({"m": path}, None, None, BenchmarkConfig(runs=2, warmup=0), (4, 16),
                               reference=None)
    assert metrics["m"].macs == 16 * 4 and metrics["m"].flops == 2 * 16 * 4


def test_models_side_by_side_must_take_the_same_input(tmp_path):
    a = _export(nn.Linear(16, 4), tmp_path / "a.onnx")
    b = _export(nn.Linear(8, 4), tmp_path / "b.onnx", features=8)
    with pytest.raises(UsageError, match=r"b.onnx' takes input 1,8 but '.*a.onnx' takes 1,16"):
        bench_files([a, b], None, BenchmarkConfig(runs=1))
