"""Errors for machines: with --json a failed command still prints one JSON object on stdout
(errors.error_document), its exit_code the process's; people get the message on stderr."""

import json

import pytest
from click.testing import CliRunner

from edgec.cli import cli
from edgec.errors import ERROR_SCHEMA, RecipeError, error_document


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _error(result) -> dict:
    doc = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert doc["schema"] == ERROR_SCHEMA and doc["exit_code"] == result.exit_code
    assert set(doc) == {"schema", "status", "exit_code", "error", "run_dir"}
    assert set(doc["error"]) == {"type", "message", "hint", "problems"}
    return doc


def test_an_invalid_recipe_prints_a_json_error(write_recipe, tmp_path):
    recipe = write_recipe("version: 1\nmodel: {source: nowhere}\n")
    result = run("compress", recipe, "-o", tmp_path / "run", "--json")
    assert result.exit_code == 2
    doc = _error(result)
    assert doc["status"] == "error" and doc["error"]["type"] == "RecipeError"
    assert "unknown source 'nowhere'" in doc["error"]["problems"][0] and doc["run_dir"] is None
    assert "error: " in result.stderr and "unknown source" in result.stderr  # people still told
    result = run("compress", recipe, "-o", tmp_path / "run")  # without --json: stdout stays empty
    assert result.exit_code == 2 and result.stdout == ""


def test_a_runtime_failure_prints_a_json_error_naming_the_unfinished_run(write_recipe, tmp_path):
    recipe = write_recipe("""\
        version: 1
        model: {source: python, callable: "tiny_models.py:raises", input_shape: [1, 1, 8, 8]}
        data: {source: digits}
        """)
    result = run("compress", recipe, "-o", tmp_path / "run", "-q", "--json")
    assert result.exit_code == 3
    doc = _error(result)
    assert doc["error"]["type"] == "ModelLoadError" and "boom" in doc["error"]["message"]
    stored = json.loads((tmp_path / "run.partial" / "report.json").read_text())
    assert doc["run_dir"] == str(tmp_path / "run.partial") and stored["status"] == "failed"


@pytest.mark.parametrize("raised, code, status, kind", [
    (ValueError("a bug"), 3, "error", "InternalError"),
    (KeyboardInterrupt(), 130, "interrupted", "KeyboardInterrupt"),
])
def test_bugs_and_interruptions_print_a_json_error(write_recipe, tmp_path, monkeypatch, raised,
                                                   code, status, kind):
    import edgec.pipeline

    def fail(*args, **kwargs):
        raise raised

    monkeypatch.setattr(edgec.pipeline, "run_recipe", fail)
    result = run("compress", write_recipe(), "-o", tmp_path / "run", "--json")
    assert result.exit_code == code
    doc = _error(result)
    assert (doc["status"], doc["error"]["type"]) == (status, kind)
    if kind == "InternalError":
        assert doc["error"]["message"] == "ValueError: a bug" and "--debug" in doc["error"]["hint"]


def test_check_budgets_json_errors_too(gated_run, tmp_path):
    _, folder = gated_run
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kbb: 3\n")
    result = run("check-budgets", folder / "run" / "model.onnx", "--budgets", budgets, "--json")
    assert result.exit_code == 2 and "max_size_kbb" in _error(result)["error"]["problems"][0]


def test_an_error_after_the_report_adds_no_second_document(gated_run, tmp_path, monkeypatch):
    """stdout already holds the report (the verdict): a CI file lost afterwards is said on
    stderr only, so stdout stays one parseable document."""
    import edgec.report

    _, folder = gated_run
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 1000\n")

    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(edgec.report, "write_text_atomic", full_disk)
    result = run("check-budgets", folder / "run" / "model.onnx", "--budgets", budgets, "--runs", 3,
                 "--junit", tmp_path / "j.xml", "--json")
    assert result.exit_code == 3 and "Cannot write --junit" in result.stderr
    assert json.loads(result.stdout)["schema"] == "edgec.report/1"


def test_error_document_of_a_recipe_error():
    exc = RecipeError("r.yaml: invalid recipe:", problems=["seed: must be >= 0"], hint="See docs.")
    doc = error_document(exc, exc.exit_code)
    assert doc["exit_code"] == 2 and doc["error"]["hint"] == "See docs."
    assert doc["error"]["problems"] == ["seed: must be >= 0"]
    assert doc["error"]["message"] == "r.yaml: invalid recipe:\n  - seed: must be >= 0"


