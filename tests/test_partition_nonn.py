"""NoNN partition: balanced communities on constructed co-activation graphs, students sized to
their budgets, the assembled ONNX files equal to the torch system, and a device that cannot be
served named with exit code 1 (library, `edgec partition`), or as a failed step (exit 3) by the
recipe pass."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgec.errors import BudgetError
from edgec.partition_budget import DeviceBudget
from edgec.partition_graph import (
    balanced_communities,
    coactivation_graph,
    graph_from_weights,
    intra_fraction,
)
from edgec.passes.partition_settings import NonnSettings


def planted(sizes: list[int], inside: float = 1.0, across: float = 0.05, seed: int = 0):
    """Weights with one clique per size (and weak links across), nodes shuffled; returns the
    graph and the planted groups as sets of node ids."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    label = np.repeat(np.arange(len(sizes)), sizes)
    w = np.where(label[:, None] == label[None, :], inside, across) * rng.uniform(0.8, 1.0, (n, n))
    w = np.triu(w, 1) + np.triu(w, 1).T
    perm = rng.permutation(n)  # node perm[i] plays planted node i
    shuffled = np.empty_like(w)
    shuffled[np.ix_(perm, perm)] = w
    groups = [set(perm[label == g].tolist()) for g in range(len(sizes))]
    return graph_from_weights(shuffled), groups


def test_two_planted_cliques_are_recovered():
    graph, groups = planted([8, 8])
    found = balanced_communities(graph, 2)
    assert sorted(map(set, found), key=min) == sorted(groups, key=min)
    assert intra_fraction(graph, found) > 0.9


def test_three_disconnected_cliques_are_recovered():
    graph, groups = planted([5, 5, 5], across=0.0)
    found = balanced_communities(graph, 3)
    assert sorted(map(set, found), key=min) == sorted(groups, key=min)


def test_unequal_cliques_are_balanced_moving_as_few_as_needed():
    graph, (big, small) = planted([11, 5])
    found = [set(c) for c in balanced_communities(graph, 2)]
    assert sorted(map(len, found)) == [8, 8]
    # the small clique stays whole; three members of the big one join it
    with_small = next(c for c in found if small <= c)
    assert len(with_small & big) == 3
    assert all(sorted(c) == c for c in balanced_communities(graph, 2))


@pytest.mark.parametrize("n,k", [(7, 3), (10, 4), (5, 5)])
def test_sizes_differ_by_at_most_one_even_without_edges(n, k):
    import networkx as nx

    found = balanced_communities(nx.empty_graph(n), k)
    assert sorted(v for c in found for v in c) == list(range(n))
    assert max(map(len, found)) - min(map(len, found)) <= 1


def test_filters_that_fire_together_end_up_together():
    # filters 0-5 fire on one kind of input, 6-11 on the other; filter 12 is dead
    rng = np.random.default_rng(1)
    kind = rng.integers(0, 2, 300)
    acts = rng.random((300, 13)) * 0.2
    acts[:, :6] += (kind == 0)[:, None]
    acts[:, 6:12] += (kind == 1)[:, None] * rng.uniform(1, 5, 6)  # scale does not matter
    acts[:, 12] = 0.0
    graph = coactivation_graph(acts)
    assert graph.degree(12) == 0
    found = [set(c) for c in balanced_communities(graph, 2)]
    assert sorted(len(c) for c in found) == [6, 7]
    assert {frozenset(c - {12}) for c in found} == {frozenset(range(6)), frozenset(range(6, 12))}


# -- students and the assembled system -------------------------------------------------------


@pytest.fixture(scope="module")
def teacher():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()


@pytest.fixture(scope="module")
def data():
    from edgec.data import DataSplits, Split, digits_splits

    full = digits_splits(None)
    return DataSplits(train=Split(full.train.x[:160], full.train.y[:160]), calib=full.calib,
                      eval=Split(full.eval.x[:96], full.eval.y[:96]), num_classes=10)


