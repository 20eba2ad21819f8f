"""The Python API (api.py, edgec/__init__.py): a notebook user's view of edgec.compress — its
signature and exceptions, what a recipe's relative paths mean, and arguments checked before any
work with messages in the API's own words (no --set, -o or `edgec --debug` to pass there)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import edgec
from edgec.errors import RecipeError, UsageError

TINY = {"version": 1, "data": {"source": "digits"},
        "model": {"source": "python", "callable": "tiny_models.py:tiny_cnn", "input_shape": [1, 1, 8, 8]},
        "passes": [{"type": "quantize", "mode": "dynamic"}], "benchmark": {"runs": 3, "warmup": 0}}


def test_compress_shows_its_real_signature_and_docstring():
    """It was (*args, **kwargs) with a docstring pointing elsewhere."""
    params = inspect.signature(edgec.compress).parameters
    assert list(params)[:3] == ["recipe_or_path", "overrides", "output"]
    assert {"force", "resume", "progress", "stage_cache", "base_dir"} <= set(params)
    doc = inspect.getdoc(edgec.compress)
    assert "report.passed" in doc and "RecipeError" in doc and "base_dir" in doc


def test_the_exceptions_and_report_are_exported():
    from edgec import errors, plugins, report

    assert edgec.EdgecError is errors.EdgecError and edgec.PluginError is plugins.PluginError
    assert edgec.Report is report.Report and issubclass(edgec.PluginError, edgec.EdgecError)
    assert {"EdgecError", "RecipeError", "PassError", "Report", "load_recipe"} <= set(dir(edgec))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        edgec.nope  # noqa: B018


def test_a_recipe_object_resolves_paths_against_base_dir(recipe_dir, write_recipe, tmp_path,
                                                        monkeypatch):
    """A Recipe from load_recipe resolved its paths against the current folder, and the message
    called that 'the recipe's folder'."""
    from edgec.api import resolve_recipe

    recipe = edgec.load_recipe(write_recipe())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(RecipeError) as info:
        edgec.compress(recipe, output=tmp_path / "run")
    message = str(info.value)
    assert message.startswith("<Recipe object>: the recipe names files that are not there")
    assert f"relative to base_dir= ({elsewhere}, the current folder: no base_dir= given)" in message
    assert "recipe's folder" not in message and not (tmp_path / "run").exists()
    _, folder, _ = resolve_recipe(recipe, base_dir=recipe_dir)
    assert folder == recipe_dir.resolve()
    with pytest.raises(UsageError, match="base_dir='nope' does not exist"):
        edgec.compress(TINY, base_dir="nope")
    with pytest.raises(UsageError, match=r"base_dir= is for a recipe given as a dict or Recipe"):
        edgec.compress(write_recipe(), base_dir=recipe_dir)


def test_a_dict_recipe_runs_with_base_dir(recipe_dir, tmp_path):
    report = edgec.compress(TINY, output=tmp_path / "run", base_dir=recipe_dir)
    assert report.passed and report.run_dir == str(tmp_path / "run")


@pytest.mark.parametrize(("kwargs", "said"), [
    ({"output": 123}, "output= must be a folder path (a str or pathlib.Path), not an int (123)"),
    ({"force": "no"}, "force= must be True or False, not a str ('no')"),
    ({"stage_cache": "FILE"}, "stage_cache='FILE' is a file; give a folder"),
    ({"stage_cache": "FILE/sub"}, "Cannot create stage_cache= folder 'FILE/sub': 'FILE' is a file"),
    ({"stage_cache": 1.5}, "stage_cache= must be a folder path"),
])
def test_bad_arguments_are_usage_errors_before_any_work(write_recipe, tmp_path, monkeypatch,
                                                        kwargs, said):
    """output=123 raised a raw TypeError; force='no' (truthy) replaced a run; a file as
    stage_cache= failed minutes in, at the benchmark step ('… /measured: Not a directory')."""
    monkeypatch.chdir(tmp_path)
    Path("FILE").write_text("")
    kwargs = {"output": tmp_path / "run", **kwargs}
    with pytest.raises(UsageError) as info:
        edgec.compress(write_recipe(), **kwargs)
    assert said in info.value.message and info.value.exit_code == 2
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


@pytest.mark.parametrize(("recipe", "said"), [
    (42, "The recipe must be the path of a recipe file, a dict or a Recipe (edgec.load_recipe), "
         "not an int (42)"),
    (b"version: 1", "not a bytes"),
    ("version: 1\nmodel: {source: zoo}", "a string of several lines: recipe text"),
])
def test_what_is_not_a_recipe_is_named(recipe, said):
    """compress(42) said '<recipe dict>: the recipe is a int'."""
    with pytest.raises(UsageError) as info:
        edgec.compress(recipe)
    assert said in str(info.value) and "<recipe dict>" not in str(info.value)


def test_override_messages_name_the_overrides_argument(write_recipe):
    with pytest.raises(RecipeError) as info:
        edgec.compress(write_recipe(), ["benchmark.runs"])
    assert info.value.message == (
        "overrides item 'benchmark.runs': expected dotted.path=value, e.g. "
        "overrides=['passes.0.per_channel=false', 'benchmark.runs=500'].")
    with pytest.raises(RecipeError, match=r"^overrides item 'passes.5.mode=static': 'passes.5' is not"):
        edgec.compress(write_recipe(), ["passes.5.mode=static"])
    with pytest.raises(RecipeError, match=r"output.dir.* Pass output= to write elsewhere"):
        edgec.compress(write_recipe(), ["output.dir=/abs"])
