"""Target profiles: built-ins load, bad profiles are refused clearly, target budgets gate the run."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgec.budgets import check_budgets
from edgec.cli import cli
from edgec.device import merge_budgets
from edgec.errors import RecipeError
from edgec.recipe import BudgetsConfig, validate_recipe
from edgec.targets import BUILTIN_DIR, builtin_targets, load_target


@pytest.mark.parametrize("name", ["mcu", "npu", "rpi", "host"])
def test_builtin_profiles_load(name):
    profile = load_target(name)
    assert profile.name == name and profile.description
    if profile.ops is not None:
        assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= set(profile.ops)


def test_mcu_profile_is_int8_only_with_flash_and_ram_budgets():
    mcu = load_target("mcu")
    assert mcu.dtypes == ["int8"] and mcu.weights_in_ram is False
    assert mcu.budgets() == {"max_flash_kb": 1024, "max_ram_kb": 512}
    assert "Erf" not in mcu.ops


@pytest.mark.parametrize("text, expected", [
    ("name: x\nflash_kb: -1\n", "flash_kb (line 2): must be > 0"),
    ("name: x\nmin_opset: 18\nmax_opset: 17\n", "min_opset 18 is above max_opset 17"),
    ("name: x\nops: [Conv]\nop_dtypes: {Relu: [int8]}\n", "op_dtypes names ops that are not in ops: Relu"),
    ("name: x\ndtypes: [int9]\n", "dtypes"),
    ("name: x\nflash_kbb: 10\n", "flash_kbb"),
    ("- just a list\n", "must be a mapping"),
])
def test_invalid_profiles_are_refused_with_the_key(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError) as info:
        load_target(str(path))
    assert expected in str(info.value)
    assert info.value.exit_code == 2


def test_profile_by_path_relative_to_the_recipe(tmp_path):
    (tmp_path / "board.yaml").write_text("name: board\nflash_kb: 64\n")
    assert load_target("board.yaml", tmp_path).budgets() == {"max_flash_kb": 64}
    with pytest.raises(RecipeError, match="Known targets: host, mcu, npu, rpi"):
        load_target("nope")
    assert set(builtin_targets()) == {"host", "mcu", "npu", "rpi"}


def test_recipe_refuses_unknown_target_name():
    raw = {"version": 1, "model": {"source": "zoo", "name": "digits_cnn",
                                   "input_shape": [1, 1, 8, 8]}, "target": "arduino"}
    with pytest.raises(RecipeError, match="unknown target 'arduino'"):
        validate_recipe(raw)
    assert validate_recipe({**raw, "target": "mcu"}).target == "mcu"


def test_recipe_budgets_win_over_the_target():
    merged, from_target = merge_budgets(BudgetsConfig(max_ram_kb=100), load_target("mcu"))
    assert merged.max_ram_kb == 100 and merged.max_flash_kb == 1024
    assert from_target == {"max_flash_kb"}
    assert merge_budgets(BudgetsConfig(), None) == (BudgetsConfig(), set())


def test_memory_budgets_compare_with_the_estimates():
    from types import SimpleNamespace

    m = SimpleNamespace(size_bytes=1, size_gzip_bytes=1, params=1, macs=1,
                        latency_ms=SimpleNamespace(p50=1, p90=1), accuracy=None)
    budgets = BudgetsConfig(max_flash_kb=100, max_ram_kb=50, max_peak_activation_kb=10)
    memory = {"flash_kb": 99.0, "ram_kb": 60.0, "peak_activation_kb": 10.0}
    rows = {r.name: r for r in check_budgets(budgets, m, m, {}, memory=memory)}
    assert rows["max_flash_kb"].passed and rows["max_peak_activation_kb"].passed
    assert not rows["max_ram_kb"].passed and rows["max_ram_kb"].actual == 60.0
    (row,) = check_budgets(BudgetsConfig(max_ram_kb=1), m, m, {})  # no memory: not measured
    assert row.actual is None and not row.passed


def test_target_budget_missed_exits_1_and_says_by_how_much(write_recipe, recipe_dir):
    (recipe_dir / "tiny_board.yaml").write_text(
        "name: tiny_board\ndescription: test board\nflash_kb: 1\nram_kb: 4096\n")
    recipe = write_recipe()
    out = recipe_dir / "run"
    res = CliRunner().invoke(cli, ["compress", str(recipe), "-o", str(out), "-q",
                                   "--target", "tiny_board.yaml"])
    assert res.exit_code == 1, res.output
    assert "budget missed: max_flash_kb (limit 1" in res.output
    report = json.loads((out / "report.json").read_text())
    rows = {b["name"]: b for b in report["budgets"]}
    assert rows["max_flash_kb"]["source"] == "target tiny_board" and not rows["max_flash_kb"]["passed"]
    assert rows["max_ram_kb"]["passed"]
    memory = report["device"]["memory"]
    assert memory["compressed"]["estimate"]["peak_activation_bytes"] > 0
    assert memory["compressed"]["measured"]["arena"] is False
    assert report["device"]["checks"][-1]["ok"]
    md = (out / "report.md").read_text()
    assert "## Device" in md and "peak at layer" in md and "max_flash_kb (target tiny_board)" in md


ROOT = Path(__file__).resolve().parents[1]


def test_builtin_profiles_are_package_data_and_configs_targets_still_works():
    import edgec

    assert BUILTIN_DIR.parent == Path(edgec.__file__).resolve().parent
    # configs/targets (named in older docs and recipes) leads to the same files
    assert load_target(str(ROOT / "configs" / "targets" / "mcu.yaml")) == load_target("mcu")


def test_a_wheel_ships_the_builtin_profiles(tmp_path):
    """Built offline from a copy of the project, as pip would for a wheel install."""
    src = tmp_path / "project"
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("edgec-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"edgec/target_profiles/{n}.yaml" for n in builtin_targets()} <= names


def test_targets_command_lists_and_shows_profiles():
    result = CliRunner().invoke(cli, ["targets"])
    assert result.exit_code == 0, result.output
    for name in ("host", "mcu", "npu", "rpi"):
        assert name in result.output
    assert "max_flash_kb 1024, max_ram_kb 512" in result.output and "built-in" in result.output
    shown = CliRunner().invoke(cli, ["targets", "--show", "mcu"])
    assert shown.exit_code == 0 and "weights_in_ram: false" in shown.output
    assert CliRunner().invoke(cli, ["targets", "--show", "arduino"]).exit_code == 2
