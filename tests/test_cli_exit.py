"""The installed command leaves without Python's slow teardown: its exit code and its piped output
must still be exactly what the run decided and printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_RECIPE

SRC = Path(__file__).parents[1] / "src"


@pytest.mark.slow  # a fresh Python process importing torch
def test_exit_code_and_piped_json_survive_the_fast_exit(write_recipe, tmp_path):
    recipe = write_recipe(TINY_RECIPE + "budgets: {max_size_kb: 1}\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-m", "edgec", "compress", str(recipe), "-o",
                           str(tmp_path / "run"), "--json"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 1, done.stderr  # the budget is missed: 1, not 0
    report = json.loads(done.stdout)  # the whole document arrived through the pipe
    assert report["status"] == "ok" and not report["passed"]
    assert json.loads((tmp_path / "run" / "report.json").read_text())["passed"] is False


def test_usage_errors_keep_their_exit_code(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-m", "edgec", "compress", str(tmp_path / "nope.yaml")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "nope.yaml" in done.stderr


def test_json_errors_survive_the_fast_exit(tmp_path):
    """--json: a usage error still prints its JSON object through the real entry point's pipe."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-m", "edgec", "compress", str(tmp_path / "nope.yaml"),
                           "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "nope.yaml" in done.stderr
    doc = json.loads(done.stdout)
    assert (doc["schema"], doc["status"], doc["exit_code"]) == ("edgec.error/1", "error", 2)