def test_width_search_takes_the_widest_student_within_budget():
    from edgec.partition_students import NonnStudent, fit_width, onnx_cost

    shape = (1, 1, 8, 8)

    def make(width):
        return NonnStudent(1, width, downsample=1)

    def cost(width):
        import tempfile
        from pathlib import Path

        from edgec.partition_students import export_student

        with tempfile.TemporaryDirectory() as tmp:
            return onnx_cost(export_student(make(width), shape, Path(tmp) / "s.onnx"), shape)

    budget = DeviceBudget(max_params=3000, max_ram_kb=3)
    width, got = fit_width(2, 2, budget, make, shape)
    assert got == cost(width) and got["params"] <= 3000 and got["ram"] <= 3 * 1024
    wider = cost(width + 1)
    assert wider["params"] > 3000 or wider["ram"] > 3 * 1024
    with pytest.raises(BudgetError, match=r"Device 2 of 3 cannot hold even the smallest NoNN.*params"):
        fit_width(2, 3, DeviceBudget(max_params=50), make, shape)


def test_assembled_files_equal_the_torch_system(tmp_path):
    import torch

    from edgec.partition_nonn_export import export_system, run_assembled
    from edgec.partition_students import NonnHead, NonnStudent, NonnSystem

    torch.manual_seed(0)
    students = [NonnStudent(1, 3, downsample=1), NonnStudent(1, 2, downsample=1)]
    system = NonnSystem(students, NonnHead([12, 8], 10)).eval()
    paths, head = export_system(system, (1, 1, 8, 8), tmp_path)
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        want = system(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_assembled(paths, head, x), want, atol=1e-5)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(head), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["from_device_1", "from_device_2"]


def test_nonn_students_fit_their_budgets_and_run_device_by_device(teacher, data, tmp_path):
    from edgec.partition_nonn import format_nonn, run_nonn

    budgets = [DeviceBudget(max_params=2500), DeviceBudget(max_params=1500, max_macs=60_000)]
    plan = run_nonn(teacher, data, (1, 1, 8, 8), 2, budgets, NonnSettings(epochs=1), tmp_path,
                    link_mbps=1.0)
    first, second = plan.devices
    assert first.params <= 2500 and second.params <= 1500 and second.macs <= 60_000
    assert first.params == plan.head["params"] + _student_params(first.onnx_path)
    assert sorted(first.filters + second.filters) == list(range(16))
    assert abs(len(first.filters) - len(second.filters)) <= 1
    assert plan.bytes_per_inference == second.bytes_out == 4 * second.feature_dim
    assert plan.max_abs_diff is not None and plan.max_abs_diff < 1e-4
    assert plan.accuracy is not None and plan.estimated_latency_ms > second.bytes_out * 8 / 1e3
    saved = json.loads((tmp_path / "partition.json").read_text())
    assert saved["method"] == "nonn" and saved["devices"][1]["onnx_path"] == "device_2.onnx"
    assert (tmp_path / "partition.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "bytes sent between devices per inference" in format_nonn(plan)
    assert all(p.requires_grad for p in teacher.parameters())  # handed back as it came


def test_without_training_data_the_students_learn_from_synthetic_inputs(teacher, data, tmp_path):
    from edgec.data import DataSplits
    from edgec.partition_nonn import run_nonn

    no_train = DataSplits(train=None, calib=data.calib, eval=data.eval, num_classes=10)
    settings = NonnSettings(epochs=1, alpha=1.0,
                            synthetic={"images": 32, "iterations": 2, "batch_size": 16})
    plan = run_nonn(teacher, no_train, (1, 1, 8, 8), 2, DeviceBudget(max_params=2000), settings, tmp_path)
    assert plan.training["data"] == "synthetic" and plan.training["train_samples"] < 32
    assert plan.max_abs_diff < 1e-4


def _student_params(path: str) -> int:
    from pathlib import Path

    from edgec.graph_stats import analyze_onnx

    return analyze_onnx(Path(path)).params


# -- the CLI and the recipe pass ---------------------------------------------------------------

NONN_RECIPE = """\
version: 1
model: {{source: python, callable: "tiny_models.py:tiny_cnn", input_shape: [1, 1, 8, 8]}}
data: {{source: digits}}
passes:
{passes}
benchmark: {{threads: 1, runs: 5, warmup: 1}}
"""


def test_cli_nonn_exits_1_naming_the_device(write_recipe, tmp_path):
    from click.testing import CliRunner

    from edgec.cli import cli

    recipe = write_recipe(NONN_RECIPE.format(passes="  - {type: quantize}"))
    bad = CliRunner().invoke(cli, ["partition", str(recipe), "--method", "nonn", "--devices", "2",
                                   "--max-params", "60", "-o", str(tmp_path / "bad")])
    assert bad.exit_code == 1, bad.output
    assert "Device 2 of 2" in bad.output
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"")
    usage = CliRunner().invoke(cli, ["partition", str(onnx_file), "--method", "nonn", "--devices", "2",
                                     "--max-params", "1000"])
    assert usage.exit_code == 2 and "recipe" in usage.output


