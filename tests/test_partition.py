"""Layer-wise partition: cut choice on a graph whose tensor sizes are known by hand, budgets,
clear failures naming the device, and assembled pieces equal to the whole model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgec.errors import BudgetError, UsageError
from edgec.graph_stats import analyze_onnx
from edgec.partition_layerwise import DeviceBudget, plan_layerwise
from edgec.partition_pieces import export_pieces, verify_pieces

# MLP chain 64 → 256 → 16 → 128 → 10 (float32, batch 1), a Relu after each of the first three.
# Activation bytes: 256 floats = 1024 B, 16 = 64 B, 128 = 512 B. Params: 16384, 4096, 2048, 1280.
WIDTHS = [64, 256, 16, 128, 10]
PARAMS = [16384, 4096, 2048, 1280]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "input"
    for i, (a, b) in enumerate(itertools.pairwise(WIDTHS)):
        w = numpy_helper.from_array(rng.standard_normal((a, b)).astype(np.float32) / a, f"w{i}")
        inits.append(w)
        nodes.append(helper.make_node("MatMul", [x, w.name], [f"mm{i}"], name=f"mm{i}"))
        x = f"mm{i}"
        if i < 3:
            nodes.append(helper.make_node("Relu", [x], [f"relu{i}"], name=f"relu{i}"))
            x = f"relu{i}"
    nodes[-1].output[0] = "output"
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path_factory.mktemp("mlp") / "mlp.onnx"
    onnx.save(model, str(path))
    return path


def test_cut_at_the_narrowest_tensor_the_budget_allows(mlp):
    # 21000 params lets device 1 hold the first two layers: the 16-wide tensor (64 B) is the cut.
    plan = plan_layerwise(mlp, 2, DeviceBudget(max_params=21000))
    assert plan.bytes_per_inference == 64
    assert [p.params for p in plan.pieces] == [PARAMS[0] + PARAMS[1], PARAMS[2] + PARAMS[3]]
    assert plan.pieces[0].outputs == ["mm1"] and plan.pieces[1].inputs == ["mm1"]
    assert plan.pieces[0].flash_bytes == 4 * (PARAMS[0] + PARAMS[1])


def test_budget_forces_a_wider_cut(mlp):
    # 17000 params: device 1 holds only the first layer, so 1024 B must cross.
    plan = plan_layerwise(mlp, 2, DeviceBudget(max_params=17000))
    assert plan.bytes_per_inference == 1024
    assert all(p.params <= 17000 for p in plan.pieces)
    three = plan_layerwise(mlp, 3, DeviceBudget(max_params=17000))
    assert three.bytes_per_inference == 1024 + 64
    assert [p.bytes_out for p in three.pieces] == [1024, 64, 0]


def test_per_device_budgets_and_macs(mlp):
    budgets = [DeviceBudget(max_params=17000), DeviceBudget(max_macs=7500)]
    plan = plan_layerwise(mlp, 2, budgets)
    assert plan.pieces[1].macs == sum(PARAMS[1:]) <= 7500  # MatMul MACs = weights at batch 1
    with pytest.raises(UsageError, match="2 devices"):
        plan_layerwise(mlp, 2, [DeviceBudget(max_params=1)])


def test_ram_budget_uses_the_busiest_step(mlp):
    # relu0 reads mm0 and writes relu0 (1024 B each): 2 KiB live, the most of any step.
    plan = plan_layerwise(mlp, 2, DeviceBudget(max_ram_kb=2))
    assert plan.bytes_per_inference == 64
    assert [p.ram_bound_bytes for p in plan.pieces] == [2048, 1024]
    # device 1 holds mm0 and cannot also take relu0, but no device could: it is not device 2's
    with pytest.raises(BudgetError, match=r"Node 'relu0' \(Relu\) fits on no device: .*ram 2 KiB "
                       r"> 1.5 KiB\. Raise the budget"):
        plan_layerwise(mlp, 2, DeviceBudget(max_ram_kb=1.5))


def test_overrun_numbers_never_round_to_the_limit(mlp):
    # mm0 alone: its input (256 B) and output (1024 B) = 1.25 KiB; "1 KiB > 1 KiB" said nothing
    with pytest.raises(BudgetError, match=r"Device 1 of 2 .*'mm0'.*ram 1\.2 KiB > 1 KiB\."):
        plan_layerwise(mlp, 2, DeviceBudget(max_ram_kb=1))
    with pytest.raises(BudgetError, match=r"ram 1\.25 KiB > 1\.2 KiB"):
        plan_layerwise(mlp, 2, DeviceBudget(max_ram_kb=1.2))


def test_the_table_shows_the_ram_the_limit_is_checked_on(mlp, tmp_path):
    """The table showed memory.py's estimate (6 KiB for a piece the planner counted at 24 KiB),
    so a --max-ram-kb failure contradicted the table."""
    from edgec.partition import format_plan, partition_model

    plan = partition_model(mlp, 2, DeviceBudget(max_ram_kb=2), tmp_path / "parts")
    rows = format_plan(plan).splitlines()
    assert rows[0].split()[6:8] == ["RAM", "KiB"]
    assert [float(r.split()[5]) for r in rows[1:3]] == [2.0, 1.0]  # ram_bound_bytes / 1024
    assert [r.split()[-1] for r in rows[1:3]] == ["device_1.onnx", "device_2.onnx"]
    assert "without buffer reuse (the bound --max-ram-kb limits)" in rows[3]


def test_infeasible_budget_names_the_device(mlp):
    with pytest.raises(BudgetError, match=r"Device 1 of 2 .*'mm0'"):
        plan_layerwise(mlp, 2, DeviceBudget(max_params=10000))
    with pytest.raises(BudgetError, match=r"Device 2 of 2 \(the last\).*params 7,424 > 5,000"):
        plan_layerwise(mlp, 2, [DeviceBudget(max_params=17000), DeviceBudget(max_params=5000)])
    with pytest.raises(BudgetError, match=r"Device 2 of 2 .*'mm3'.*flash 5 KiB > 1 KiB"):
        plan_layerwise(mlp, 2, [DeviceBudget(), DeviceBudget(max_flash_kb=1)])


def test_infeasible_budget_says_the_smallest_limit_that_splits(mlp):
    # 2 devices: the best split is [16384] [4096+2048+1280 = 7424], so 16,384 params per device
    with pytest.raises(BudgetError, match=r"splits this model across 2 devices: max_params 16,384 "
                                          r"per device"):
        plan_layerwise(mlp, 2, DeviceBudget(max_params=10000))
    # flash is 4 B a weight: 16,384 params are 64 KiB; said in KiB, rounded up, never short of it
    with pytest.raises(BudgetError, match=r": max_flash_kb 64\.0 per device"):
        plan_layerwise(mlp, 2, DeviceBudget(max_flash_kb=10))
    assert plan_layerwise(mlp, 2, DeviceBudget(max_params=16384)).pieces[0].params == 16384
    # only the RAM limit blocks (Relu 'relu0' reads 1 KiB and writes 1 KiB): raising max_params
    # could never help, so it is not offered
    with pytest.raises(BudgetError, match=r": max_ram_kb 2\.0 per device") as ram:
        plan_layerwise(mlp, 2, DeviceBudget(max_params=30000, max_ram_kb=0.5))
    assert "max_params" not in str(ram.value).split("smallest budget")[1]


def test_pieces_equal_the_whole_model(mlp, tmp_path):
    plan = plan_layerwise(mlp, 3, DeviceBudget(max_params=17000))
    paths = export_pieces(mlp, plan, tmp_path)
    assert [p.name for p in paths] == ["device_1.onnx", "device_2.onnx", "device_3.onnx"]
    assert [analyze_onnx(p).params for p in paths] == [p.params for p in plan.pieces]
    assert verify_pieces(mlp, plan) < 1e-5


def test_duplicate_node_names_are_split_by_position(mlp, tmp_path):
    import onnx

    model = onnx.load(str(mlp))
    for node in model.graph.node:
        node.name = "layer"  # legal for the ONNX checker (onnxruntime refuses to run it)
    path = tmp_path / "same_names.onnx"
    onnx.save(model, str(path))
    plan = plan_layerwise(path, 2, DeviceBudget(max_params=21000))
    paths = export_pieces(path, plan, tmp_path / "pieces")
    assert [p.node_range for p in plan.pieces] == [(0, 3), (3, 7)]
    assert [p.params for p in plan.pieces] == [PARAMS[0] + PARAMS[1], PARAMS[2] + PARAMS[3]]
    assert [[n.op_type for n in onnx.load(str(p)).graph.node] for p in paths] == [
        ["MatMul", "Relu", "MatMul"], ["Relu", "MatMul", "Relu", "MatMul"]]


def test_residual_cnn_split_runs_device_by_device(tmp_path):
    import torch
    import torch.nn as nn

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return torch.relu(self.conv(x) + x)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), Res(), Res(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 10)).eval()
    path = tmp_path / "res.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, 6, 6),), str(path), dynamo=False,
                      input_names=["input"], output_names=["output"])
    plan = plan_layerwise(path, 3, DeviceBudget(max_params=1500))
    export_pieces(path, plan, tmp_path / "pieces")
    assert all(p.params <= 1500 for p in plan.pieces)
    # a cut inside a residual block would carry two tensors; the planner avoids paying for that
    assert all(len(p.outputs) == 1 for p in plan.pieces)
    assert verify_pieces(path, plan) < 1e-5
    x = torch.randn(1, 1, 6, 6)
    import onnxruntime as ort

    feed = {"input": x.numpy()}
    for p in plan.pieces:
        sess = ort.InferenceSession(p.onnx_path, providers=["CPUExecutionProvider"])
        feed.update(zip([o.name for o in sess.get_outputs()],
                        sess.run(None, {i.name: feed[i.name] for i in sess.get_inputs()}), strict=True))
    np.testing.assert_allclose(feed["output"], model(x).detach().numpy(), atol=1e-5)


def test_cli_partition_writes_pieces_and_exits_1_naming_the_device(mlp, tmp_path):
    import json

    from click.testing import CliRunner

    from edgec.cli import cli

    out = tmp_path / "parts"
    ok = CliRunner().invoke(cli, ["partition", str(mlp), "--devices", "2", "--max-params", "21000",
                                  "-o", str(out), "--link-mbps", "1"])
    assert ok.exit_code == 0, ok.output
    assert "bytes sent between devices per inference: 64" in ok.output
    saved = json.loads((out / "partition.json").read_text())
    assert saved["bytes_per_inference"] == 64 and len(saved["pieces"]) == 2
    assert all(p["compute_ms"] > 0 for p in saved["pieces"])
    assert saved["estimated_latency_ms"] > 64 * 8 / 1e3  # 64 B at 1 Mbit/s is 0.512 ms
    assert (out / "device_1.onnx").is_file() and (out / "device_2.onnx").is_file()
    assert (out / "partition.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(cli, ["partition", str(mlp), "--devices", "2", "--max-params", "10000",
                                   "-o", str(tmp_path / "bad")])
    assert bad.exit_code == 1
    assert "Device 1 of 2" in bad.output and "mm0" in bad.output
    usage = CliRunner().invoke(cli, ["partition", str(tmp_path / "missing.onnx"), "--devices", "2"])
    assert usage.exit_code == 2


def test_cli_partition_leaves_no_folder_on_failure_and_replaces_one_only_with_force(mlp, tmp_path):
    """A missing or broken model or a missed budget left an empty output folder; an existing
    folder was replaced silently, where compress and sensitivity ask for --force."""
    from click.testing import CliRunner

    from edgec.cli import cli

    runner = CliRunner()
    (tmp_path / "broken.onnx").write_text("not a model")
    out = tmp_path / "new" / "parts"
    for model, budget, code in ((tmp_path / "missing.onnx", "80000", 2),
                                (tmp_path / "broken.onnx", "80000", 2), (mlp, "100", 1)):
        result = runner.invoke(cli, ["partition", str(model), "--devices", "2", "--max-params",
                                     budget, "-o", str(out)])
        assert result.exit_code == code, result.output
        assert not (tmp_path / "new").exists(), result.output  # nor parts.partial, nor new/
    args = ["partition", str(mlp), "--devices", "2", "--max-params", "21000", "-o", str(out)]
    assert runner.invoke(cli, args).exit_code == 0
    first = (out / "partition.json").stat().st_mtime_ns
    again = runner.invoke(cli, args)
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output
    assert (out / "partition.json").stat().st_mtime_ns == first
    missed = runner.invoke(cli, [*args[:-4], "--max-params", "100", "-o", str(out), "--force"])
    assert missed.exit_code == 1 and (out / "partition.json").stat().st_mtime_ns == first
    forced = runner.invoke(cli, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert f"files in {out}/" in forced.output
    assert (out / "partition.json").stat().st_mtime_ns != first
    assert not out.with_name("parts.partial").exists()
    (out / ".edgec-run").unlink()  # as written before partition made run folders: still replaced
    assert runner.invoke(cli, [*args, "--force"]).exit_code == 0


def test_a_target_supplies_limits_only_and_the_result_says_so(mlp, tmp_path):
    """--target mcu took its flash/RAM limits and exited 0 for float32 pieces an int8-only MCU
    cannot run, as if they had been checked against it."""
    import json

    from click.testing import CliRunner

    from edgec.cli import cli

    out = tmp_path / "parts"
    result = CliRunner().invoke(cli, ["partition", str(mlp), "--devices", "2", "--target", "mcu",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    said = "not checked against its operators and data types"
    assert said in result.output and f"edgec check {out}/device_K.onnx --target mcu" in result.output
    notes = json.loads((out / "partition.json").read_text())["notes"]
    assert any(said in n for n in notes)
    assert json.loads(CliRunner().invoke(cli, ["partition", str(mlp), "--devices", "2", "--target",
                                               "mcu", "-o", str(tmp_path / "j"), "--json"]).output)


def test_qdq_model_is_cut_where_the_int8_tensor_crosses(mlp, tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    from edgec.partition import partition_model

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.items = iter([{"input": rng.standard_normal((1, 64)).astype(np.float32)}
                               for _ in range(4)])

        def get_next(self):
            return next(self.items, None)

    qdq = tmp_path / "mlp_qdq.onnx"
    quantize_static(str(mlp), str(qdq), Reader(), quant_format=QuantFormat.QDQ)
    plan = partition_model(qdq, 2, DeviceBudget(max_params=21000), tmp_path / "parts")
    # the 16-wide activation crosses as int8 (16 B), the device after dequantizes it
    assert plan.bytes_per_inference == 16
    assert plan.max_abs_diff is not None and plan.max_abs_diff < 1e-5
    assert all(p.compute_ms is not None for p in plan.pieces)


def test_a_shape_a_recipes_model_cannot_take_names_the_recipe(write_recipe, tmp_path):
    """The message named the recipe model's export, '<out>.partial/model.onnx', a file that is
    gone by the time it is read."""
    from click.testing import CliRunner

    from edgec.cli import cli

    recipe = write_recipe()  # tiny_cnn on 1x8x8 digits
    out = tmp_path / "parts"
    result = CliRunner().invoke(cli, ["partition", str(recipe), "--devices", "2", "--input-shape",
                                      "1,1,16,16", "-o", str(out)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"does not fit '{recipe}', whose input 'input' is N,1,8,8" in text, text
    assert "partial" not in text and not out.exists() and not out.with_name("parts.partial").exists()
