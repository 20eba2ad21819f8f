"""Status lines are for whoever watches; a reader that left (`2>&1 | head -1`) never costs the run."""

from __future__ import annotations

import io
import json
import sys

from edgec.progress import Progress


class _ClosedPipe(io.StringIO):
    """stderr whose reader has left: every write fails as a closed pipe's does."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_status_line_nobody_can_read_is_dropped(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _ClosedPipe())
    progress = Progress(verbose=True)
    progress.log("edgec: load data…")  # no exception
    assert progress.verbose is False  # and no further attempts


def test_a_run_whose_stderr_reader_left_completes(write_recipe, tmp_path, monkeypatch):
    from edgec.api import resolve_recipe
    from edgec.pipeline import run_recipe

    recipe, recipe_dir, _ = resolve_recipe(write_recipe())
    monkeypatch.setattr(sys, "stderr", _ClosedPipe())
    report = run_recipe(recipe, recipe_dir=recipe_dir, output=tmp_path / "run",
                        progress=Progress(verbose=True))
    assert report.status == "ok"
    assert json.loads((tmp_path / "run" / "report.json").read_text())["status"] == "ok"
    assert not (tmp_path / "run.partial").exists()


def test_progress_bars_never_write_to_stdout(monkeypatch):
    """stdout holds --json and tables; a bar wrote a blank line there, and with stdout's reader
    gone (`edgec compress … | head -1` in a terminal) rich's SystemExit(1) failed the run."""
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with Progress(enabled=True).task("timing", total=2) as advance:
        advance()
        advance()
    assert out.getvalue() == ""
