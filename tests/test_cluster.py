"""The cluster pass: k-means weight sharing, centroid fine-tuning, BN folding, export and report."""

import copy
import gzip
import json
import shutil

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner
from conftest import FIXTURES
from onnx import numpy_helper

from edgec.cli import cli
from edgec.data import digits_splits
from edgec.errors import PassError
from edgec.export import check_parity, export_onnx
from edgec.passes import PASSES
from edgec.passes.base import PassContext
from edgec.passes.cluster import ClusterConfig, ClusterPass
from edgec.passes.cluster_weights import kmeans_1d
from edgec.progress import Progress
from edgec.recipe import ExportConfig

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 10),
    )
    with torch.no_grad():  # BN statistics that differ per channel, as after training
        for bn in (model[1], model[4]):
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def data():
    return digits_splits()


def context(data, model, tmp_path) -> PassContext:
    return PassContext(data=data, baseline=model, input_shape=(1, 1, 8, 8), seed=0, run_dir=tmp_path,
                       recipe_dir=tmp_path, progress=Progress(enabled=False))


def weight_layers(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def distinct(model) -> dict[str, int]:
    return {n: int(torch.unique(m.weight.detach()).numel()) for n, m in weight_layers(model).items()}


def onnx_weights(path) -> dict[str, np.ndarray]:
    """Float weight tensors (ndim >= 2) of an exported model, by initializer name."""
    arrays = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    return {k: a for k, a in arrays.items() if a.ndim >= 2}


def test_registered_with_its_config():
    assert PASSES["cluster"] is ClusterPass and ClusterPass.stage == "torch"
    assert ClusterConfig().clusters == 16 and ClusterConfig().finetune.epochs == 0


def test_kmeans_linear_init_keeps_the_extremes_and_at_most_k_values():
    w = torch.randn(5000, generator=torch.Generator().manual_seed(0))
    c, assign = kmeans_1d(w, 16, "linear", 50, torch.Generator())
    assert len(c) <= 16 and torch.all(c[1:] > c[:-1])
    assert int(assign.max()) == len(c) - 1
    # the nearest-centroid assignment of every weight, and each centroid is its cluster's mean
    assert torch.equal((w[:, None] - c[None]).abs().argmin(1).int(), assign)
    for i in (0, len(c) - 1):
        assert float(c[i]) == pytest.approx(float(w[assign == i].mean()), rel=1e-5)
    few = torch.tensor([0.5, -1.0, 0.5, 2.0])
    c, assign = kmeans_1d(few, 16, "linear", 50, torch.Generator())
    assert torch.equal(c[assign.long()], few)  # fewer distinct values than k: nothing changes


@pytest.mark.parametrize("k", [2, 16, 32, 256])
def test_every_layer_has_at_most_k_values_after_kmeans(data, tmp_path, k):
    model = tiny_cnn()
    p = ClusterPass(ClusterConfig(clusters=k))
    out = p.apply(copy.deepcopy(model), context(data, model, tmp_path))
    counts = distinct(out)
    assert set(counts) == {"0", "3", "8"} and all(c <= k for c in counts.values())
    # linear init leaves a few centroids in the sparse tails empty at large k (they are dropped)
    assert counts["3"] == k if k <= 32 else counts["3"] > k // 2
    layers = p.details["layers"]
    assert {n: v["distinct_after"] for n, v in layers.items()} == counts
    assert all(v["distinct_before"] > v["distinct_after"] or v["weights"] <= k for v in layers.values())
    assert p.details["folded_batchnorms"] == 2 and isinstance(out[1], nn.Identity)
    assert not any(m._forward_pre_hooks for m in out.modules())  # nothing left attached
    assert all(isinstance(m.weight, nn.Parameter) for m in weight_layers(out).values())


def test_finetuning_moves_the_centroids_but_keeps_the_sharing(data, tmp_path):
    model = tiny_cnn()
    ctx = context(data, model, tmp_path)
    kmeans = ClusterPass(ClusterConfig(clusters=4)).apply(copy.deepcopy(model), ctx)
    p = ClusterPass(ClusterConfig(clusters=4, finetune={"epochs": 2, "lr": 0.01}))
    tuned = p.apply(copy.deepcopy(model), ctx)
    for name, m in weight_layers(tuned).items():
        before, after = torch.unique(weight_layers(kmeans)[name].weight), torch.unique(m.weight)
        assert len(after) <= 4
        assert not torch.equal(before, after)  # the shared values trained
        # every weight still sits in the cluster it was assigned to (centroids may swap order):
        # weights that shared a value before share one after, and only those
        pairs = torch.stack([weight_layers(kmeans)[name].weight.detach().flatten(),
                             m.weight.detach().flatten()])
        assert torch.unique(pairs, dim=1).shape[1] == len(before) == len(after)
    assert [e["epoch"] for e in p.details["epochs"]] == [1, 2]
    assert p.details["eval_accuracy_finetuned"] is not None
    assert any("after 2 epochs of centroid fine-tuning" in n for n in p.notes)
    assert ClusterConfig(finetune={"epochs": 1}).data_requirement().startswith("labelled")


def test_finetuned_centroids_are_the_same_bits_every_run(data, tmp_path):
    """The cluster guide's recipe gave 4 ONNX hashes in 4 runs: table[assign]'s backward adds a
    layer's gradients into its centroids with atomic adds from several threads once the layer has
    32k weights (torch's grain size). A 64k-weight Linear and 2 threads trip it."""
    import hashlib

    def wide_mlp() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, 10)).eval()

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        hashes = []
        for run in ("a", "b"):
            model = wide_mlp()
            cfg = ClusterConfig(clusters=16, finetune={"epochs": 1, "lr": 1e-3})
            out = ClusterPass(cfg).apply(model, context(data, model, tmp_path))
            export_onnx(out, (1, 1, 8, 8), tmp_path / f"{run}.onnx", ExportConfig())
            hashes.append(hashlib.sha256((tmp_path / f"{run}.onnx").read_bytes()).hexdigest())
    finally:
        torch.set_num_threads(threads)
    assert hashes[0] == hashes[1]


