"""A sweep's baseline measurements are taken once: a hit gives what measuring again would."""

from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

import edgec.benchmark as benchmark
import edgec.profile_ops as profile_ops
from edgec.benchmark import BenchmarkConfig, benchmark_models
from edgec.measure_memo import MeasureMemo
from edgec.profile_ops import ProfileConfig, profile_run


def _export(model, path):
    torch.onnx.export(model.eval(), torch.randn(1, 16), str(path), input_names=["x"], dynamo=False,
                      dynamic_axes={"x": {0: "n"}})
    return path


def _models(tmp_path):
    torch.manual_seed(0)
    return {"baseline": _export(nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 3)),
                                tmp_path / "base.onnx"),
            "compressed": _export(nn.Linear(16, 3), tmp_path / "small.onnx")}


def _counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def _without_latency(metrics):
    return {n: {k: v for k, v in m.to_dict().items() if k != "latency_ms"} for n, m in metrics.items()}


def test_second_benchmark_reuses_the_baselines_measurements(tmp_path, monkeypatch):
    models = _models(tmp_path)
    x = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, 40)
    cfg = BenchmarkConfig(runs=5, warmup=1)
    plain = benchmark_models(models, x, y, cfg, (1, 16))
    memo = MeasureMemo(tmp_path / "memo")
    predicted = _counting(monkeypatch, benchmark, "_predict")
    analyzed = _counting(monkeypatch, benchmark, "_static_metrics")
    first = benchmark_models(models, x, y, cfg, (1, 16), memo=memo)
    assert len(predicted) == 2 and len(analyzed) == 2
    second = benchmark_models(models, x, y, cfg, (1, 16), memo=memo)
    assert len(predicted) == 3 and len(analyzed) == 3  # only the compressed model again
    assert _without_latency(first) == _without_latency(second) == _without_latency(plain)
    assert second["baseline"].latency_ms.runs == 5  # latency is always measured, side by side


def test_other_inputs_or_settings_are_measured_not_reused(tmp_path, monkeypatch):
    models = _models(tmp_path)
    x = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32)
    memo = MeasureMemo(tmp_path / "memo")
    benchmark_models(models, x, None, BenchmarkConfig(runs=2), (1, 16), memo=memo)
    predicted = _counting(monkeypatch, benchmark, "_predict")
    benchmark_models(models, x[:30], None, BenchmarkConfig(runs=2), (1, 16), memo=memo)
    benchmark_models(models, x, None, BenchmarkConfig(runs=2, threads=2), (1, 16), memo=memo)
    assert [a[3] for a in predicted] == ["baseline", "compressed"] * 2
    assert len(list((tmp_path / "memo").glob("static-*.json"))) == 3


def test_a_damaged_entry_is_measured_again(tmp_path):
    models = _models(tmp_path)
    x = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32)
    memo = MeasureMemo(tmp_path / "memo")
    first = benchmark_models(models, x, None, BenchmarkConfig(runs=2), (1, 16), memo=memo)
    for entry in (tmp_path / "memo").glob("static-*.json"):
        entry.write_text(json.dumps({"something": "else"}))
    again = benchmark_models(models, x, None, BenchmarkConfig(runs=2), (1, 16), memo=memo)
    assert _without_latency(first) == _without_latency(again)


def test_profile_of_the_baseline_is_taken_once(tmp_path, monkeypatch):
    models = _models(tmp_path)
    x = np.zeros((4, 16), dtype=np.float32)
    memo = MeasureMemo(tmp_path / "memo")
    profiled = _counting(monkeypatch, profile_ops, "profile_model")
    config = ProfileConfig(runs=3, warmup=1)
    first = profile_run(models, x, (1, 16), 1, 1, config, memo=memo)
    second = profile_run(models, x, (1, 16), 1, 1, config, memo=memo)
    assert [a[0].name for a in profiled] == ["base.onnx", "small.onnx", "small.onnx"]
    assert first["models"]["baseline"] == second["models"]["baseline"]
    assert second["models"]["baseline"]["runs"] == 3


def test_a_damaged_profile_entry_is_profiled_again(tmp_path):
    models = _models(tmp_path)
    x = np.zeros((4, 16), dtype=np.float32)
    memo = MeasureMemo(tmp_path / "memo")
    config = ProfileConfig(runs=3, warmup=1)
    profile_run(models, x, (1, 16), 1, 1, config, memo=memo)
    for entry in (tmp_path / "memo").glob("profile-*.json"):
        entry.write_text("[1, 2]")
    again = profile_run(models, x, (1, 16), 1, 1, config, memo=memo)
    assert again["models"]["baseline"]["runs"] == 3
