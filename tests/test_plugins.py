"""Plugins by entry point: examples/plugin installed with pip into a temporary folder, then used
through the CLI in a subprocess (a fresh interpreter, as a user would see it); plus the loader's
error handling with fake entry points, in process."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import edgec
from edgec import plugins
from edgec.passes import PASSES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugin"
SRC = Path(edgec.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The example plugin pip-installed (no deps, no build isolation, offline) into a folder."""
    tmp = tmp_path_factory.mktemp("plugin")
    shutil.copytree(EXAMPLE, tmp / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "--target", str(target), str(tmp / "src")],
        check=True, capture_output=True, text=True,
    )
    assert (target / "edgec_example_plugin").is_dir()
    return target


def edgec_cli(site: Path | None, *args, cwd=None, extra_env=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != plugins.DISABLE_ENV}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (site, SRC) if p)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "edgec", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd)


def test_plugin_pass_is_listed_with_its_fields(site):
    result = edgec_cli(site, "passes", "--json")
    assert result.returncode == 0, result.stderr
    docs = {d["name"]: d for d in json.loads(result.stdout)}
    assert {"quantize", "prune", "finetune", "clip_weights"} <= set(docs)
    clip = docs["clip_weights"]
    assert clip["origin"] == "plugin edgec-example-plugin 0.1.0" and clip["stage"] == "torch"
    assert docs["quantize"]["origin"] == "built-in"
    fields = {f["name"]: f for f in clip["fields"]}
    assert fields["percentile"]["default"] == "99.9"
    assert "> 50" in fields["percentile"]["type"]
    assert "percentile of |w|" in fields["percentile"]["description"]


def test_plugin_configs_join_schema_and_validation(site, tmp_path):
    schema = json.loads(edgec_cli(site, "schema").stdout)
    assert "clip_weights" in schema["properties"]["passes"]["items"]["discriminator"]["mapping"]
    assert "mlp" in schema["properties"]["model"]["discriminator"]["mapping"]

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nmodel: {source: mlp, hiden: [8], input_shape: [1, 1, 8, 8]}\n"
                   "data: {source: digits}\npasses:\n  - {type: clip_weights, percentile: 20}\n")
    result = edgec_cli(site, "validate", bad)
    assert result.returncode == 2
    assert "did you mean 'hidden'" in result.stderr and "passes[0].percentile" in result.stderr
    assert edgec_cli(site, "validate", EXAMPLE / "recipe.yaml").returncode == 0
    # without the plugin the same recipe is an unknown pass type, not a crash
    result = edgec_cli(None, "validate", EXAMPLE / "recipe.yaml")
    assert result.returncode == 2 and "clip_weights" in result.stderr


def test_plugin_recipe_runs_end_to_end(site, tmp_path):
    out = tmp_path / "run"
    result = edgec_cli(site, "compress", EXAMPLE / "recipe.yaml", "-o", out, "-q", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    clip, quant = report["passes"]
    assert clip["type"] == "clip_weights" and clip["details"]["clipped_weights"] > 0
    assert "clipped" in clip["notes"][0] and quant["type"] == "quantize"
    assert report["recipe"]["model"]["source"] == "mlp"


def test_plugins_command_lists_every_group(site):
    result = edgec_cli(site, "plugins")
    assert result.returncode == 0, result.stderr
    for text in ("edgec.passes", "edgec.models", "edgec.targets", "example_board", "edgec-example-plugin"):
        assert text in result.stdout
    code = ("from edgec.recipe import Recipe\nfrom edgec.plugins import plugin_target\n"
            "print(plugin_target('example_board').read_text())")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (site, SRC)))}
    text = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    assert "flash_kb" in text


