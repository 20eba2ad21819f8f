"""Liveness-based peak activation estimate on hand-built graphs whose answer is known."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.memory import estimate_memory
from edgec.memory_probe import NOISE_FLOOR_BYTES, measure_memory


def _save(tmp_path, nodes, inputs, outputs, inits=(), name="m.onnx"):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def _tile(x, out, reps_name, reps):
    init = numpy_helper.from_array(np.array(reps, dtype=np.int64), reps_name)
    return helper.make_node("Tile", [x, reps_name], [out], name=f"tile_{out}"), init


def test_chain_peak_is_input_plus_output_of_one_node(tmp_path):
    # X(400 B) → Softmax → A → Softmax → Y: every step holds one 400-byte input and one output
    nodes = [helper.make_node("Softmax", ["X"], ["A"], name="s1"),
             helper.make_node("Softmax", ["A"], ["Y"], name="s2")]
    est = estimate_memory(_save(tmp_path, nodes, [_vi("X", [1, 100])], [_vi("Y", [1, 100])]))
    assert est.peak_activation_bytes == 800
    assert est.weight_bytes == 0 and est.unknown_tensors == 0


def test_branch_keeps_both_paths_live_until_they_join(tmp_path):
    # X(400) → Tile×10 → A(4000); X → Softmax → B(400); Concat(A, B) → Y(4400).
    # At the Concat A, B and Y are live together: 8800 bytes, the peak.
    tile, reps = _tile("X", "A", "reps", [1, 10])
    nodes = [tile, helper.make_node("Softmax", ["X"], ["B"], name="soft"),
             helper.make_node("Concat", ["A", "B"], ["Y"], axis=1, name="join")]
    path = _save(tmp_path, nodes, [_vi("X", [1, 100])], [_vi("Y", [1, 1100])], [reps])
    est = estimate_memory(path)
    assert est.peak_activation_bytes == 8800
    assert est.peak_node == "join" and est.peak_op == "Concat"
    assert est.weight_bytes == 16  # the two int64 repeats
    assert {t["name"] for t in est.peak_tensors} == {"A", "B", "Y"}


def test_dtype_sets_bytes_per_element(tmp_path):
    nodes = [helper.make_node("Transpose", ["X"], ["Y"], perm=[1, 0], name="t")]
    for dtype, size in ((TensorProto.FLOAT16, 2), (TensorProto.UINT8, 1), (TensorProto.DOUBLE, 8)):
        path = _save(tmp_path, nodes, [_vi("X", [10, 30], dtype)], [_vi("Y", [30, 10], dtype)])
        assert estimate_memory(path).peak_activation_bytes == 2 * 300 * size


def test_in_place_activation_shares_its_input_buffer(tmp_path):
    # X(400) → Tile → A(4000) → Relu → B → ReduceMax → Y(4). Relu runs in place (A dies there),
    # so the peak is at the Tile (X + A = 4400), not A + B = 8000 at the Relu.
    tile, reps = _tile("X", "A", "reps", [1, 10])
    nodes = [tile, helper.make_node("Relu", ["A"], ["B"], name="relu"),
             helper.make_node("ReduceMax", ["B"], ["Y"], keepdims=1, name="max")]
    path = _save(tmp_path, nodes, [_vi("X", [1, 100])], [_vi("Y", [1, 1])], [reps])
    est = estimate_memory(path)
    assert est.peak_activation_bytes == 4400 and est.peak_node == "tile_A"


def test_qdq_is_folded_as_an_int8_runtime_runs_it(tmp_path):
    # X float(256) → Q → DQ → MaxPool → Q → DQ → Y float. Folded: Q(X)→q(64 B, uint8),
    # MaxPool writes uint8 directly (64 B), the output DQ writes Y (256 B): peak 320.
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    zero = numpy_helper.from_array(np.array(128, np.uint8), "z")
    nodes = [helper.make_node("QuantizeLinear", ["X", "s", "z"], ["q1"], name="q_in"),
             helper.make_node("DequantizeLinear", ["q1", "s", "z"], ["d1"], name="dq_in"),
             helper.make_node("MaxPool", ["d1"], ["m"], kernel_shape=[1, 1], name="pool"),
             helper.make_node("QuantizeLinear", ["m", "s", "z"], ["q2"], name="q_out"),
             helper.make_node("DequantizeLinear", ["q2", "s", "z"], ["Y"], name="dq_out")]
    path = _save(tmp_path, nodes, [_vi("X", [1, 1, 8, 8])], [_vi("Y", [1, 1, 8, 8])], [scale, zero])
    est = estimate_memory(path)
    assert est.peak_activation_bytes == 320
    assert est.peak_by_dtype == {"float32": 256, "uint8": 64}


def test_dynamic_batch_fixed_by_input_shape(tmp_path):
    nodes = [helper.make_node("Softmax", ["X"], ["Y"], name="s")]
    path = _save(tmp_path, nodes, [_vi("X", ["batch", 100])], [_vi("Y", ["batch", 100])])
    assert estimate_memory(path).peak_activation_bytes == 800  # dynamic dims count as 1
    assert estimate_memory(path, (4, 100)).peak_activation_bytes == 3200


def test_measured_growth_matches_estimate_on_large_activations(tmp_path):
    # Tile → A (4 MiB) → Concat(A, A) → B (8 MiB): 12 MiB live at the Concat, far above the RSS
    # noise floor, so the estimate must be close to what onnxruntime allocates.
    tile, reps = _tile("X", "A", "reps", [1, 1024])
    nodes = [tile, helper.make_node("Concat", ["A", "A"], ["B"], axis=1, name="join"),
             helper.make_node("ReduceMax", ["B"], ["Y"], keepdims=1, name="max")]
    path = _save(tmp_path, nodes, [_vi("X", [1, 1024])], [_vi("Y", [1, 1])], [reps])
    est = estimate_memory(path).peak_activation_bytes
    measured = measure_memory(path, (1, 1024), arena=False)
    if not measured["available"]:
        pytest.skip(measured["reason"])
    assert measured["arena"] is False and not measured["inference_below_noise"]
    assert abs(measured["inference_peak_bytes"] - est) / est < 0.25


def test_tiny_model_growth_is_flagged_below_noise(tmp_path):
    nodes = [helper.make_node("Softmax", ["X"], ["Y"], name="s")]
    path = _save(tmp_path, nodes, [_vi("X", [1, 100])], [_vi("Y", [1, 100])])
    measured = measure_memory(path, (1, 100))
    if not measured["available"]:
        pytest.skip(measured["reason"])
    assert measured["inference_below_noise"]
    assert measured["inference_peak_bytes"] < NOISE_FLOOR_BYTES
