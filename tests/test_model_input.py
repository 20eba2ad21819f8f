"""The input shape every command on an ONNX file works at (model_input.py): checked against the
model's fixed dims, a dynamic height/width never silently taken as 1x1, and the same shape behind
every number the command prints."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from edgec.cli import cli
from edgec.errors import UsageError
from edgec.model_input import resolve_input_shape


def _convs(path, dims=("n", 3, "h", "w")):
    """conv 3→8, relu, conv 8→4 (3x3, padded): input ``dims``, str = dynamic."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((4, 8, 3, 3)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="c1", pads=[1] * 4),
             helper.make_node("Relu", ["a"], ["r"], name="r1"),
             helper.make_node("Conv", ["r", "w2"], ["y"], name="c2", pads=[1] * 4)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [dims[0], 4, *dims[2:]])], [w1, w2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_resolve_defaults_only_a_dynamic_batch(tmp_path):
    dyn_batch = onnx.load(str(_convs(tmp_path / "b.onnx", ("n", 3, 8, 8))))
    assert resolve_input_shape(dyn_batch, tmp_path / "b.onnx", None) == (1, 3, 8, 8)
    assert resolve_input_shape(dyn_batch, tmp_path / "b.onnx", (4, 3, 8, 8)) == (4, 3, 8, 8)
    fixed = onnx.load(str(_convs(tmp_path / "f.onnx", (2, 3, 8, 8))))
    assert resolve_input_shape(fixed, tmp_path / "f.onnx", None) == (2, 3, 8, 8)  # its own batch
    with pytest.raises(UsageError, match=r"--input-shape 1,3,8,8 does not fit .*f.onnx', whose "
                       r"input 'x' is 2,3,8,8\. Pass"):
        resolve_input_shape(fixed, tmp_path / "f.onnx", (1, 3, 8, 8))


def test_a_clash_on_a_dynamic_size_model_does_not_offer_its_own_shape(tmp_path):
    """Leaving --input-shape out is refused for a dynamic height/width: the hint must not offer it."""
    dynamic = onnx.load(str(_convs(tmp_path / "d.onnx")))
    with pytest.raises(UsageError, match=r"'x' is N,3,\?,\? \(N: any batch, \?: any size\)") as err:
        resolve_input_shape(dynamic, tmp_path / "d.onnx", (1, 1, 8, 8))
    assert err.value.hint == "Pass an --input-shape of that form."
    fixed = onnx.load(str(_convs(tmp_path / "f.onnx", ("n", 3, 8, 8))))
    with pytest.raises(UsageError) as err:
        resolve_input_shape(fixed, tmp_path / "f.onnx", (1, 1, 8, 8))
    assert "leave it out to use the model's own" in err.value.hint


def test_check_estimates_memory_at_the_shape_given(tmp_path):
    path = _convs(tmp_path / "dyn.onnx")
    args = ["check", str(path), "--target", "host", "--json"]
    small, large = (json.loads(CliRunner().invoke(cli, [*args, "--input-shape", s]).output)
                    for s in ("1,3,16,16", "1,3,32,32"))
    assert small["input_shape"] == [1, 3, 16, 16] and large["input_shape"] == [1, 3, 32, 32]
    # 4x the pixels: 4x the activations (the weights do not change)
    peak = small["memory"]["peak_activation_bytes"]
    assert peak >= (3 + 8) * 16 * 16 * 4 and large["memory"]["peak_activation_bytes"] == 4 * peak


@pytest.mark.parametrize("shape", [(1, 3, 16, 16), (4, 3, 8, 8)])
def test_partition_cuts_pieces_at_the_shape_given(tmp_path, shape):
    """Dynamic height/width, or a batch other than 1: the pieces, their check against the whole
    model and their RAM are at the shape the plan counted (not at 1x1, or batch 1)."""
    from edgec.partition import partition_model
    from edgec.partition_layerwise import DeviceBudget

    path = _convs(tmp_path / "dyn.onnx")
    plan = partition_model(path, 2, DeviceBudget(), tmp_path / "out", shape)
    n, _, h, w = shape
    first = onnx.load(plan.pieces[0].onnx_path).graph.input[0]
    assert [d.dim_value for d in first.type.tensor_type.shape.dim] == list(shape)
    assert plan.pieces[0].bytes_out == n * 8 * h * w * 4  # the 8-channel activation crosses
    assert plan.pieces[0].macs == n * h * w * 8 * 27 and plan.max_abs_diff < 1e-4
    assert plan.pieces[0].peak_activation_bytes >= n * (3 + 8) * h * w * 4
    assert any("cut at input" in note for note in plan.notes)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_doctor_profiles_at_the_shape_given_and_refuses_one_the_model_cannot_take(tmp_path):
    """A wrong --input-shape reached onnxruntime's profiling run: 'internal error', exit 3."""
    from edgec.doctor import diagnose
    from tests.test_quantize import _ctx, _export, _run

    _, quantized = _run(_export(tmp_path / "fp32.onnx", batch=None), tmp_path, _ctx(tmp_path, n=16))
    assert diagnose(quantized, (2, 1, 8, 8), runs=2).profile  # profiled at batch 2
    with pytest.raises(UsageError, match=r"--input-shape 1,1,16,16 does not fit .* is N,1,8,8"):
        diagnose(quantized, (1, 1, 16, 16), runs=2)