def test_the_documented_object_has_the_keys_printed():
    import re
    from pathlib import Path

    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    section = docs.split("## `--json` when a command fails")[1]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    doc = error_document(RecipeError("x"), 2)
    assert set(example) == set(doc) and set(example["error"]) == set(doc["error"])
    assert example["schema"] == ERROR_SCHEMA


@pytest.mark.parametrize("args", [("compress", "r.yaml", "--json", "--bogus"),
                                  ("compress", "--json"),
                                  ("check-budgets", "--json", "--budgets")])
def test_a_command_line_click_refuses_is_a_json_error_too(args):
    """An unknown option or a missing argument is found before the command reads --json; a
    command line that asked for JSON still gets the error object (and people the usage text)."""
    result = run(*args)
    assert result.exit_code == 2
    doc = _error(result)
    assert doc["error"]["type"] == "UsageError" and doc["error"]["message"].startswith(
        f"edgec {args[0]}: ")
    assert f"edgec {args[0]} --help" in doc["error"]["hint"]
    assert "Error: " in result.stderr  # click's own message for people


def test_a_command_line_error_without_json_leaves_stdout_empty():
    result = run("compress", "r.yaml", "--bogus")
    assert result.exit_code == 2 and result.stdout == "" and "No such option" in result.stderr
    result = run("inspect", "--json", "--bogus")  # a --json that prints data, not error objects
    assert result.exit_code == 2 and result.stdout == ""


def test_sweep_json_errors_too(write_recipe, tmp_path):
    """A sweep that runs nothing (an invalid variant) prints the error object, its problems
    listed as for compress."""
    recipe = write_recipe()
    result = run("sweep", recipe, "--grid", "passes.0.mode=static,bogus", "-o", tmp_path / "sw",
                 "--json")
    assert result.exit_code == 2
    doc = _error(result)
    assert doc["error"]["type"] == "RecipeError" and "variant 2 of 2" in doc["error"]["message"]
    assert "got 'bogus'" in doc["error"]["problems"][0]


def _failing_pass():
    from typing import Literal

    from edgec.passes import PassConfig, TorchPass

    class BrokenConfig(PassConfig):
        type: Literal["broken"] = "broken"

    class Broken(TorchPass):  # not registered: only run_torch_pass sees it
        name = "broken"
        Config = BrokenConfig

        def apply(self, model, ctx):
            raise ValueError("inside the library")

    return Broken(BrokenConfig())


def test_a_failed_pass_says_where_the_traceback_is_in_each_spelling():
    """In Python the hint said 'Run as `edgec --debug compress …`', a command a notebook user
    is not running: there the traceback is the error's __cause__."""
    import torch.nn as nn

    from edgec.errors import PassError, spelling
    from edgec.passes.base import run_torch_pass

    hints = {}
    for mode in ("cli", "api", "sweep"):
        with spelling(mode), pytest.raises(PassError) as info:
            run_torch_pass(_failing_pass(), nn.Linear(2, 2), ctx=None)
        assert isinstance(info.value.__cause__, ValueError)
        hints[mode] = info.value.hint
    assert hints["cli"].startswith("Run as `edgec --debug compress …` for the traceback;")
    assert hints["api"].startswith("The original exception is this error's __cause__")
    assert "--debug" not in hints["api"]
    assert hints["sweep"].startswith("Run the variant alone (`edgec --debug compress <recipe> --set")


def test_override_spelling_follows_the_caller():
    from edgec.errors import spelling
    from edgec.recipe_yaml import apply_overrides

    with pytest.raises(RecipeError, match=r"^--set 'seed': expected dotted.path=value, e.g. --set "):
        apply_overrides({}, ["seed"])
    with spelling("api"), pytest.raises(RecipeError, match=r"^overrides item 'seed': .* overrides=\["):
        apply_overrides({}, ["seed"])
    with spelling("api"), pytest.raises(RecipeError, match=r"^--grid 'seed'"):  # told explicitly
        apply_overrides({}, ["seed"], options=["--grid"])
