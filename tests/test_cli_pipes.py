"""What the command line does when its reader leaves early (`| head`) or its prompt is aborted:
never an internal error, and never an exit code that says something the run did not."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgec.cli import cli
from edgec.errors import EXIT_INTERRUPTED, EXIT_PIPE


def _closed_stdout(*args, cwd=None):
    """Run edgec with its stdout a pipe whose reader has already left."""
    proc = subprocess.Popen([sys.executable, "-m", "edgec", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before edgec writes: its first write finds no reader
    err = proc.stderr.read()
    return proc.wait(timeout=300), err


@pytest.mark.parametrize("command", [["targets"], ["passes"]])
def test_a_listing_whose_reader_left_exits_141_quietly(command):
    code, err = _closed_stdout(*command)
    assert code == EXIT_PIPE, err
    assert "internal error" not in err and "Traceback" not in err


def test_a_compress_whose_reader_left_keeps_its_verdict(write_recipe, recipe_dir):
    """The run completes and the exit code is still the gate's: 0 met, 1 missed (rich's own
    answer to a closed pipe was exit 1, a 'budget missed' for a run that met every budget)."""
    from conftest import TINY_RECIPE

    for name, budgets, verdict in [("met", "{max_params: 1000000}", 0),
                                   ("missed", "{max_size_kb: 0.001}", 1)]:
        recipe = write_recipe(TINY_RECIPE + f"budgets: {budgets}\n", name=f"{name}.yaml")
        code, err = _closed_stdout("compress", recipe, "-o", recipe_dir / name, "-q",
                                   "--junit", recipe_dir / f"{name}.xml", cwd=recipe_dir)
        assert code == verdict, err
        report = json.loads((recipe_dir / name / "report.json").read_text())
        assert report["status"] == "ok" and report["passed"] is (verdict == 0)
        assert (recipe_dir / f"{name}.xml").is_file()  # the CI file is written after the table
        assert ("budget missed: max_size_kb" in err) is (verdict == 1)  # stderr is still read


def test_a_sweep_whose_reader_left_keeps_its_verdict_and_summary(write_recipe, recipe_dir):
    code, err = _closed_stdout("sweep", write_recipe(), "--grid", "passes.0.per_channel=true,false",
                               "-o", recipe_dir / "sw", "-q", "--summary-md", recipe_dir / "s.md",
                               cwd=recipe_dir)
    assert code == 0, err
    assert (recipe_dir / "s.md").read_text().startswith("### ✅ edgec sweep: 2 variant(s)")


def test_json_errors_are_given_also_after_a_group_option(tmp_path):
    """`edgec --debug check-budgets m.onnx --json`: the command is the first word that is not a
    group option, so a parse error still comes as JSON."""
    result = CliRunner().invoke(cli, ["--debug", "check-budgets", str(tmp_path / "m.onnx"), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["schema"] == "edgec.error/1"


def test_an_aborted_prompt_is_an_interruption(monkeypatch, tmp_path):
    """Ctrl-C at a prompt (click.Abort) exits 130 like any interruption, not 1 ('budget missed')."""
    import click

    def abort(*args, **kwargs):  # what click.prompt raises on Ctrl-C
        raise click.Abort()

    monkeypatch.setattr("edgec.cli_workflows._ask", abort)
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "r.yaml")])
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert "interrupted" in result.stderr


def test_the_kept_note_points_at_report_json_only_when_there_is_one(tmp_path, capsys):
    """A disk too full for the report itself: the note must not send the user to a file that
    was never written."""
    from edgec.cli_errors import _say_kept
    from edgec.errors import OutputError

    exc = OutputError("No space left on device.")
    exc.run_folder = tmp_path
    _say_kept(exc)
    assert "report.json" not in capsys.readouterr().err
    (tmp_path / "report.json").write_text("{}")
    _say_kept(exc)
    assert "(report.json says where it stopped); re-run" in capsys.readouterr().err
