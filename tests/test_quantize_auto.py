"""mode: auto — per-layer int8/float decisions and the never-slower choice, on injected profiles.

Timings are never asserted: the decision functions take numbers, and the end-to-end pass is run
with the profiler and the latency check replaced by fixed values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgec.passes import quantize_auto
from edgec.passes.quantize import Quantize, QuantizeConfig
from edgec.passes.quantize_auto import attribute_events, choose_model, decide

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_decide_keeps_int8_only_where_it_is_faster():
    layers = {"big": "Conv", "small": "Conv", "tie": "Gemm", "gone": "Conv"}
    f = {"big": 100.0, "small": 5.0, "tie": 10.0, "gone": 3.0}
    q = {"big": 40.0, "small": 9.0, "tie": 10.0}
    got = {d.name: d.decision for d in decide(layers, f, q)}
    assert got == {"big": "int8", "small": "float", "tie": "float", "gone": "float"}
    assert {d.name: d.decision for d in decide(layers, f, q, min_gain=3.0)}["big"] == "float"


@pytest.mark.parametrize(("speedups", "expected"), [
    ({"float": 1.0, "all_int8": 1.6, "mixed": 1.3}, "all_int8"),  # both pay: the smaller one
    ({"float": 1.0, "all_int8": 0.8, "mixed": 1.1}, "mixed"),  # int8 everywhere is slower
    ({"float": 1.0, "all_int8": 0.7, "mixed": 0.9}, "float"),  # nothing pays: never slower
    ({"float": 1.0, "all_int8": 0.9}, "float"),
])
def test_choose_model_is_never_slower_than_float(speedups, expected):
    sizes = {"float": 400, "all_int8": 100, "mixed": 150}
    assert choose_model(speedups, sizes) == expected


def test_prefer_speed_keeps_the_fastest_that_pays():
    sizes = {"float": 400, "all_int8": 100, "mixed": 150}
    faster_mixed = {"float": 1.0, "all_int8": 1.37, "mixed": 1.65}  # measured on the pruned ResNet
    assert choose_model(faster_mixed, sizes) == "all_int8"
    assert choose_model(faster_mixed, sizes, prefer="speed") == "mixed"
    assert choose_model({"float": 1.0, "all_int8": 1.4, "mixed": 1.4}, sizes, "speed") == "all_int8"
    assert choose_model({"float": 1.0, "all_int8": 0.9, "mixed": 0.95}, sizes, "speed") == "float"


def _graph() -> onnx.ModelProto:
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="/0/Conv"),
        helper.make_node("Relu", ["c0"], ["/1/Relu_output_0"], name="/1/Relu"),
        helper.make_node("Gemm", ["/1/Relu_output_0", "w1"], ["y"], name="/5/Gemm"),
    ]
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, None)],
                              [vi("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph)


def test_profiler_names_resolve_to_original_layers():
    def ev(name, dur):
        return {"cat": "Node", "name": f"{name}_kernel_time", "dur": dur}

    runs = [ev("/1/Relu_output_0_nchwc", 10), ev("fused /5/Gemm", 4), ev("ReorderOutput", 99),
            ev("/0/Conv_token_1", 2)]
    events = runs * 5  # 2 warm-up runs skipped, 3 kept
    got = attribute_events(events, _graph(), skip_runs=2, runs=3)
    assert got == {"/0/Conv": 12.0, "/5/Gemm": 4.0}  # the NCHWc conv and its token twin


def _export(path: Path) -> Path:
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10)).eval()
    torch.onnx.export(model, torch.randn(1, 1, 8, 8), str(path), input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False)
    return path


@pytest.mark.parametrize(("speed", "expect_float"), [
    ({"all_int8": 0.5, "mixed": 1.2}, ["/2/Conv"]),
    ({"all_int8": 0.5, "mixed": 0.8}, ["/0/Conv", "/2/Conv", "/5/Gemm"]),
])
def test_auto_pass_keeps_slow_layers_float(tmp_path, monkeypatch, speed, expect_float):
    from tests.test_quantize import _ctx

    src = _export(tmp_path / "fp32.onnx")
    profiles = {"float": {"/0/Conv": 10.0, "/2/Conv": 5.0, "/5/Gemm": 8.0},
                "int8": {"/0/Conv": 4.0, "/2/Conv": 9.0, "/5/Gemm": 3.0}}
    monkeypatch.setattr(quantize_auto, "profile_layers", lambda path, model, x, runs: profiles[
        "int8" if any(n.op_type == "DequantizeLinear" for n in model.graph.node) else "float"])
    monkeypatch.setattr(quantize_auto, "_speedups",
                        lambda c, x: {n: 1.0 if n == "float" else speed[n] for n in c})
    p = Quantize(QuantizeConfig(type="quantize", mode="auto", preprocess=False))
    dst = tmp_path / "out.onnx"
    p.apply(src, dst, _ctx(tmp_path, n=16))
    d = p.details
    assert sorted(d["auto_float_layers"]) == expect_float
    decisions = {r["name"]: r["decision"] for r in d["auto_decisions"]}
    assert {n for n, v in decisions.items() if v == "float"} == set(expect_float)
    errors = {r["name"]: r["int8"] for r in d["layer_errors"]}  # the table shows the final model
    assert {n for n, v in errors.items() if not v} == set(expect_float)
    if len(expect_float) == 3:  # nothing paid: the float model itself
        assert d["auto_choice"] == "float" and "QuantizeLinear" not in d.get("quant_ops", {})
    out = dst.stat().st_size
    assert (out < src.stat().st_size) == (len(expect_float) < 3)
    assert any("mode: auto" in n for n in p.notes)


def test_auto_requires_qdq():
    with pytest.raises(ValueError, match="format: qdq"):
        QuantizeConfig(type="quantize", mode="auto", format="qoperator")
    assert QuantizeConfig(type="quantize", mode="auto").data_requirement()
    np.testing.assert_equal(QuantizeConfig(type="quantize", mode="auto").profile_runs, 30)
    with pytest.raises(ValueError, match="prefer only applies to mode: auto"):
        QuantizeConfig(type="quantize", mode="static", prefer="speed")