def test_plugin_target_profile_is_usable_by_name(site, tmp_path):
    listed = edgec_cli(site, "targets")
    assert listed.returncode == 0, listed.stderr
    assert "example_board" in listed.stdout and "plugin edgec-example-plugin 0.1.0" in listed.stdout
    assert "max_flash_kb 2048, max_ram_kb 1024" in listed.stdout
    recipe = tmp_path / "r.yaml"
    recipe.write_text("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1, 1, 8, 8]}\n"
                      "target: example_board\n")
    assert edgec_cli(site, "validate", recipe).returncode == 0
    without = edgec_cli(None, "validate", recipe)  # no plugin: an unknown name, exit 2
    assert without.returncode == 2 and "unknown target 'example_board'" in without.stderr


def test_broken_plugin_is_a_clean_error_naming_the_package(tmp_path):
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[edgec.passes]\nbroken = no_such_module:Pass\n")
    result = edgec_cli(tmp_path, "validate", EXAMPLE / "recipe.yaml")
    assert result.returncode == 2
    assert "broken-plugin 1.0" in result.stderr and "pip uninstall broken-plugin" in result.stderr
    assert "Traceback" not in result.stderr
    ok = edgec_cli(tmp_path, "passes", extra_env={plugins.DISABLE_ENV: "1"})
    assert ok.returncode == 0 and "quantize" in ok.stdout


class _FakeEntryPoint:
    def __init__(self, name, group, obj):
        self.name, self.group, self.value, self.obj, self.dist = name, group, f"fake:{name}", obj, None

    def load(self):
        if isinstance(self.obj, Exception):
            raise self.obj
        return self.obj


@pytest.fixture
def fake_entry_points(monkeypatch):
    """fake_entry_points(*eps) makes load_plugins see only these; registries are restored after."""
    import importlib.metadata

    saved = (dict(PASSES), dict(plugins.MODEL_SOURCES), dict(plugins.TARGETS), list(plugins.LOADED),
             list(plugins.BROKEN))

    def install(*eps):
        monkeypatch.setattr(importlib.metadata, "entry_points",
                            lambda group: [e for e in eps if e.group == group])
        monkeypatch.setitem(plugins._state, "done", False)
        plugins.LOADED.clear()  # as in a fresh process: load_plugins skips what is loaded
        monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)

    yield install
    for registry, old in zip((PASSES, plugins.MODEL_SOURCES, plugins.TARGETS), saved[:3], strict=True):
        registry.clear()
        registry.update(old)
    plugins.LOADED[:] = saved[3]
    plugins.BROKEN[:] = saved[4]


def test_plugin_cannot_replace_a_builtin_pass(fake_entry_points):
    from typing import Literal

    from edgec.passes import OnnxPass, PassConfig

    class FakeQuantizeConfig(PassConfig):
        type: Literal["quantize"] = "quantize"

    class FakeQuantize(OnnxPass):
        name = "quantize"
        Config = FakeQuantizeConfig

        def apply(self, src, dst, ctx):
            pass

    builtin = PASSES["quantize"]
    fake_entry_points(_FakeEntryPoint("q", "edgec.passes", FakeQuantize))
    with pytest.raises(plugins.PluginError, match="registered twice"):
        plugins.load_plugins()
    assert PASSES["quantize"] is builtin


@pytest.mark.parametrize(("group", "obj", "message"), [
    ("edgec.passes", 42, "not a Pass subclass"),
    ("edgec.passes", ImportError("no module named x"), "Cannot load plugin 'bad'"),
    ("edgec.models", dict, "not a subclass of edgec.plugins.ModelSourceConfig"),
    ("edgec.targets", 3.5, "a target must be"),
])
def test_invalid_entry_points_are_refused(fake_entry_points, group, obj, message):
    fake_entry_points(_FakeEntryPoint("bad", group, obj))
    with pytest.raises(plugins.PluginError, match=message) as info:
        plugins.load_plugins()
    assert info.value.exit_code == 2 and plugins.DISABLE_ENV in str(info.value)


def test_model_source_plugin_joins_the_model_union(fake_entry_points):
    import typing
    from typing import Literal

    class ToyConfig(plugins.ModelSourceConfig):
        source: Literal["toy"]

    fake_entry_points(_FakeEntryPoint("toy", "edgec.models", ToyConfig),
                      _FakeEntryPoint("board", "edgec.targets", {"flash_kb": 1}))
    (models_info, targets_info) = plugins.load_plugins()
    assert models_info.provides == ("toy",) and targets_info.provides == ("board",)
    union = typing.get_args(typing.get_args(plugins.model_spec_union())[0])
    assert ToyConfig in union and len(union) == 5
    assert plugins.plugin_target("board") == {"flash_kb": 1}


