"""Third-party passes, model sources and target profiles, discovered through Python entry points.

A package declares what it adds in its pyproject.toml (see examples/plugin/):

    [project.entry-points."edgec.passes"]
    clip = "edgec_clip.passes:ClipPass"          # a Pass subclass, or a module that registers on import
    [project.entry-points."edgec.models"]
    tiny = "edgec_clip.models:TinyModelConfig"   # a ModelSourceConfig subclass, source: Literal["tiny"]
    [project.entry-points."edgec.targets"]
    board = "edgec_clip.targets:BOARD"           # a target profile: a YAML path, a dict, or a callable
                                                 # (used as `target: board`, after the built-ins)

Plugin passes go into the same registry as the built-ins and plugin model sources into the same
union, so both join recipe validation, `edgec schema` and `edgec passes` with no special case.
Plugins load once, before the recipe model is built (recipe.py calls ``load_plugins`` at import).
A broken plugin is an error naming the package, never silently skipped; EDGEC_NO_PLUGINS=1 runs
without any plugin.
"""

from __future__ import annotations

import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from edgec.errors import EXIT_USAGE, EdgecError
from edgec.models import ModelSpec, _InputFields
from edgec.passes.base import Pass
from edgec.passes.registry import PASSES, register_pass

if TYPE_CHECKING:
    import torch.nn as nn

    from edgec.progress import Progress

GROUPS = ("edgec.passes", "edgec.models", "edgec.targets")
DISABLE_ENV = "EDGEC_NO_PLUGINS"


class PluginError(EdgecError):
    """An installed plugin could not be loaded or clashes with edgec or another plugin."""

    exit_code = EXIT_USAGE


class ModelSourceConfig(_InputFields):
    """Base of a plugin model source: add ``source: Literal["name"]``, your fields and ``build``.

    ``input_shape`` and ``dtype`` are inherited, so a plugin model is exported, checked and
    benchmarked exactly like a built-in one.
    """

    source: str

    def build(self, base_dir: Path, cache_dir: Path | None, progress: Progress | None) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__}.build must return a torch.nn.Module")


@dataclass(frozen=True)
class PluginInfo:
    """One loaded entry point and what it added (pass types, model sources or target names)."""

    group: str
    name: str
    value: str
    distribution: str
    version: str
    provides: tuple[str, ...]


# The plugin registries (module state like PASSES, and filled once by load_plugins).
MODEL_SOURCES: dict[str, type[ModelSourceConfig]] = {}
TARGETS: dict[str, Any] = {}  # name → a YAML path, a dict, or a callable returning one of those
LOADED: list[PluginInfo] = []
_state = {"done": False}


def load_plugins() -> list[PluginInfo]:
    """Load every installed edgec plugin once; returns what was loaded. Raises PluginError."""
    if _state["done"]:
        return LOADED
    _state["done"] = True
    if os.environ.get(DISABLE_ENV) == "1":
        return LOADED
    from importlib.metadata import entry_points

    for group in GROUPS:
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            LOADED.append(_load_one(group, ep))
    return LOADED


def _load_one(group: str, ep) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    dist_name = dist.metadata["Name"] if dist is not None else "?"
    version = dist.version if dist is not None else "?"
    where = f"plugin '{ep.name}' ({group} = \"{ep.value}\", from package {dist_name} {version})"
    hint = (f"Fix or uninstall the package (pip uninstall {dist_name}), or set {DISABLE_ENV}=1 "
            "to run edgec without plugins.")
    before = set(PASSES)
    try:
        obj = ep.load()
    except Exception as exc:
        raise PluginError(f"Cannot load {where}: {type(exc).__name__}: {exc}", hint=hint) from exc
    try:
        provides = {"edgec.passes": _add_pass, "edgec.models": _add_model_source,
                    "edgec.targets": _add_target}[group](ep.name, obj, before)
    except (TypeError, ValueError) as exc:
        raise PluginError(f"Invalid {where}: {exc}", hint=hint) from None
    return PluginInfo(group, ep.name, ep.value, dist_name, version, provides)


def _add_pass(name: str, obj: Any, before: set[str]) -> tuple[str, ...]:
    if isinstance(obj, type) and issubclass(obj, Pass):
        if PASSES.get(getattr(obj, "name", None)) is not obj:
            register_pass(obj)  # raises TypeError on a bad tag or a name already taken
        return (obj.name,)
    added = tuple(sorted(set(PASSES) - before))
    if isinstance(obj, types.ModuleType) and added:
        return added  # the module registered its passes with @register_pass on import
    raise TypeError(f"it points to a {type(obj).__name__}, which is not a Pass subclass and "
                    "registered no pass; point it at the Pass class")


def _builtin_sources() -> dict[str, type]:
    union = typing.get_args(ModelSpec)[0]
    return {typing.get_args(c.model_fields["source"].annotation)[0]: c for c in typing.get_args(union)}


def _add_model_source(name: str, obj: Any, before: set[str]) -> tuple[str, ...]:
    if not (isinstance(obj, type) and issubclass(obj, ModelSourceConfig)):
        raise TypeError(f"it points to {obj!r}, not a subclass of edgec.plugins.ModelSourceConfig")
    tag = typing.get_args(obj.model_fields["source"].annotation)
    if len(tag) != 1 or not isinstance(tag[0], str):
        raise TypeError(f"{obj.__name__}.source must be Literal['<name>'], got {tag or 'str'}")
    source = tag[0]
    taken = _builtin_sources().get(source) or MODEL_SOURCES.get(source)
    if taken is not None and taken is not obj:
        raise ValueError(f"model source '{source}' is already provided by {taken.__name__}")
    MODEL_SOURCES[source] = obj
    return (source,)


def _add_target(name: str, obj: Any, before: set[str]) -> tuple[str, ...]:
    if not (isinstance(obj, (str, Path, dict)) or callable(obj)):
        raise TypeError(f"a target must be a YAML path, a dict or a callable, not {type(obj).__name__}")
    from edgec.targets import builtin_targets

    if name in builtin_targets():  # same rule as passes: a plugin adds, never silently replaces
        raise ValueError(f"target '{name}' is a built-in profile; give the plugin's another name")
    if name in TARGETS:
        raise ValueError(f"target '{name}' is provided twice")
    TARGETS[name] = obj
    return (name,)


def plugin_target(name: str) -> Path | dict | None:
    """A plugin's target profile by name: a YAML file path or a profile dict; None if unknown."""
    obj = TARGETS.get(name)
    if obj is not None and callable(obj):
        obj = obj()
    return Path(obj) if isinstance(obj, str) else obj


def target_origin(name: str) -> str:
    """'plugin <package> <version>' for a plugin's target profile."""
    for info in LOADED:
        if info.group == "edgec.targets" and name in info.provides:
            return f"plugin {info.distribution} {info.version}"
    return "plugin"


def model_spec_union():
    """The recipe's ``model:`` type: the built-in sources plus every plugin model source."""
    if not MODEL_SOURCES:
        return ModelSpec
    members = (*_builtin_sources().values(), *MODEL_SOURCES.values())
    return Annotated[Union[members], Field(discriminator="source")]  # noqa: UP007


def pass_origin(pass_name: str) -> str:
    """'built-in', or the plugin package that provides the pass."""
    for info in LOADED:
        if info.group == "edgec.passes" and pass_name in info.provides:
            return f"plugin {info.distribution} {info.version}"
    return "built-in"
