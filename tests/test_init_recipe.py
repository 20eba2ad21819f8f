"""`edgec init` writes recipes that validate, never prompts off a terminal; shell completion works."""

import io
import itertools
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgec.cli import cli
from edgec.init_recipe import DATA_KINDS, MODEL_SOURCES, render_recipe, write_starter
from edgec.recipe import load_recipe

COMBINATIONS = [c for c in itertools.product(MODEL_SOURCES, DATA_KINDS) if c != ("torchvision", "digits")]


@pytest.mark.parametrize(("model", "data"), COMBINATIONS)
def test_every_starter_recipe_validates(tmp_path, model, data):
    path = tmp_path / "r.yaml"
    text = write_starter(path, model, data, force=False)
    recipe = load_recipe(path)
    assert recipe.model.source == model and recipe.data.source == data
    assert text.count("\n#") >= 5  # it is a commented starter, not a bare dump
    if data == "synthetic":  # no calibration data: the one fast, data-free pass, never slow int8
        assert [p.type for p in recipe.passes] == ["prune"]
    else:
        assert recipe.passes[-1].type == "quantize" and recipe.passes[-1].mode == "static"


@pytest.mark.parametrize("data", [d for d in DATA_KINDS if d != "digits"])
def test_torchvision_starter_recipes_load_their_model(tmp_path, data):
    """Validating is not enough: the model must take the input_shape the recipe gives it."""
    from edgec.models import load_model

    write_starter(tmp_path / "r.yaml", "torchvision", data, force=False)
    load_model(load_recipe(tmp_path / "r.yaml").model, tmp_path)  # raises if the shape is wrong


def test_torchvision_with_digits_is_refused_and_checkpoint_gets_a_1_channel_network(tmp_path):
    """mobilenet_v3_small on the 1-channel digits validated, then failed at load ('expected
    input[1, 1, 8, 8] to have 3 channels'): refused, with what works instead."""
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "t.yaml"), "--model", "torchvision",
                                      "--data", "digits"])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "torchvision's networks take 3-channel images" in said and "--model zoo" in said
    assert not (tmp_path / "t.yaml").exists()
    write_starter(tmp_path / "c.yaml", "checkpoint", "digits", force=False)
    assert load_recipe(tmp_path / "c.yaml").model.architecture.source == "python"
    # asked for a torchvision model only, a script gets data that network can take
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "d.yaml"), "--model", "torchvision"])
    assert result.exit_code == 0 and load_recipe(tmp_path / "d.yaml").data.source == "imagefolder"


def test_cli_uses_defaults_without_a_terminal(tmp_path):
    path = tmp_path / "recipe.yaml"
    result = CliRunner().invoke(cli, ["init", str(path)], input="")  # stdin is not a terminal
    assert result.exit_code == 0, result.output
    assert "?" not in result.output and "wrote" in result.output
    assert load_recipe(path).model.source == "zoo"
    again = CliRunner().invoke(cli, ["init", str(path), "--model", "python", "--data", "npz"])
    assert again.exit_code == 2 and "--force" in again.output
    forced = CliRunner().invoke(cli, ["init", str(path), "--model", "python", "--data", "npz", "--force"])
    assert forced.exit_code == 0 and load_recipe(path).data.source == "npz"
    result = CliRunner().invoke(cli, ["init", str(path), "--model", "keras"])
    assert result.exit_code == 2 and "keras" in result.output


def test_render_refuses_unknown_kinds():
    with pytest.raises(Exception, match="unknown --model"):
        render_recipe("keras", "digits")


def _complete(env: dict) -> str:
    return subprocess.run([sys.executable, "-c", "from edgec.cli import main; main()"],
                          env={**os.environ, **env}, capture_output=True, text=True).stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts(shell):
    script = _complete({"_EDGEC_COMPLETE": f"{shell}_source"})
    assert "_EDGEC_COMPLETE" in script and f"{shell}_complete" in script


def test_completion_suggests_commands():
    out = _complete({"_EDGEC_COMPLETE": "bash_complete", "COMP_WORDS": "edgec comp", "COMP_CWORD": "1"})
    assert "compress" in out and "compare" in out and "validate" not in out


class _Terminal(io.BytesIO):
    """stdin that is a terminal (so init asks), holding what the user types."""

    def isatty(self):
        return True


class _CtrlC(_Terminal):
    """A terminal where the user presses Ctrl-C at the first prompt."""

    def read(self, size=-1):
        if size == 0:  # click's probe for a binary stream
            return b""
        raise KeyboardInterrupt

    def read1(self, size=-1):
        return self.read(size)

    def readline(self, size=-1):
        raise KeyboardInterrupt


def test_a_folder_is_not_a_recipe_path_even_with_force(tmp_path):
    folder = tmp_path / "initdir"
    folder.mkdir()
    for extra in ([], ["--force"]):
        result = CliRunner().invoke(cli, ["init", str(folder), *extra], input=_Terminal(b""))
        assert result.exit_code == 2, result.output
        assert f"'{folder}' is a folder; give a file path, e.g. {folder / 'recipe.yaml'}" in result.output
        assert "--force" not in result.output and "?" not in result.output  # refused before asking
    assert list(folder.iterdir()) == []
    afile = tmp_path / "afile"
    afile.write_text("")
    result = CliRunner().invoke(cli, ["init", str(afile / "r.yaml"), "--model", "zoo", "--data", "npz"])
    assert result.exit_code == 2 and f"'{afile}' is a file, not a folder" in result.output
    result = CliRunner().invoke(cli, ["init", "/dev/null", "--force", "--model", "zoo"])
    assert result.exit_code == 2 and "'/dev/null' is not a regular file" in result.output


def test_answers_typed_at_the_prompts_are_used(tmp_path):
    path = tmp_path / "r.yaml"
    result = CliRunner().invoke(cli, ["init", str(path)], input=_Terminal(b"python\nnpz\n"))
    assert result.exit_code == 0, result.output
    assert load_recipe(path).data.source == "npz"


def test_ctrl_c_at_a_prompt_is_an_interruption_and_end_of_input_a_usage_error(tmp_path):
    path = tmp_path / "r.yaml"
    result = CliRunner().invoke(cli, ["init", str(path)], input=_CtrlC(b""))
    assert result.exit_code == 130, result.output  # not 1, which means "a budget was missed"
    result = CliRunner().invoke(cli, ["init", str(path)], input=_Terminal(b"bogus\n"))
    assert result.exit_code == 2, result.output  # an invalid answer, then the input ended
    assert "no answer for 'Model source' (the input ended)" in result.output
    assert "edgec init --model zoo --data digits" in result.output
    assert not path.exists()