def test_plugin_targets_follow_the_builtins(fake_entry_points):
    from edgec.recipe import validate_recipe
    from edgec.targets import load_target, target_names

    fake_entry_points(_FakeEntryPoint("board", "edgec.targets", lambda: {"flash_kb": 8, "ram_kb": 2}))
    plugins.load_plugins()
    assert target_names()["board"].startswith("plugin") and target_names()["mcu"] == "built-in"
    board = load_target("board")  # a mapping from a callable; its name defaults to the entry point's
    assert board.name == "board" and board.budgets() == {"max_flash_kb": 8, "max_ram_kb": 2}
    raw = {"version": 1, "model": {"source": "zoo", "name": "digits_cnn", "input_shape": [1, 1, 8, 8]}}
    assert validate_recipe({**raw, "target": "board"}).target == "board"


def test_plugin_cannot_replace_a_builtin_target(fake_entry_points):
    fake_entry_points(_FakeEntryPoint("mcu", "edgec.targets", {"flash_kb": 1}))
    with pytest.raises(plugins.PluginError, match="'mcu' is a built-in profile"):
        plugins.load_plugins()


@pytest.mark.parametrize(("obj", "message"), [
    (lambda: 1 / 0, "could not be built: ZeroDivisionError"),
    (lambda: {"flash_kb": -1}, "flash_kb: must be > 0"),
    ("/no/such/board.yaml", "does not exist"),
])
def test_broken_plugin_target_is_a_clean_error(fake_entry_points, obj, message):
    from edgec.errors import EdgecError
    from edgec.targets import load_target

    fake_entry_points(_FakeEntryPoint("board", "edgec.targets", obj))
    plugins.load_plugins()
    with pytest.raises(EdgecError, match=message) as info:
        load_target("board")
    assert info.value.exit_code == 2 and "board" in str(info.value)


def _broken_dist(folder: Path) -> Path:
    """A package whose edgec.passes entry point cannot be imported (no pip needed)."""
    dist = folder / "broken_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[edgec.passes]\nbroken = no_such_module:Pass\n")
    return dist


def test_broken_plugin_fails_every_call_until_removed_then_loads(tmp_path):
    """The first call raised PluginError, the later ones ran silently without any plugin (and
    never loaded them again): a recipe's plugin pass then was an 'unknown type'."""
    dist = _broken_dist(tmp_path / "site")
    code = f"""
import shutil
from edgec.plugins import PluginError
for attempt in range(2):
    try:
        from edgec.recipe import validate_recipe
        print("loaded")
    except PluginError as exc:
        print("PluginError", "broken-plugin 1.0" in exc.message)
shutil.rmtree({str(dist)!r})  # pip uninstall broken-plugin
from edgec.recipe import validate_recipe
from edgec.passes import PASSES
print("fixed", "quantize" in PASSES)
"""
    env = {k: v for k, v in os.environ.items() if k != plugins.DISABLE_ENV}
    env["PYTHONPATH"] = os.pathsep.join(map(str, (tmp_path / "site", SRC)))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.split("\n")[:3] == ["PluginError True", "PluginError True", "fixed True"], \
        result.stdout + result.stderr


def test_plugins_command_lists_a_broken_plugin_with_the_good_ones(site, tmp_path):
    _broken_dist(tmp_path)
    result = edgec_cli(site, "plugins", extra_env={
        "PYTHONPATH": os.pathsep.join(map(str, (site, tmp_path, SRC))), "COLUMNS": "200"})
    assert result.returncode == 2, result.stderr
    assert "clip_weights" in result.stdout and "edgec-example-plugin" in result.stdout
    assert "no_such_module:Pass" in result.stdout and "broken-plugin 1.0" in result.stdout
    assert "cannot load: ModuleNotFoundError: No module named 'no_such_module'" in result.stdout
    assert "1 installed plugin(s) cannot be loaded" in result.stderr
    assert "pip uninstall broken-plugin" in result.stderr and "Traceback" not in result.stderr


