"""Sensitivity scan: each layer pruned alone, measured, written out, and a suggestion measured whole."""

import csv
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner

from edgec.cli import cli
from edgec.data import Split
from edgec.passes.prune_config import PruneConfig
from edgec.progress import Progress
from edgec.sensitivity import parse_ratios, scan
from edgec.sensitivity_output import suggestion_yaml

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SHAPE = (1, 1, 8, 8)


def half_dead_net() -> nn.Module:
    """conv 'a' has 8 dead filters of 16: pruning half of it costs nothing; 'b' is all alive."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()
    with torch.no_grad():
        model[0].weight[8:] = 0
        model[0].bias[8:] = -1  # ReLU(-1) = 0: these channels carry nothing
    return model


def labelled(model: nn.Module, n: int = 64) -> Split:
    """Eval data labelled by the model itself: baseline accuracy 100%, so drops are visible."""
    x = np.random.default_rng(0).standard_normal((n, *SHAPE[1:])).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).argmax(1).numpy()
    return Split(x, y.astype(np.int64))


def run_scan(model, split, max_drop=0.0, ratios=(0.25, 0.5, 0.75), **fields):
    fields = {"round_to": 1, **fields} if fields.get("structure") != "unstructured" else fields
    cfg = PruneConfig.model_validate({"type": "prune", "amount": 0.5, **fields})
    return scan(model, split, SHAPE, cfg, ratios, max_drop, seed=0, progress=Progress())


def test_scan_measures_each_layer_alone_and_suggests_what_is_free():
    model = half_dead_net()
    result = run_scan(model, labelled(model))
    assert result.metric == "accuracy" and result.baseline == 1.0
    assert result.layers() == ["0", "2"]  # the Linear produces the output: not scanned
    assert len(result.rows) == 6
    rows = {(r["layer"], r["ratio"]): r for r in result.rows}
    assert rows["0", 0.5]["drop"] == 0 and rows["0", 0.5]["removed"] == 8
    assert rows["0", 0.25]["macs"] > rows["0", 0.5]["macs"] > rows["0", 0.75]["macs"]
    s = result.suggestion
    free = [ratio for (layer, ratio), r in rows.items() if layer == "0" and r["drop"] <= 0]
    assert s["layers"]["0"] == max(free) >= 0.5  # the largest ratio within the target
    assert ("2" in s["layers"]) != ("2" in s["ignore"])
    assert s["macs"] < result.macs
    if s["layers"] == {"0": 0.5}:  # only the dead half is cut: the combined model is exact too
        assert s["drop"] == 0


def test_impossible_target_ignores_every_layer_and_recipe_ignore_is_kept_out():
    model = half_dead_net()
    result = run_scan(model, labelled(model), max_drop=-1.0, ignore=["2"])
    assert result.layers() == ["0"]
    assert result.suggestion == {"max_drop": -1.0, "layers": {}, "ignore": ["0"], "why": {
        "0": "every tested ratio drops more than -100 point(s)"}}


def test_a_ratio_that_removes_nothing_is_never_suggested():
    """Rounding to round_to kept all 32 channels of a layer at 0.25: its +0.0 was suggested as
    '0': 0.25, an entry that does nothing."""
    import io

    from edgec.sensitivity_output import print_result

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 48, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, 10)).eval()
    result = run_scan(model, labelled(model), max_drop=0.05, ratios=(0.25,), round_to=16)
    rows = {r["layer"]: r for r in result.rows}
    assert rows["0"]["removed"] == 0 and rows["2"]["removed"] == 16  # 8 of 32 rounds to none
    s = result.suggestion
    assert "0" not in s["layers"] and "0" in s["ignore"]
    assert s["why"]["0"] == "ratio 0.25 removes no channel (channels go in multiples of round_to)"
    out = io.StringIO()
    print_result(result, file=out)
    assert "none cut" in out.getvalue() and "# ignore '0': ratio 0.25 removes no" in out.getvalue()
    # the counts are the torch module's, said so: the exported ONNX folds BatchNorm
    assert "counted on the torch module" in out.getvalue() and result.to_dict()["counted"]


def test_why_a_layer_is_ignored_names_both_reasons():
    from edgec.sensitivity import SensitivityResult, _suggest

    result = SensitivityResult("accuracy", 1.0, 100, 10, "channel", "l2", [0.25, 0.5], 0.01, rows=[
        {"layer": "a", "ratio": 0.25, "removed": 0, "drop": 0.0},
        {"layer": "a", "ratio": 0.5, "removed": 16, "drop": 0.3}])
    s = _suggest(result, None, None, None, {}, None, None)
    assert s["layers"] == {} and s["ignore"] == ["a"]
    assert s["why"]["a"] == ("ratio 0.25 removes no channel (channels go in multiples of round_to); "
                             "every other tested ratio drops more than 1 point(s)")


def test_unlabelled_data_uses_agreement_and_unstructured_is_scanned_per_tensor():
    model = half_dead_net()
    split = labelled(model)
    result = run_scan(model, Split(split.x, None), structure="unstructured", max_drop=0.05)
    assert result.metric == "agreement" and result.baseline == 1.0
    assert result.layers() == ["0", "2", "6"]  # unstructured may sparsify the classifier too
    assert all(r["macs"] == result.macs for r in result.rows)  # sparsity keeps MACs…
    assert all(r["nonzero_params"] < result.params for r in result.rows)  # …and zeroes weights
    assert "structure: unstructured" in suggestion_yaml(result)


def test_parse_ratios():
    assert parse_ratios("0.5, 0.25,0.5") == (0.25, 0.5)
    for bad in ("", "0.5,1", "x", "0"):
        with pytest.raises(Exception, match="expected fractions between 0 and 1"):
            parse_ratios(bad)


RECIPE = """\
version: 1
model: {source: python, callable: "tiny_models.py:tiny_resnet", input_shape: [1, 1, 8, 8]}
data: {source: digits}
passes:
  - {type: prune, amount: 0.5, importance: l1, ignore: [branch_b.0]}
