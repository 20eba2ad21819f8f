"""`edgec doctor`: each listed slow-int8 condition is flagged on a small constructed model."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from edgec import doctor as doctor_module
from edgec.cli import cli
from edgec.doctor import diagnose
from tests.test_quantize import _ctx, _export, _run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
NO_VNNI = frozenset({"avx2"})
VNNI = frozenset({"avx2", "avx512f", "avx512_vnni"})


@pytest.fixture(scope="module")
def fp32(tmp_path_factory) -> Path:
    return _export(tmp_path_factory.mktemp("doctor") / "fp32.onnx")


def _codes(path: Path, flags=VNNI, runs: int = 0) -> set[str]:
    return {f.code for f in diagnose(path, runs=runs, flags=flags).findings}


def _quantized(fp32: Path, tmp_path: Path, name: str, **fields) -> Path:
    _, dst = _run(fp32, tmp_path, _ctx(tmp_path, n=16), **fields)
    return dst.rename(tmp_path / name)


def test_float_model_is_clean(fp32):
    d = diagnose(fp32, runs=0, flags=VNNI)
    assert d.format == "float" and d.findings == [] and d.mac_share == {"float": 1.0}


def test_u8s8_qdq_on_vnni_is_clean_and_all_int8(fp32, tmp_path):
    path = _quantized(fp32, tmp_path, "u8.onnx", reduce_range=False)
    d = diagnose(path, runs=3, flags=VNNI)
    assert d.format == "qdq" and d.mac_share == {"int8": 1.0}
    assert not {"s8s8", "no_vnni", "saturation", "float_share"} & {f.code for f in d.findings}
    assert d.profile and sum(d.profile.values()) > 0  # measured on this host


def test_no_vnni_and_full_range_weights(fp32, tmp_path, monkeypatch):
    monkeypatch.setattr(doctor_module, "is_x86", lambda: True)
    full = _quantized(fp32, tmp_path, "full.onnx", reduce_range=False)
    assert {"no_vnni", "saturation"} <= _codes(full, NO_VNNI)
    reduced = _quantized(fp32, tmp_path, "rr.onnx", reduce_range=True)
    assert "saturation" not in _codes(reduced, NO_VNNI)
    assert "no_vnni" not in _codes(full, VNNI)


def test_signed_activations(fp32, tmp_path):
    assert "s8s8" in _codes(_quantized(fp32, tmp_path, "s8.onnx", activation_type="int8"))


def test_dynamic_conv_becomes_convinteger(fp32, tmp_path):
    path = _quantized(fp32, tmp_path, "dyn.onnx", mode="dynamic")
    d = diagnose(path, runs=0, flags=VNNI)
    assert "dynamic" in d.format and "convinteger" in {f.code for f in d.findings}


def test_fp16_without_fast_fp16(fp32, tmp_path):
    path = _quantized(fp32, tmp_path, "fp16.onnx", mode="fp16")
    assert "fp16_cpu" in _codes(path, VNNI)
    assert "fp16_cpu" not in _codes(path, VNNI | {"avx512_fp16"})


def test_float_share_when_layers_are_excluded(fp32, tmp_path):
    path = _quantized(fp32, tmp_path, "mixed.onnx", exclude_ops=["Conv"])
    d = diagnose(path, runs=0, flags=VNNI)
    assert d.mac_share["float"] > 0.2 and "float_share" in {f.code for f in d.findings}


def test_dequantize_quantize_chain(tmp_path):
    from onnx import TensorProto, helper

    init = [helper.make_tensor("s1", TensorProto.FLOAT, [], [0.1]),
            helper.make_tensor("z1", TensorProto.UINT8, [], [0]),
            helper.make_tensor("s2", TensorProto.FLOAT, [], [0.2]),
            helper.make_tensor("z2", TensorProto.UINT8, [], [0])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s1", "z1"], ["q1"]),
             helper.make_node("DequantizeLinear", ["q1", "s1", "z1"], ["d1"]),
             helper.make_node("QuantizeLinear", ["d1", "s2", "z2"], ["q2"]),
             helper.make_node("DequantizeLinear", ["q2", "s2", "z2"], ["y"])]
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, [1, 4])],
                              [vi("y", TensorProto.FLOAT, [1, 4])], init)
    path = tmp_path / "chain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert "dq_q_chain" in _codes(path)


def test_cli_doctor_prints_findings_and_json(fp32, tmp_path):
    import json

    path = _quantized(fp32, tmp_path, "s8.onnx", activation_type="int8")
    result = CliRunner().invoke(cli, ["doctor", str(path), "--runs", "2"])
    assert result.exit_code == 0, result.output
    assert "s8s8" in result.output and "fix:" in result.output
    result = CliRunner().invoke(cli, ["doctor", str(path), "--runs", "0", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["format"] == "qdq"
    missing = CliRunner().invoke(cli, ["doctor", str(tmp_path / "nope.onnx")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_quantize_pass_records_doctor_findings_for_the_report(fp32, tmp_path):
    from edgec.passes.quantize_report import quantize_markdown

    p, _ = _run(fp32, tmp_path, _ctx(tmp_path, n=16), activation_type="int8")
    assert any("S8S8" in f for f in p.details["doctor"])
    assert p.details["mac_share"] == {"int8": 1.0}
    assert "Doctor" in "\n".join(quantize_markdown(p.details))


def test_runs_0_says_the_profiled_check_did_not_run(fp32, tmp_path):
    """--runs 0 printed "no known int8/fp16 speed problem found" where --runs 20 finds
    unfused_qdq: what was never measured must not read as a clean bill."""
    import json

    path = _quantized(fp32, tmp_path, "u8.onnx", reduce_range=False)
    assert diagnose(path, runs=0, flags=VNNI).not_checked[0].startswith("unfused_qdq:")
    assert diagnose(path, runs=2, flags=VNNI).not_checked == []
    assert diagnose(fp32, runs=0, flags=VNNI).not_checked == []  # a float model is not profiled
    result = CliRunner().invoke(cli, ["doctor", str(path), "--runs", "0"])
    assert result.exit_code == 0, result.output
    assert "not checked: unfused_qdq" in result.output and "--runs 0 profiles nothing" in result.output
    assert "found by the checks that ran" in result.output or "fix:" in result.output
    doc = json.loads(CliRunner().invoke(cli, ["doctor", str(path), "--runs", "0", "--json"]).output)
    assert doc["not_checked"] and doc["not_checked"][0].startswith("unfused_qdq:")


def test_finding_text_in_brackets_prints_whole():
    """rich took "[conv]" and "[/x]" in a fix for markup: dropped, or refused to print."""
    import io

    d = doctor_module.Diagnosis("m[/x].onnx", {"x86": True}, "qdq", {"int8": 1.0}, [
        doctor_module.Finding("demo", "ranges [min, max]", "cost [1, 2]", "exclude_ops: [conv]")])
    out = io.StringIO()
    doctor_module.print_diagnosis(d, file=out)
    text = out.getvalue()
    assert "m[/x].onnx" in text and "[min, max]" in text and "exclude_ops: [conv]" in text
