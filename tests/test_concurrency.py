"""Under load: several compressions at once, each in its own process and folder, must not cross
files or corrupt each other; and two processes must never write the same run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgec.errors import UsageError
from edgec.rundir import RunFolder

SRC = Path(__file__).parents[1] / "src"

RECIPE = """\
version: 1
model: {source: python, callable: "tiny_models.py:tiny_cnn", input_shape: [1, 1, 8, 8]}
data: {source: digits}
passes:
  - {type: quantize, mode: dynamic}
benchmark: {threads: 1, runs: 3, warmup: 0}
"""


@pytest.mark.slow  # four fresh Python processes importing torch at once
def test_four_concurrent_runs_do_not_cross(write_recipe, tmp_path):
    recipe = write_recipe(RECIPE)
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    outs = [tmp_path / f"run{i}" for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-m", "edgec", "compress", str(recipe), "-o", str(out),
                               "-q", "--set", f"seed={i}"], env=env, stderr=subprocess.PIPE, text=True)
             for i, out in enumerate(outs)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    baselines = set()
    for i, out in enumerate(outs):
        report = json.loads((out / "report.json").read_text())
        assert report["status"] == "ok" and report["run_dir"] == str(out)
        assert report["recipe"]["seed"] == i and report["environment"]["seed"] == i
        assert Path(report["compressed"]["path"]).parent == out  # not the unfinished folder's
        baselines.add((out / "baseline.onnx").read_bytes())
    assert len(baselines) == 1  # same model, same export, whichever process wrote it
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("run")) == [o.name for o in outs]


def test_second_writer_of_the_same_run_is_refused(tmp_path):
    target = tmp_path / "exp"
    with RunFolder(target, force=False):
        with pytest.raises(UsageError, match="Another edgec process"), \
                RunFolder(target, force=False, resume=True):
            pass
        with pytest.raises(UsageError, match="Another edgec process"), RunFolder(target, force=True):
            pass
    assert target.is_dir()


def test_a_run_being_written_is_said_to_be_busy_first(tmp_path):
    """Not 'pass --resume' or 'already exists, pass --force' (advice that then fails): while
    another process writes the run, that is the one thing to say, whatever the flags."""
    target = tmp_path / "exp"
    with RunFolder(target, force=False):
        with pytest.raises(UsageError, match="Another edgec process is writing") as info:
            RunFolder(target, force=False)
        assert "--resume" not in info.value.message
    with RunFolder(target, force=True):  # a --force run replacing the complete one
        for force, resume in ((False, False), (False, True), (True, True)):
            with pytest.raises(UsageError, match="Another edgec process is writing"):
                RunFolder(target, force=force, resume=resume)


ZOO_RECIPE = """\
version: 1
model: {source: zoo, name: digits_cnn, input_shape: [1, 1, 8, 8]}
data: {source: digits}
passes:
  - {type: quantize, mode: static, samples: 32}
benchmark: {threads: 1, runs: 3, warmup: 0}
"""


@pytest.mark.slow  # three processes each train the zoo model into one fresh cache at once
def test_runs_and_a_sweep_share_one_fresh_zoo_cache(write_recipe, tmp_path):
    recipe = write_recipe(ZOO_RECIPE)
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "EDGEC_CACHE_DIR": str(cache)}
    edgec = [sys.executable, "-m", "edgec"]
    commands = [
        [*edgec, "compress", str(recipe), "-o", str(tmp_path / "run0"), "-q"],
        [*edgec, "compress", str(recipe), "-o", str(tmp_path / "run1"), "-q"],
        [*edgec, "sweep", str(recipe), "-o", str(tmp_path / "sweep"), "-q",
         "--grid", "passes.0.samples=16,32"],
    ]
    procs = [subprocess.Popen(c, env=env, stderr=subprocess.PIPE, text=True) for c in commands]
    errors = [p.communicate(timeout=900)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    cached = [p.name for p in (cache / "zoo").iterdir()]
    assert cached == ["digits_cnn-v1.pt"]  # one complete file, no temporaries left behind
    models = {(tmp_path / r / "baseline.onnx").read_bytes() for r in ("run0", "run1")}
    assert len(models) == 1  # every process trained (or read) the same weights
    results = json.loads((tmp_path / "sweep" / "results.json").read_text())
    assert results["variants"] == 2 and results["failed"] == 0