def test_partition_pass_writes_both_methods_into_the_run(write_recipe, tmp_path):
    from click.testing import CliRunner

    from edgec.cli import cli

    passes = ("  - {type: partition, label: nonn, devices: 2, budget: {max_params: 2000}, "
              "link_mbps: 1, nonn: {epochs: 1}}\n"
              "  - {type: partition, label: chain, method: layerwise, devices: 2, "
              "budget: {max_params: 1300}}")
    recipe = write_recipe(NONN_RECIPE.format(passes=passes))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["compress", str(recipe), "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    nonn, chain = (p["details"]["partition"] for p in report["passes"])
    assert nonn["method"] == "nonn" and all(d["params"] <= 2000 for d in nonn["devices"])
    assert chain["method"] == "layerwise" and all(p["params"] <= 1300 for p in chain["pieces"])
    assert nonn["bytes_per_inference"] < chain["bytes_per_inference"]
    for folder, files in (("nonn", ["device_1.onnx", "device_2.onnx", "head.onnx"]),
                          ("chain", ["device_1.onnx", "device_2.onnx"])):
        assert all((out / folder / f).is_file() for f in [*files, "partition.json", "partition.png"])


def test_partition_pass_budget_failure_is_a_failed_step_naming_the_device(write_recipe, tmp_path):
    """Exit 1 promises a finished run with its report; a device the pass cannot serve stops the
    run (exit 3), and --resume would fail the same way, so it is not advised."""
    from click.testing import CliRunner

    from edgec.cli import cli

    passes = ("  - {type: partition, devices: 2, budgets: [{max_params: 5000}, {max_params: 40}], "
              "nonn: {epochs: 1}}")
    result = CliRunner().invoke(cli, ["compress", str(write_recipe(NONN_RECIPE.format(passes=passes))),
                                      "-o", str(tmp_path / "run")])
    assert result.exit_code == 3, result.output
    assert "Pass 'partition' (partition) failed: Device 2 of 2" in result.output
    assert "--resume" not in result.output and "re-run with --force" in result.output
    report = json.loads((tmp_path / "run.partial" / "report.json").read_text())
    assert report["status"] == "failed" and report["error"]["type"] == "PartitionError"


def test_layerwise_pass_budget_failure_json_and_api(write_recipe, tmp_path):
    from click.testing import CliRunner

    import edgec
    from edgec.cli import cli
    from edgec.passes.partition import PartitionError

    passes = "  - {type: partition, method: layerwise, devices: 2, budget: {max_params: 10}}"
    recipe = write_recipe(NONN_RECIPE.format(passes=passes))
    result = CliRunner().invoke(cli, ["compress", str(recipe), "-o", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 3
    error = json.loads(result.stdout)
    assert error["exit_code"] == 3 and error["error"]["type"] == "PartitionError"
    assert "Device 1 of 2 cannot hold even one layer" in error["error"]["message"]
    assert "The smallest budget that splits this model across 2 devices: max_params" in \
        error["error"]["message"]
    assert "budget:" in error["error"]["hint"]
    with pytest.raises(PartitionError, match="Device 1 of 2") as raised:
        edgec.compress(recipe, output=tmp_path / "api")
    assert raised.value.exit_code == 3 and not raised.value.resumable


@pytest.mark.parametrize("fields,match", [
    ({"devices": 2, "budgets": [{"max_params": 10}]}, "one budget per device"),
    ({"devices": 2, "method": "layerwise", "nonn": {"epochs": 2}}, "only apply to method: nonn"),
    ({"devices": 2, "budget": {"max_params": 1}, "budgets": [{}, {}]}, "either budget"),
    ({"devices": 2}, "every device has none"),
    ({"devices": 2, "budgets": [{"max_params": 900}, {}]}, r"device\(s\) 2 has none"),
])
def test_invalid_partition_configs_are_refused(fields, match):
    from pydantic import ValidationError

    from edgec.passes.partition import PartitionConfig

    with pytest.raises(ValidationError, match=match):
        PartitionConfig(type="partition", **fields)
