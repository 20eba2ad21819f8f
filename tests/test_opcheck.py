"""Op-support check: unsupported ops, dtypes and opsets are found, with nodes and fixes."""

import json

import numpy as np
import onnx
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from edgec.cli import cli
from edgec.opcheck import check_model
from edgec.targets import load_target


def _model(tmp_path, nodes, x_type=TensorProto.FLOAT, opset=17, inits=(), name="m.onnx"):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("X", x_type, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4, 8, 8])], initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, tmp_path / name)
    return tmp_path / name


def _qdq_relu_model(tmp_path, zero_dtype, op="Relu"):
    """X → Q → DQ → op → Q → DQ → Y, the form static quantization writes."""
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, zero_dtype), "z")
    nodes = [helper.make_node("QuantizeLinear", ["X", "s", "z"], ["q"], name="q_in"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="dq_in"),
             helper.make_node(op, ["d"], ["a"], name="act"),
             helper.make_node("QuantizeLinear", ["a", "s", "z"], ["q2"], name="q_out"),
             helper.make_node("DequantizeLinear", ["q2", "s", "z"], ["Y"], name="dq_out")]
    return _model(tmp_path, nodes, inits=[scale, zero])


def test_unsupported_op_is_named_with_its_nodes_and_a_fix(tmp_path):
    path = _qdq_relu_model(tmp_path, np.int8, op="Erf")  # GELU exports as Erf
    result = check_model(path, load_target("mcu"))
    (problem,) = result.problems
    assert problem.kind == "op" and problem.op_type == "Erf" and problem.nodes == ["act"]
    assert "GELU" in problem.fix and "nn.ReLU" in problem.fix
    assert not result.ok


def test_int8_qdq_model_passes_the_mcu(tmp_path):
    assert check_model(_qdq_relu_model(tmp_path, np.int8), load_target("mcu")).ok


def test_uint8_activations_fail_int8_only_target_with_the_recipe_fix(tmp_path):
    path = _qdq_relu_model(tmp_path, np.uint8)
    assert check_model(path, load_target("npu")).ok  # the NPU class takes uint8
    (problem,) = check_model(path, load_target("mcu")).problems
    assert problem.kind == "dtype" and "uint8" in problem.message
    assert "activation_type: int8" in problem.fix
    assert set(problem.nodes) == {"q_in", "dq_in", "act", "q_out", "dq_out"}


def test_float_model_on_int8_target_suggests_static_quantization(tmp_path):
    path = _model(tmp_path, [helper.make_node("Relu", ["X"], ["Y"], name="r")])
    (problem,) = check_model(path, load_target("mcu")).problems
    assert problem.kind == "dtype" and "float32" in problem.message
    assert "mode: static" in problem.fix
    assert check_model(path, load_target("host")).ok


def test_opset_above_the_target_limit(tmp_path):
    path = _model(tmp_path, [helper.make_node("Relu", ["X"], ["Y"], name="r")], opset=21)
    problems = check_model(path, load_target("rpi")).problems
    assert [p.kind for p in problems] == ["opset"]
    assert problems[0].fix == "set export.opset: 19"


def test_constant_subgraphs_are_not_checked(tmp_path):
    # Identity on a weight is folded by any converter: not a float op the device must run
    w = numpy_helper.from_array(np.ones((1, 4, 8, 8), np.float32), "w")
    nodes = [helper.make_node("Identity", ["w"], ["w2"], name="fold_me"),
             helper.make_node("Erf", ["w2"], ["w3"], name="fold_me_too"),
             helper.make_node("Relu", ["X"], ["Y"], name="r")]
    problems = check_model(_model(tmp_path, nodes, inits=[w]), load_target("mcu")).problems
    assert all("fold_me" not in n for p in problems for n in p.nodes)


def test_check_command_exit_codes(tmp_path):
    runner = CliRunner()
    good = _qdq_relu_model(tmp_path, np.int8)
    res = runner.invoke(cli, ["check", str(good), "--target", "mcu"])
    assert res.exit_code == 0, res.output
    assert "fits the target" in res.output and "max_flash_kb" in res.output
    bad = _model(tmp_path, [helper.make_node("Erf", ["X"], ["Y"], name="gelu")], name="bad.onnx")
    res = runner.invoke(cli, ["check", str(bad), "--target", "mcu", "--json"])
    assert res.exit_code == 1
    data = json.loads(res.output)
    assert data["ok"] is False and data["ops"]["problems"][0]["nodes"] == ["gelu"]
    res = runner.invoke(cli, ["check", str(bad), "--target", "no-such-device"])
    assert res.exit_code == 2 and "Known targets" in res.output
    res = runner.invoke(cli, ["check", str(tmp_path / "missing.onnx"), "--target", "mcu"])
    assert res.exit_code == 2


def test_compress_fails_early_when_no_pass_can_make_the_model_int8(write_recipe):
    recipe = write_recipe("""\
        version: 1
        model: {source: python, callable: "tiny_models.py:tiny_cnn", input_shape: [1, 1, 8, 8]}
        data: {source: digits}
        benchmark: {threads: 1, runs: 5, warmup: 1}
        target: mcu
        """)
    out = recipe.parent / "run"
    res = CliRunner().invoke(cli, ["compress", str(recipe), "-o", str(out), "-q"])
    assert res.exit_code == 3, res.output  # a failed step: the baseline was exported
    assert "before compression" in res.output and "mode: static" in res.output
    assert "--force" in res.output and "--resume" not in res.output  # the same recipe fails again
    assert not out.exists()  # a failed run never lands where a complete one would
    report = json.loads((out.parent / "run.partial" / "report.json").read_text())
    assert report["status"] == "failed" and report["baseline"] is None
    assert report["device"]["checks"][0]["fatal"] is True


def test_pass_that_introduces_an_unsupported_op_stops_the_run(write_recipe):
    recipe = write_recipe()  # tiny CNN, static uint8 quantization
    out = recipe.parent / "run"
    res = CliRunner().invoke(cli, ["compress", str(recipe), "-o", str(out), "-q", "--target", "mcu"])
    assert res.exit_code == 3, res.output
    assert "After step 'pass quantize'" in res.output and "activation_type: int8" in res.output
