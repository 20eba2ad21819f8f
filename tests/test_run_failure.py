"""A run stopped by the file system says which file and step, and where its work is kept."""

from __future__ import annotations

import errno
import json

import pytest
from click.testing import CliRunner

from edgec.cli import cli
from edgec.errors import OutputError
from edgec.run_failure import output_error


def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")  # as a failed write() says it: no file


def test_a_copy_that_finds_the_disk_full_names_its_destination(tmp_path):
    copy = OSError(errno.ENOSPC, "No space left on device", "cache/a.onnx", None, "run/a.onnx")
    assert "on 'run/a.onnx' during 'reuse export'" in output_error(copy, "reuse export", tmp_path).message
    unreadable = OSError(errno.EACCES, "Permission denied", "cache/a.onnx", None, "run/a.onnx")
    assert "on 'cache/a.onnx'" in output_error(unreadable, "reuse export", tmp_path).message


def test_a_full_disk_inside_a_pass_is_not_blamed_on_its_settings(write_recipe, tmp_path, monkeypatch):
    from edgec.passes.quantize import Quantize

    monkeypatch.setattr(Quantize, "apply", _full)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["compress", str(write_recipe()), "-o", str(out), "-q"])
    assert result.exit_code == 3, result.output
    assert "File system error during 'pass quantize': No space left on device" in result.output
    assert "settings" not in result.output and "--resume" in result.output
    report = json.loads((tmp_path / "run.partial" / "report.json").read_text())
    assert report["error"]["step"] == "pass quantize"


def test_a_report_that_cannot_be_written_says_so(write_recipe, tmp_path, monkeypatch):
    from edgec import pipeline
    from edgec.api import compress

    real = pipeline.write_text_atomic

    def no_report(path, text):
        (_full if path.name == "report.json" else real)(path, text)

    monkeypatch.setattr(pipeline, "write_text_atomic", no_report)
    with pytest.raises(OutputError) as info:
        compress(write_recipe(), output=tmp_path / "run")
    partial = tmp_path / "run.partial"
    assert f"on '{partial}' during 'write report'" in info.value.message  # not the last stage's
    assert (info.value.run_folder, info.value.run_step) == (partial, "write report")
    assert not (partial / "report.json").exists() and (partial / "model.onnx").exists()


def test_sys_exit_in_code_the_run_calls_is_an_error_of_that_code(write_recipe, tmp_path, monkeypatch):
    """A plugin's pass (or any code a run calls) that calls sys.exit() fails the run at its step,
    exit 3 with --json's error document; it ended the process with its own code and no JSON."""
    import sys

    from edgec.passes.quantize import Quantize

    def quits(*args, **kwargs):
        sys.exit(4)

    monkeypatch.setattr(Quantize, "apply", quits)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["compress", str(write_recipe()), "-o", str(out), "-q", "--json"])
    assert result.exit_code == 3, result.output
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "EdgecError"
    assert error["message"] == ("The run stopped at step 'pass quantize': code it ran (a python "
                                "model, a plugin) called sys.exit(4) (exit code 4).")
    report = json.loads((tmp_path / "run.partial" / "report.json").read_text())
    assert report["status"] == "failed" and report["error"]["step"] == "pass quantize"
    assert "sys.exit(4)" in report["error"]["message"]

