"""Kept exports: a zoo model with only ONNX passes is exported once per user, then torch-free."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgec.api import compress
from edgec.export_cache import eligible, exports_root
from edgec.recipe import validate_recipe
from edgec.zoo import load_zoo_model

SRC = Path(__file__).resolve().parents[1] / "src"
RECIPE = {"version": 1, "model": {"source": "zoo", "name": "digits_cnn", "input_shape": [1, 1, 8, 8]},
          "data": {"source": "digits"}, "passes": [{"type": "quantize", "mode": "dynamic"}],
          "benchmark": {"runs": 5, "warmup": 1}, "report": {"profile": {"enabled": False}}}


@pytest.fixture(scope="module")
def trained():
    load_zoo_model("digits_cnn")  # the session's cache; kept exports need a trained model


def _run(out: Path, **changes) -> dict:
    compress({**RECIPE, **changes}, output=out)
    return json.loads((out / "report.json").read_text())


def test_only_a_trained_zoo_model_without_torch_passes_is_kept(trained, tmp_path):
    assert eligible(validate_recipe(RECIPE), [])
    prune = validate_recipe({**RECIPE, "passes": [{"type": "prune", "amount": 0.5}]})
    assert not eligible(prune, prune.passes)
    python = validate_recipe({**RECIPE, "model": {"source": "python", "callable": "m.py:f",
                                                  "input_shape": [1, 1, 8, 8]}})
    assert not eligible(python, [])


def test_second_run_reuses_the_export_without_importing_torch(trained, tmp_path):
    first = _run(tmp_path / "first")
    entries = [p for p in exports_root().iterdir() if (p / "meta.json").is_file()]
    assert entries and json.loads((entries[0] / "meta.json").read_text())["output_classes"] == 10
    script = ("import json, sys; from edgec.api import compress; "
              "compress(json.loads(sys.argv[1]), output=sys.argv[2]); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(RECIPE), str(tmp_path / "second")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # the whole run: no torch
    second = json.loads((tmp_path / "second" / "report.json").read_text())
    for name in ("baseline.onnx", "model.onnx"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()
    assert second["export"] == first["export"]
    assert second["baseline"]["accuracy"] == first["baseline"]["accuracy"]
    assert second["environment"]["torch"] == first["environment"]["torch"]
    assert first["environment"]["torch_threads"] >= 1 and second["environment"]["torch_threads"] is None


def test_other_export_settings_are_exported_again(trained, tmp_path):
    _run(tmp_path / "a")
    before = {p.name for p in exports_root().iterdir() if p.is_dir()}
    report = _run(tmp_path / "b", export={"opset": 16})
    after = {p.name for p in exports_root().iterdir() if p.is_dir()}
    assert len(after - before) == 1 and report["export"]["opset"] == 16


def test_an_unusable_cache_folder_only_costs_the_reuse(trained, tmp_path, monkeypatch):
    from edgec.zoo import zoo_cache_path

    weights = zoo_cache_path("digits_cnn").read_bytes()  # the session's trained model
    monkeypatch.setenv("EDGEC_CACHE_DIR", str(tmp_path / "cache"))
    zoo_cache_path("digits_cnn").parent.mkdir(parents=True)
    zoo_cache_path("digits_cnn").write_bytes(weights)
    (tmp_path / "cache" / "exports").write_text("a file where the folder should be")
    report = _run(tmp_path / "run")
    assert report["status"] == "ok" and report["export"]["parity"]["baseline"]["max_abs_diff"] < 1e-3


def test_the_quick_guess_before_planning(trained, tmp_path):
    from edgec.export_cache import ONNX_PASSES, likely_torch_free
    from edgec.passes import PASSES

    assert {n for n, p in PASSES.items() if p.stage == "onnx"} == ONNX_PASSES  # built-ins: in step
    quick = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
    assert likely_torch_free(quick)
    assert not likely_torch_free(quick, ("passes.0.type=prune",))
    assert not likely_torch_free(quick, ("model.name=resnet18",))
    (tmp_path / "bad.yaml").write_text("model: [")
    assert not likely_torch_free(tmp_path / "bad.yaml")


def test_a_parallel_sweep_of_onnx_passes_never_imports_torch(trained, tmp_path):
    """Workers forked from a fork server without torch; every variant reuses the kept export."""
    _run(tmp_path / "first")  # keeps the export (as any earlier run of this user would have)
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps(RECIPE))  # JSON is YAML
    done = subprocess.run(
        [sys.executable, "-m", "edgec", "sweep", str(recipe), "-o", str(tmp_path / "sw"), "-q",
         "--jobs", "2", "--grid", "passes.0.per_channel=true,false"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr
    for name in ("v000", "v001"):
        report = json.loads((tmp_path / "sw" / "variants" / name / "report.json").read_text())
        assert report["status"] == "ok" and report["environment"]["torch_threads"] is None


def test_a_damaged_kept_export_is_exported_again(trained, tmp_path):
    first = _run(tmp_path / "first")
    exported = (tmp_path / "first" / "baseline.onnx").read_bytes()
    entry = next(p / "baseline.onnx" for p in exports_root().iterdir()
                 if (p / "baseline.onnx").is_file() and (p / "baseline.onnx").read_bytes() == exported)
    entry.write_bytes(exported[:100])  # as a disk error or a half-copied cache would leave it
    again = _run(tmp_path / "again")  # would fail loading a truncated model if it trusted it
    assert again["status"] == "ok" and again["export"]["parity"] == first["export"]["parity"]
    assert entry.read_bytes() == exported  # and the entry is whole again for the next run


def test_the_run_that_trains_the_zoo_model_keeps_its_export(trained, tmp_path, monkeypatch):
    """First use: the run trains the model (torch is loaded anyway) and keeps the export, so the
    second run is already torch-free (it used to take a third)."""
    from edgec import zoo

    model = load_zoo_model("digits_cnn")  # what training would give, without its 13 s
    monkeypatch.setenv("EDGEC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(zoo, "train_zoo_model", lambda name, **_: (
        model, {"train_seconds": 0.0, "eval_accuracy": 1.0}))
    assert not zoo.zoo_cache_path("digits_cnn").is_file()
    _run(tmp_path / "first")
    assert zoo.zoo_cache_path("digits_cnn").is_file()
    assert [p for p in exports_root().iterdir() if (p / "meta.json").is_file()]


def test_a_full_disk_while_copying_the_kept_export_names_the_file_not_written(trained, tmp_path,
                                                                              monkeypatch):
    """The run folder's copy failed, not the cache's file: the error names the copy, and the
    step it stopped in (not 'load data', the step before)."""
    import errno
    import shutil

    from edgec.errors import OutputError

    _run(tmp_path / "first")  # the export is kept

    def disk_full(src, dst, *args, **kwargs):  # as shutil.copyfile says it: source, destination
        raise OSError(errno.ENOSPC, "No space left on device", str(src), None, str(dst))

    monkeypatch.setattr(shutil, "copyfile", disk_full)
    with pytest.raises(OutputError) as info:
        compress(RECIPE, output=tmp_path / "second")
    copy = tmp_path / "second.partial" / "baseline.onnx"
    assert f"'{copy}' during 'reuse export': No space left on device" in info.value.message
    assert str(exports_root()) not in info.value.message
    assert info.value.run_step == "reuse export"
    assert info.value.run_folder == tmp_path / "second.partial"