def test_pruned_zeros_stay_zero_and_count_as_a_cluster(data, tmp_path):
    model = tiny_cnn()
    with torch.no_grad():  # as left by unstructured pruning
        model[3].weight[model[3].weight.abs() < 0.05] = 0
    zeros = model[3].weight == 0
    p = ClusterPass(ClusterConfig(clusters=8, finetune={"epochs": 1, "lr": 0.01}))
    out = p.apply(copy.deepcopy(model), context(data, model, tmp_path))
    assert torch.equal(out[3].weight == 0, zeros)
    assert distinct(out)["3"] <= 8 and p.details["layers"]["3"]["zeros_pinned"] is True


def test_layers_and_ignore_patterns(data, tmp_path):
    model = tiny_cnn()
    p = ClusterPass(ClusterConfig(clusters=4, layers={"[03]": 8}, ignore=("8",)))
    out = p.apply(copy.deepcopy(model), context(data, model, tmp_path))
    counts = distinct(out)
    assert counts["0"] == 8 and counts["3"] == 8 and counts["8"] == 640  # fc untouched
    assert set(p.details["layers"]) == {"0", "3"}
    ctx = context(data, model, tmp_path)
    with pytest.raises(PassError, match=r"'conv9' in ignore matches no conv/linear layer.*0, 3, 8"):
        ClusterPass(ClusterConfig(ignore=("conv9",))).apply(copy.deepcopy(model), ctx)
    with pytest.raises(PassError, match="nothing to cluster"):
        ClusterPass(ClusterConfig(ignore=(".*",))).apply(copy.deepcopy(model), ctx)


