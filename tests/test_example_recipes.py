"""The examples/ folder runs: each example end to end with small settings, so none rots."""

import json
import runpy
import sys
from pathlib import Path

import pytest

from edgec.api import compress
from edgec.recipe import load_recipe

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FAST = ["benchmark.runs=5", "benchmark.warmup=1", "report.profile.runs=3", "report.profile.warmup=1"]


def test_custom_model_example(tmp_path):
    recipe = EXAMPLES / "custom_model" / "recipe.yaml"
    small = [*FAST, "passes.0.epochs=2", "passes.2.epochs=1", "passes.3.samples=32"]
    report = compress(recipe, small, output=tmp_path / "run")
    assert [p.label for p in report.passes] == ["train", "prune", "recover", "quantize"]
    assert report.compressed.params < report.baseline.params and report.compressed.accuracy is not None
    assert (tmp_path / "run" / "report.html").is_file()
    # the baseline is the untrained network (chance): a drop from it means nothing, so the gate
    # is absolute; training really trains (the default lr reached 55% in 8 epochs, this 2 do
    # better), and the amount is cut as asked, not rounded away
    budgets = load_recipe(recipe).budgets
    assert budgets.min_accuracy >= 0.9 and budgets.max_accuracy_drop is None
    train, prune = report.passes[0].details, report.passes[1].details
    assert train["eval_accuracy_before"] < 0.2 and train["eval_accuracy_after"] > 0.55
    assert prune["achieved_ratio"] == 0.5


def test_data_free_example(tmp_path):
    recipe = EXAMPLES / "data_free" / "recipe.yaml"
    assert load_recipe(recipe).data.source == "synthetic"
    report = compress(recipe, [*FAST, "model.input_shape=[1, 3, 32, 32]"], output=tmp_path / "run")
    assert report.compressed.accuracy is None and report.baseline.accuracy is None  # never invented
    assert report.ratios["size"] > 1.5 and report.passed


def test_sweep_example(tmp_path, capsys, monkeypatch):
    script = EXAMPLES / "sweep" / "sweep.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--out", str(tmp_path), "--amounts", "0", "0.5",
                                      "--epochs", "1", "--runs", "5"])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert "prune0-int8" in out and "prune50-int8" in out and "speedup" in out
    reports = {p.name: json.loads((p / "report.json").read_text()) for p in tmp_path.iterdir()}
    assert set(reports) == {"prune0-int8", "prune50-int8"}
    assert reports["prune50-int8"]["compressed"]["params"] < reports["prune0-int8"]["compressed"]["params"]
    # the baseline is the untrained network (chance): the gate is absolute, so one epoch's model
    # misses it (a max_accuracy_drop from chance 'met' at 50%), and training really trains
    for report in reports.values():
        assert [b["name"] for b in report["budgets"]] == ["min_accuracy"] and not report["passed"]
        train = report["passes"][0]["details"]
        assert train["eval_accuracy_before"] < 0.2 and train["eval_accuracy_after"] > 0.35
    assert out.count("MISSED") == 2
    assert reports["prune50-int8"]["passes"][1]["details"]["achieved_ratio"] == 0.5


@pytest.mark.parametrize("recipe", sorted(EXAMPLES.glob("*/recipe.yaml")), ids=lambda p: p.parent.name)
def test_every_example_recipe_validates(recipe):
    if recipe.parent.name == "plugin":
        pytest.skip("needs the plugin installed: tests/test_plugins.py runs it")
    load_recipe(recipe)
