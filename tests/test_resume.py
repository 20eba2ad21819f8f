"""Nothing lost: a failed, interrupted or terminated run keeps its completed work in <name>.partial
with a report saying where it stopped, and `--resume` continues from the last completed step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgec.cli import cli

SRC = Path(__file__).parents[1] / "src"

RECIPE = """\
version: 1
model: {source: python, callable: "tiny_models.py:tiny_cnn", input_shape: [1, 1, 8, 8]}
data: {source: digits}
passes:
  - {type: finetune, epochs: 1}
  - {type: quantize, mode: static, samples: 32}
benchmark: {threads: 1, runs: 3, warmup: 0}
"""


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _boom(exc: BaseException):
    def raiser(*args, **kwargs):
        raise exc
    return raiser


def _report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text())


def test_failed_pass_keeps_work_then_resume_skips_completed_steps(write_recipe, tmp_path, monkeypatch):
    from edgec.passes.finetune import FinetunePass
    from edgec.passes.quantize import Quantize

    recipe, out = write_recipe(RECIPE), tmp_path / "run"
    partial = tmp_path / "run.partial"
    with monkeypatch.context() as mp:
        mp.setattr(Quantize, "apply", _boom(RuntimeError("quantizer exploded")))
        result = run("compress", recipe, "-o", out, "-q")
    assert result.exit_code == 3, result.output
    assert "quantizer exploded" in result.output and "--resume" in result.output
    assert not out.exists()  # never a folder that looks complete
    report = _report(partial)
    assert report["status"] == "failed" and report["passed"] is False
    assert report["error"]["step"] == "pass quantize" and report["error"]["type"] == "PassError"
    assert [p["type"] for p in report["passes"]] == ["finetune"]
    assert (partial / "baseline.onnx").is_file() and (partial / "exported.onnx").is_file()
    assert not (partial / "model.onnx").exists()

    # re-running without --resume refuses instead of silently overwriting the unfinished run
    result = run("compress", recipe, "-o", out, "-q")
    assert result.exit_code == 2 and "--resume" in result.output

    # resume: finetune and export must not run again (they would raise), quantize does
    import edgec.export

    with monkeypatch.context() as mp:
        mp.setattr(FinetunePass, "apply", _boom(AssertionError("finetune ran again")))
        mp.setattr(edgec.export, "export_onnx", _boom(AssertionError("export ran again")))
        result = run("compress", recipe, "-o", out, "-q", "--resume")
    assert result.exit_code == 0, result.output
    assert not partial.exists() and (out / "model.onnx").is_file()
    assert not (out / ".resume").exists() and not (out / ".lock").exists()
    report = _report(out)
    assert report["status"] == "ok" and report["error"] is None
    finetune, quant = report["passes"]
    assert finetune["type"] == "finetune" and any("--resume" in n for n in finetune["notes"])
    assert quant["type"] == "quantize" and not any("--resume" in n for n in quant["notes"])


def test_interrupt_during_export_resumes_from_the_saved_torch_model(write_recipe, tmp_path, monkeypatch):
    import edgec.export
    from edgec.passes.finetune import FinetunePass

    recipe, out = write_recipe(RECIPE), tmp_path / "run"
    partial = tmp_path / "run.partial"
    real_export = edgec.export.export_onnx

    def interrupt_after_the_baseline(model, *args, **kwargs):
        if (partial / "baseline.onnx").exists():  # the baseline is exported before the passes
            raise KeyboardInterrupt
        return real_export(model, *args, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(edgec.export, "export_onnx", interrupt_after_the_baseline)
        result = run("compress", recipe, "-o", out, "-q")
    assert result.exit_code == 130, result.output
    assert "interrupted" in result.output
    report = _report(partial)
    assert report["status"] == "interrupted" and report["error"]["step"] == "export compressed"
    assert (partial / ".resume" / "torch-0.pt").is_file()

    with monkeypatch.context() as mp:
        mp.setattr(FinetunePass, "apply", _boom(AssertionError("finetune ran again")))
        result = run("compress", recipe, "-o", out, "-q", "--resume")
    assert result.exit_code == 0, result.output
    assert [p["type"] for p in _report(out)["passes"]] == ["finetune", "quantize"]


def test_resume_with_a_changed_recipe_starts_over(write_recipe, tmp_path, monkeypatch):
    from edgec.passes.quantize import Quantize

    recipe, out = write_recipe(RECIPE), tmp_path / "run"
    with monkeypatch.context() as mp:
        mp.setattr(Quantize, "apply", _boom(RuntimeError("x")))
        assert run("compress", recipe, "-o", out, "-q").exit_code == 3
    calls = []
    from edgec.passes.finetune import FinetunePass

    real = FinetunePass.apply
    monkeypatch.setattr(FinetunePass, "apply", lambda self, m, c: calls.append(1) or real(self, m, c))
    result = run("compress", recipe, "-o", out, "-q", "--resume", "--set", "passes.0.lr=0.002")
    assert result.exit_code == 0, result.output
    assert calls == [1]  # the finetune checkpoint belonged to another recipe: run again


def test_resume_of_a_complete_run_is_refused(write_recipe, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    result = run("compress", write_recipe(RECIPE), "-o", out, "--resume")
    assert result.exit_code == 2 and "already complete" in result.output


def test_sigterm_stops_like_ctrl_c(recipe_dir, tmp_path):
    """A real process, killed with SIGTERM while loading the model: exit 130, report says so."""
    marker = tmp_path / "loading"
    (recipe_dir / "slow.py").write_text(
        "import pathlib, time\n"
        "from tiny_models import tiny_cnn\n"
        "def build(marker):\n"
        "    pathlib.Path(marker).write_text('x')\n"
        "    time.sleep(60)\n"
        "    return tiny_cnn()\n"
    )
    (recipe_dir / "r.yaml").write_text(
        "version: 1\n"
        f"model: {{source: python, callable: 'slow.py:build', kwargs: {{marker: '{marker}'}}, "
        "input_shape: [1, 1, 8, 8]}\n"
    )
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "edgec", "compress", str(recipe_dir / "r.yaml"),
                             "-o", str(out), "-q"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the run never reached the model"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    report = _report(tmp_path / "run.partial")
    assert report["status"] == "interrupted" and report["error"]["step"] == "load model"
    assert report["error"]["type"] == "Terminated"
    assert not out.exists()


@pytest.mark.parametrize("broken", ["missing", "tampered"])
def test_checkpoint_that_changed_is_not_trusted(tmp_path, broken):
    import torch.nn as nn

    from edgec.resume import Checkpoints

    recipe = {"version": 1}
    ckpts = Checkpoints(tmp_path, recipe, resume=False)
    assert ckpts.save_model("torch:0", nn.Linear(2, 2), {"record": {}})
    path = tmp_path / ".resume" / "torch-0.pt"
    if broken == "missing":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes() + b"\0")
    again = Checkpoints(tmp_path, recipe, resume=True)
    assert "torch:0" in again.steps and again.load_model("torch:0") is None