def test_a_module_that_failed_halfway_is_retried_cleanly(fake_entry_points):
    """A plugin module that registered a pass and then failed is imported again on the retry;
    what it registered the first time must not make that 'registered twice'."""
    import types
    from typing import Literal

    from edgec.passes import PassConfig, TorchPass

    class HalfConfig(PassConfig):
        type: Literal["half"] = "half"

    class _HalfModule(_FakeEntryPoint):
        fail = True

        def load(self):  # each import defines (and registers) the class anew, as Python would
            from edgec.passes import register_pass

            register_pass(type("Half", (TorchPass,), {"name": "half", "Config": HalfConfig,
                                                      "apply": lambda self, model, ctx: model}))
            if self.fail:
                raise ImportError("no module named later_dependency")
            return types.ModuleType("half_plugin")

    ep = _HalfModule("half", "edgec.passes", None)
    fake_entry_points(ep)
    for _ in range(2):
        with pytest.raises(plugins.PluginError, match="later_dependency"):
            plugins.load_plugins()
        assert "half" not in PASSES
    ep.fail = False  # the dependency got installed
    (info,) = plugins.load_plugins()
    assert info.provides == ("half",) and "half" in PASSES and plugins.BROKEN == []


def _plugin_pass(fake_entry_points, returns):
    from typing import Literal

    from edgec.passes import PassConfig, TorchPass

    class ForgetfulConfig(PassConfig):
        type: Literal["forgetful"] = "forgetful"

    class Forgetful(TorchPass):
        name = "forgetful"
        Config = ForgetfulConfig

        def apply(self, model, ctx):
            return returns

    fake_entry_points(_FakeEntryPoint("forgetful", "edgec.passes", Forgetful))
    plugins.load_plugins()
    return Forgetful(ForgetfulConfig())


@pytest.mark.parametrize(("returns", "said"), [(None, "returned None"), ("model", "returned a str")])
def test_plugin_pass_that_returns_no_model_is_named(fake_entry_points, returns, said):
    """It failed later as "internal error: AttributeError: 'NoneType' object has no attribute
    'parameters' … This is a bug in edgec"."""
    import torch.nn as nn

    from edgec.errors import PassError
    from edgec.passes.base import run_torch_pass

    instance = _plugin_pass(fake_entry_points, returns)
    with pytest.raises(PassError) as info:
        run_torch_pass(instance, nn.Linear(2, 2), ctx=None)
    message = str(info.value)
    assert "Pass 'forgetful' (forgetful, plugin" in message and said in message
    assert "not a torch.nn.Module" in message and "Fix or update the plugin" in message


def test_plugin_model_source_that_builds_no_module_is_named(fake_entry_points):
    from typing import Literal

    from edgec.errors import ModelLoadError
    from edgec.models import load_model

    class WeirdConfig(plugins.ModelSourceConfig):
        source: Literal["weird"]

        def build(self, base_dir, cache_dir, progress):
            return "not a module"

    class FailingConfig(plugins.ModelSourceConfig):
        source: Literal["failing"]

        def build(self, base_dir, cache_dir, progress):
            raise KeyError("hidden_size")

    fake_entry_points(_FakeEntryPoint("weird", "edgec.models", WeirdConfig),
                      _FakeEntryPoint("failing", "edgec.models", FailingConfig))
    plugins.load_plugins()
    with pytest.raises(ModelLoadError, match=r"model source 'weird' \(WeirdConfig.build, plugin "
                       r".*\) returned a str, not a torch.nn.Module"):
        load_model(WeirdConfig(source="weird", input_shape=[1, 4]), Path("."))
    with pytest.raises(ModelLoadError, match=r"model source 'failing' .* raised KeyError"):
        load_model(FailingConfig(source="failing", input_shape=[1, 4]), Path("."))