"""


def test_cli_writes_csv_json_plot_and_prints_a_suggestion(write_recipe, tmp_path):
    recipe = write_recipe(RECIPE)
    out = tmp_path / "sens"
    result = CliRunner().invoke(cli, ["sensitivity", str(recipe), "-o", str(out), "--ratios", "0.5,0.75",
                                      "--max-drop", "0.05", "-q"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "sensitivity.csv").open()))
    layers = {r["layer"] for r in rows}
    members = {m for r in rows for m in r["members"].split()}
    assert "branch_b.0" not in members and "head" not in members  # ignored / output layer
    assert {"stem.0", "conv1.0", "conv2.0", "branch_a.0"} <= members  # stem+conv2: one residual group
    assert len(layers) == 3
    assert {r["ratio"] for r in rows} == {"0.5", "0.75"} and {r["metric"] for r in rows} == {"accuracy"}
    data = json.loads((out / "sensitivity.json").read_text())
    assert data["importance"] == "l1" and data["ratios"] == [0.5, 0.75]
    assert (out / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    assert "- type: prune" in result.output and "sensitivity.csv" in result.output
    again = CliRunner().invoke(cli, ["sensitivity", str(recipe), "-o", str(out), "-q"])
    assert again.exit_code == 2 and "--force" in again.output


def test_cli_refuses_bad_ratios_before_any_work(write_recipe, tmp_path):
    result = CliRunner().invoke(cli, ["sensitivity", str(write_recipe(RECIPE)), "-o", str(tmp_path / "s"),
                                      "--ratios", "0.5,0.95"])
    assert result.exit_code == 2 and "max_per_layer" in result.output
    assert not (tmp_path / "s").exists()
