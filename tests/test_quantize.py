"""The quantize pass on a tiny exported conv net: graph form, size, fidelity, notes and details."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

from edgec.cpu import cpu_flags, has_vnni
from edgec.errors import PassError
from edgec.passes import quantize as quantize_module
from edgec.passes.base import PassContext
from edgec.passes.quantize import Quantize, QuantizeConfig
from edgec.passes.quantize_calib import CalibrationReader, calibration_batches, graph_input
from edgec.progress import Progress

SHAPE = (1, 1, 8, 8)
# torch's TorchScript exporter (the one edgec uses) warns that it is legacy on every call
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _export(path: Path, batch: int | None = 1) -> Path:
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    # the Linear layer holds most of the ~45k weights, so int8 shows as a ~4× smaller file
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 20), nn.ReLU(), nn.Linear(20, 10),
    ).eval()
    dynamic = {"input": {0: "batch"}} if batch is None else None
    torch.onnx.export(model, torch.randn(batch or 1, *SHAPE[1:]), str(path), input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes=dynamic)
    return path


@pytest.fixture(scope="module")
def fp32(tmp_path_factory) -> Path:
    return _export(tmp_path_factory.mktemp("model") / "fp32.onnx")


def _ctx(tmp_path: Path, n: int = 64, x: np.ndarray | None = None) -> PassContext:
    if x is None:
        x = np.random.default_rng(1).standard_normal((n, *SHAPE[1:])).astype(np.float32)
    data = SimpleNamespace(calib=SimpleNamespace(x=x, y=np.zeros(len(x), dtype=np.int64)))
    return PassContext(data=data, baseline=None, input_shape=SHAPE, seed=0, run_dir=tmp_path,
                       recipe_dir=tmp_path, progress=Progress(enabled=False))


def _run(src: Path, tmp_path: Path, ctx: PassContext | None = None, **fields) -> tuple[Quantize, Path]:
    p = Quantize(QuantizeConfig(type="quantize", **fields))
    dst = tmp_path / "out.onnx"
    p.apply(src, dst, ctx or _ctx(tmp_path))
    return p, dst


def _ops(path: Path) -> set[str]:
    import onnx

    return {n.op_type for n in onnx.load(str(path)).graph.node}


def _outputs(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def _eval_inputs(n: int = 64) -> np.ndarray:
    return np.random.default_rng(2).standard_normal((n, *SHAPE[1:])).astype(np.float32)


def test_static_qdq_is_smaller_and_agrees_with_fp32(fp32, tmp_path):
    p, dst = _run(fp32, tmp_path)
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(dst)
    assert fp32.stat().st_size / dst.stat().st_size > 3.3
    x = _eval_inputs()
    ref, out = _outputs(fp32, x), _outputs(dst, x)
    assert (ref.argmax(1) == out.argmax(1)).mean() >= 0.9
    cosine = (ref * out).sum() / np.linalg.norm(ref) / np.linalg.norm(out)
    assert cosine > 0.99
    assert p.details["quant_ops"]["QuantizeLinear"] > 0


def test_static_qoperator_uses_qlinear_ops(fp32, tmp_path):
    p, dst = _run(fp32, tmp_path, format="qoperator")
    assert "QLinearConv" in _ops(dst)
    assert p.details["format"] == "qoperator"


@pytest.mark.parametrize("mode", ["static", "dynamic", "fp16"])
def test_details_record_the_settings(fp32, tmp_path, mode):
    p, _ = _run(fp32, tmp_path, mode=mode)
    d = p.details
    assert d["mode"] == mode
    assert isinstance(d["cpu_has_vnni"], bool)
    assert {"format", "activation_type", "weight_type"} <= d.keys()
    if mode != "fp16":
        assert d["per_channel"] is True and isinstance(d["reduce_range"], bool)
        assert d["reduce_range_reason"].startswith("auto")
    if mode == "static":
        assert d["calibration_samples"] == 64 and d["method"] == "minmax"
        assert d["activation_type"] == "uint8" and d["format"] == "qdq"
        assert d["preprocessed"] is True
        assert d["symbolic_shape_inference"] is False  # onnx typed every tensor of this conv net


def test_symbolic_shape_inference_only_where_onnx_leaves_a_tensor_untyped(fp32, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    assert quantize_module._onnx_infers_every_shape(fp32)
    # an op with no schema (a custom domain): onnx cannot type its output, sympy's inference might
    node = helper.make_node("Mystery", ["x"], ["y"], domain="example.custom")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("example.custom", 1)])
    onnx.save(model, str(tmp_path / "custom.onnx"))
    assert not quantize_module._onnx_infers_every_shape(tmp_path / "custom.onnx")
    (tmp_path / "corrupt.onnx").write_bytes(b"not a model")
    assert not quantize_module._onnx_infers_every_shape(tmp_path / "corrupt.onnx")


def test_dynamic_on_conv_net_warns_about_convinteger(fp32, tmp_path):
    p, dst = _run(fp32, tmp_path, mode="dynamic")
    assert "ConvInteger" in _ops(dst)
    assert any("ConvInteger" in n and "slower" in n for n in p.notes)
    p2, _ = _run(fp32, tmp_path, mode="dynamic", exclude_ops=["Conv"])
    assert not any("ConvInteger" in n for n in p2.notes)


def test_fp16_keeps_float32_io_and_outputs(fp32, tmp_path):
    import onnx

    p, dst = _run(fp32, tmp_path, mode="fp16")
    graph = onnx.load(str(dst)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer)
    assert fp32.stat().st_size / dst.stat().st_size > 1.8
    x = _eval_inputs(16)
    ref, out = _outputs(fp32, x), _outputs(dst, x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=2e-2 * np.abs(ref).max())
    assert any("fp16" in n for n in p.notes)


def test_fewer_samples_than_requested_uses_them_and_notes_it(fp32, tmp_path):
    p, _ = _run(fp32, tmp_path, _ctx(tmp_path, n=10), samples=256)
    assert p.details["calibration_samples"] == 10
    assert any("10 samples" in n for n in p.notes)


def test_empty_calibration_set_is_a_pass_error(fp32, tmp_path):
    empty = np.zeros((0, *SHAPE[1:]), dtype=np.float32)
    with pytest.raises(PassError, match="calibration"):
        _run(fp32, tmp_path, _ctx(tmp_path, x=empty))


def test_calibration_shape_mismatch_names_both_shapes(fp32, tmp_path):
    wrong = np.zeros((4, 1, 16, 16), dtype=np.float32)
    with pytest.raises(PassError, match=r"\(1, 16, 16\).*\(1, 8, 8\)"):
        _run(fp32, tmp_path, _ctx(tmp_path, x=wrong))


def test_percentile_method_and_its_validation(fp32, tmp_path):
    p, _ = _run(fp32, tmp_path, _ctx(tmp_path, n=16), method="percentile", percentile=99.9)
    assert p.details["method"] == "percentile" and p.details["percentile"] == 99.9
    with pytest.raises(ValidationError, match="method: percentile"):
        QuantizeConfig(type="quantize", percentile=99.9)


def test_exclusions_keep_nodes_float_and_bad_names_fail(fp32, tmp_path):
    p, dst = _run(fp32, tmp_path, exclude_ops=["Gemm"])
    assert "Gemm" in _ops(dst) and p.details["excluded_nodes"]
    with pytest.raises(PassError, match="case-sensitive"):
        _run(fp32, tmp_path, exclude_ops=["gemm"])
    with pytest.raises(PassError, match="Did you mean"):
        _run(fp32, tmp_path, exclude_nodes=["/0/Convv"], preprocess=False)


@pytest.mark.parametrize(("flags", "x86", "expected"), [
    (frozenset({"avx2"}), True, True),  # x86 without VNNI: 7-bit weights
    (frozenset({"avx2", "avx512_vnni"}), True, False),
    (frozenset({"asimd"}), False, False),
])
def test_reduce_range_auto_follows_cpu(fp32, tmp_path, monkeypatch, flags, x86, expected):
    monkeypatch.setattr(quantize_module, "cpu_flags", lambda: flags)
    monkeypatch.setattr(quantize_module, "is_x86", lambda: x86)
    p, _ = _run(fp32, tmp_path, _ctx(tmp_path, n=8), mode="dynamic")
    assert p.details["reduce_range"] is expected
    p, _ = _run(fp32, tmp_path, _ctx(tmp_path, n=8), mode="dynamic", reduce_range=False)
    assert p.details["reduce_range"] is False
    assert any("saturate" in n for n in p.notes) is expected


def test_slow_signed_activations_are_noted_on_x86(fp32, tmp_path, monkeypatch):
    monkeypatch.setattr(quantize_module, "is_x86", lambda: True)
    p, _ = _run(fp32, tmp_path, _ctx(tmp_path, n=8), activation_type="int8")
    assert p.details["activation_type"] == "int8"
    assert any("S8S8" in n for n in p.notes)


def test_calibration_batches_follow_the_graph_batch(tmp_path):
    import onnx

    x = np.zeros((70, *SHAPE[1:]), dtype=np.float32)
    dyn = graph_input(onnx.load(str(_export(tmp_path / "dyn.onnx", batch=None))))
    batches, notes = calibration_batches(x, dyn)
    assert dyn.shape[0] is None and sum(map(len, batches)) == 70 and not notes
    fixed = graph_input(onnx.load(str(_export(tmp_path / "b4.onnx", batch=4))))
    batches, notes = calibration_batches(x, fixed)
    assert {len(b) for b in batches} == {4} and len(batches) == 17 and notes
    seen = []
    reader = CalibrationReader("input", batches, lambda n: seen.append(n))
    assert len(list(reader)) == 17 and sum(seen) == 68
    reader.rewind()
    assert reader.get_next()["input"].shape == (4, 1, 8, 8)


def test_dynamic_batch_model_quantizes(tmp_path):
    src = _export(tmp_path / "dyn.onnx", batch=None)
    p, dst = _run(src, tmp_path)
    assert p.details["calibration_samples"] == 64 and "QuantizeLinear" in _ops(dst)


def test_data_requirement_only_for_static():
    assert QuantizeConfig(type="quantize").data_requirement()
    assert QuantizeConfig(type="quantize", mode="dynamic").data_requirement() is None
    assert QuantizeConfig(type="quantize", mode="fp16").data_requirement() is None


def test_cpu_flags_parse_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n\n"
                    "processor\t: 1\nflags\t\t: fpu sse avx2\n")
    flags = cpu_flags(info)
    assert flags == {"avx2", "avx512f", "avx512_vnni"} and has_vnni(flags)
    assert not has_vnni(cpu_flags(tmp_path / "missing"))


def test_histogram_calibration_prints_nothing_to_stdout(fp32, tmp_path, capsys):
    """onnxruntime's entropy calibrator prints progress; on stdout it broke `compress --json`."""
    _run(fp32, tmp_path, mode="static", method="entropy")
    assert capsys.readouterr().out == ""


def test_quiet_output_is_per_thread_and_restores_stdout_in_any_order(capsys):
    """contextlib.redirect_stdout restored the stream it saw on entry: two overlapping threads
    left sys.stdout a StringIO for good. Enter A, enter B, leave A, leave B: stdout comes back,
    and only the quieted threads' prints are dropped meanwhile."""
    import sys
    import threading

    from edgec.passes.quantize_quiet import quiet_ort_output

    original = sys.stdout
    steps = [threading.Event() for _ in range(4)]

    def quiet(name, enter_after, leave_after, entered, left):
        if enter_after is not None:
            steps[enter_after].wait(5)
        with quiet_ort_output():
            print(f"{name} dropped")
            steps[entered].set()
            steps[leave_after].wait(5)
        steps[left].set()

    a = threading.Thread(target=quiet, args=("a", None, 1, 0, 2))
    b = threading.Thread(target=quiet, args=("b", 0, 2, 1, 3))
    a.start()
    b.start()
    steps[1].wait(5)
    print("main passes through")  # not a quieted thread: its output is kept
    a.join(5)
    b.join(5)
    assert sys.stdout is original
    assert capsys.readouterr().out == "main passes through\n"