def test_export_matches_torch_and_keeps_k_values_per_layer(data, tmp_path):
    """The exporter folds BN into the conv; the pass folded it first, so the exported weights are
    still the shared values (16 per layer, not 16 per channel) and the file gzips smaller."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_models", FIXTURES / "tiny_models.py")
    tiny_models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny_models)
    model = tiny_models.tiny_resnet().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
    out = ClusterPass(ClusterConfig(clusters=16)).apply(copy.deepcopy(model), context(data, model, tmp_path))
    base_path, path = tmp_path / "base.onnx", tmp_path / "clustered.onnx"
    export_onnx(model, (1, 1, 8, 8), base_path, ExportConfig())
    export_onnx(out, (1, 1, 8, 8), path, ExportConfig())
    parity = check_parity(out, path, data.eval.x[:64], 1e-4)
    assert parity.top1_agreement == 1.0
    weights = onnx_weights(path)
    assert len(weights) == 6 and all(len(np.unique(w)) <= 16 for w in weights.values())
    assert max(len(np.unique(w)) for w in onnx_weights(base_path).values()) > 1000

    def gz(p):
        return len(gzip.compress(p.read_bytes(), compresslevel=9, mtime=0))

    assert gz(path) < 0.5 * gz(base_path)


RECIPE = """\
version: 1
model: {source: python, callable: "tiny_models.py:tiny_cnn", input_shape: [1, 1, 8, 8]}
data: {source: digits}
passes:
  - {type: cluster, clusters: 16, finetune: {epochs: 1}}
benchmark: {threads: 1, runs: 10, warmup: 2}
"""


def test_pipeline_records_layers_and_gzip_in_the_report(tmp_path):
    shutil.copy(FIXTURES / "tiny_models.py", tmp_path / "tiny_models.py")
    (tmp_path / "r.yaml").write_text(RECIPE)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["compress", str(tmp_path / "r.yaml"), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    (rec,) = report["passes"]
    d = rec["details"]
    assert d["max_distinct_after"] <= 16 and set(d["layers"]) == {"0", "3", "8"}
    assert d["weights_gzip_bytes_after"] < d["weights_gzip_bytes_before"]
    assert report["ratios"]["size_gzip"] > 1.5 and report["ratios"]["size"] == pytest.approx(1, abs=0.01)
    md = (out / "report.md").read_text()
    assert "## Weight clustering: cluster" in md and "| 3 | 1,152 | 16 |" in md
    assert "gzip'd" in md and "smaller" in md
    assert all(len(np.unique(w)) <= 16 for w in onnx_weights(out / "model.onnx").values())


@pytest.mark.parametrize(("passes", "expected"), [
    ("[{type: cluster, clusters: 1}]", ["passes[0].clusters", "must be >= 2, got 1"]),
    ("[{type: cluster, clusters: 300}]", ["passes[0].clusters", "must be <= 256, got 300"]),
    ("[{type: cluster, layers: {'fc(': 8}}]", ["not a valid regular expression"]),
    ("[{type: cluster, cluster: 16}]", ["did you mean 'clusters'"]),
    ("[{type: cluster, init: kmeans++}]", ["passes[0].init", "linear"]),
    ("[{type: cluster, finetune: {epochs: 1, lr: 0}}]", ["passes[0].finetune.lr"]),
    ("[{type: cluster}, {type: finetune, epochs: 1}]",
     ["passes[1] (finetune) trains the weights after passes[0] (cluster)", "finetune: {epochs: N}"]),
    ("[{type: cluster, ignore: [fc], layers: {fc: 8}}]", ["'fc' is both in ignore and in layers"]),
])
def test_bad_cluster_configs_exit_2_with_a_clear_message(write_recipe, passes, expected):
    path = write_recipe(RECIPE.split("passes:")[0] + f"passes: {passes}\n")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    for fragment in expected:
        assert fragment in result.output, f"{fragment!r} not in:\n{result.output}"
    assert "Traceback" not in result.output


def test_finetuning_needs_labelled_data(write_recipe):
    path = write_recipe(RECIPE.replace("{source: digits}", "{source: synthetic}"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2 and "finetune.epochs fine-tunes the centroids" in result.output
