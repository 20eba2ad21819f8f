"""Security rules that are easy to break by accident, checked on the source and on behaviour.

No eval/exec, no shell, yaml.safe_load only, no unpickling except the documented opt-ins
(model.trust_pickle, and edgec's own hash-checked resume checkpoints).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "edgec"

FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "os.system", "os.popen", "yaml.load",
                   "yaml.unsafe_load", "yaml.full_load", "pickle.load", "pickle.loads",
                   "marshal.loads", "shelve.open"}
# torch.load without weights_only=True is allowed only where the opt-in is explicit
UNPICKLING_ALLOWED = {"model_files.py", "resume.py"}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _calls():
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                yield path, node


def test_no_eval_exec_shell_or_unsafe_loaders():
    bad = []
    for path, call in _calls():
        name = _name(call.func)
        keywords = {k.arg: k.value for k in call.keywords}
        if name in FORBIDDEN_CALLS:
            bad.append(f"{path.name}:{call.lineno} {name}()")
        shell = keywords.get("shell")
        if isinstance(shell, ast.Constant) and shell.value is True:
            bad.append(f"{path.name}:{call.lineno} shell=True")
        if name.endswith("np.load") or name == "numpy.load":
            pickle = keywords.get("allow_pickle")
            if not (isinstance(pickle, ast.Constant) and pickle.value is False):
                bad.append(f"{path.name}:{call.lineno} np.load without allow_pickle=False")
        if name == "torch.load":
            wo = keywords.get("weights_only")
            safe = isinstance(wo, ast.Constant) and wo.value is True
            if not safe and path.name not in UNPICKLING_ALLOWED:
                bad.append(f"{path.name}:{call.lineno} torch.load without weights_only=True")
    assert not bad, bad


def test_whole_pickled_model_needs_the_opt_in(tmp_path):
    import torch
    import torch.nn as nn

    from edgec.errors import ModelLoadError
    from edgec.models import CheckpointModelConfig, load_model

    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), tmp_path / "whole.pt")
    spec = {"source": "checkpoint", "path": "whole.pt", "input_shape": [1, 4]}
    with pytest.raises(ModelLoadError, match="trust_pickle: true"):
        load_model(CheckpointModelConfig.model_validate(spec), tmp_path)
    model = load_model(CheckpointModelConfig.model_validate({**spec, "trust_pickle": True}), tmp_path)
    assert isinstance(model, nn.Module)


@pytest.mark.parametrize("value", ["../out", "a/../../b", "/tmp/x", "C:\\\\x", "..", ".", " "])
def test_recipe_output_dir_cannot_escape(value):
    from edgec.errors import RecipeError
    from edgec.recipe import validate_recipe

    raw = {"version": 1, "model": {"source": "zoo", "name": "digits_cnn", "input_shape": [1, 1, 8, 8]},
           "output": {"dir": value}}
    with pytest.raises(RecipeError, match=r"output\.dir"):
        validate_recipe(raw)
    assert validate_recipe({**raw, "output": {"dir": "runs/exp-1"}}).output.dir == "runs/exp-1"


def test_recipe_output_dir_cannot_escape_through_a_symlink(write_recipe, tmp_path, monkeypatch):
    """`esc/run` passes the text checks; with `esc` a link to another folder it would still write
    there. compress and sensitivity refuse it before any work (exit 2); -o is the user's own call."""
    from click.testing import CliRunner
    from conftest import TINY_RECIPE

    from edgec.api import default_output
    from edgec.cli import cli
    from edgec.recipe import validate_recipe

    here, outside = tmp_path / "here", tmp_path / "outside"
    here.mkdir()
    outside.mkdir()
    (here / "esc").symlink_to(outside)
    (here / "inside").symlink_to(here / "runs", target_is_directory=True)  # stays below: fine
    monkeypatch.chdir(here)
    recipe = write_recipe(TINY_RECIPE + 'output: {dir: "esc/run"}\n')
    for command in ("compress", "sensitivity"):
        result = CliRunner().invoke(cli, [command, str(recipe), "-q"])
        assert result.exit_code == 2, result.output
        assert "output.dir: 'esc/run' leads to" in result.output and "symbolic link" in result.output
    assert list(outside.iterdir()) == []
    raw = {"version": 1, "model": {"source": "zoo", "name": "digits_cnn", "input_shape": [1, 1, 8, 8]}}
    for fine in ("inside/exp", "runs/new/exp"):
        assert default_output(validate_recipe({**raw, "output": {"dir": fine}}), "r") == Path(fine)
