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
Plugins load before the recipe model is built (recipe.py calls ``load_plugins`` at import).
A broken plugin is an error naming the package, never silently skipped: on every call while it is
broken (a process that caught the first error must not go on without the plugin's passes), and
loaded on the next call once fixed. EDGEC_NO_PLUGINS=1 runs without any plugin.
"""

from __future__ import annotations

import importlib
import os
import threading
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from edgec.errors import EXIT_USAGE, EdgecError, ModelLoadError
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


def build_model(spec: ModelSpec, base_dir: Path, cache_dir: Path | None, progress) -> nn.Module:
    """``spec.build``. The built-in sources check what they build; a plugin source's build is
    checked here and named with its package, so its mistakes are not reported as edgec's bugs."""
    if not isinstance(spec, ModelSourceConfig):
        return spec.build(base_dir, cache_dir, progress)
    import torch.nn as nn

    where = (f"model source '{spec.source}' ({type(spec).__name__}.build, "
             f"{_origin('edgec.models', spec.source, 'plugin')})")
    hint = "Fix or update the plugin, or use another model source."
    try:
        model = spec.build(base_dir, cache_dir, progress)
    except EdgecError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{where} raised {type(exc).__name__}: {exc}", hint=hint) from exc
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{where} returned a {type(model).__name__}, not a torch.nn.Module; "
                             "its build must return the model.", hint=hint)
    return model


@dataclass(frozen=True)
class PluginInfo:
    """One loaded entry point and what it added (pass types, model sources or target names)."""

    group: str
    name: str
    value: str
    distribution: str
    version: str
    provides: tuple[str, ...]


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point that could not be loaded on the last attempt, and why."""

    group: str
    name: str
    value: str
    distribution: str
    version: str
    reason: str  # the error without the entry point's description (the listing's columns say it)
    error: PluginError


# The plugin registries (module state like PASSES, filled by load_plugins).
MODEL_SOURCES: dict[str, type[ModelSourceConfig]] = {}
TARGETS: dict[str, Any] = {}  # name → a YAML path, a dict, or a callable returning one of those
LOADED: list[PluginInfo] = []
BROKEN: list[BrokenPlugin] = []  # what the last attempt could not load (`edgec plugins` lists it)
_state = {"done": False, "loading": False}
# Threads running edgec.compress at once: one loads, the others wait for its result. Reentrant:
# a plugin whose import reaches edgec.recipe calls load_plugins again from the same thread.
_lock = threading.RLock()


def load_plugins() -> list[PluginInfo]:
    """Load every installed edgec plugin; returns what was loaded. Raises PluginError while one
    is broken, on every call: the ones that loaded stay loaded, the broken ones are tried again
    (fixed or uninstalled meanwhile, they no longer stop edgec)."""
    with _lock:
        if _state["done"] or _state["loading"]:
            return LOADED
        if os.environ.get(DISABLE_ENV) == "1":
            _state["done"] = True
            return LOADED
        _state["loading"] = True
        try:
            BROKEN[:] = _load_new()
        finally:
            _state["loading"] = False
        if BROKEN:
            first = BROKEN[0].error
            more = (f" ({len(BROKEN) - 1} more installed plugin(s) cannot be loaded either; "
                    "`edgec plugins` lists them.)" if len(BROKEN) > 1 else "")
            raise PluginError(first.message + more, hint=first.hint) from first.__cause__
        _state["done"] = True
        return LOADED


def _load_new() -> list[BrokenPlugin]:
    """Load the entry points not loaded yet; returns the ones that failed."""
    from importlib.metadata import entry_points

    if BROKEN:  # a retry: see packages installed or removed since the last attempt
        importlib.invalidate_caches()
    done = {(info.group, info.name, info.value) for info in LOADED}
    broken = []
    for group in GROUPS:
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            if (group, ep.name, ep.value) in done:
                continue
            try:
                LOADED.append(_load_one(group, ep))
            except PluginError as exc:
                broken.append(BrokenPlugin(group, ep.name, ep.value, *_distribution(ep),
                                           getattr(exc, "reason", exc.message), exc))
    return broken


def _distribution(ep) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    return (dist.metadata["Name"], dist.version) if dist is not None else ("?", "?")


def _load_one(group: str, ep) -> PluginInfo:
    dist_name, version = _distribution(ep)
    where = f"plugin '{ep.name}' ({group} = \"{ep.value}\", from package {dist_name} {version})"
    hint = (f"Fix or uninstall the package (pip uninstall {dist_name}), or set {DISABLE_ENV}=1 "
            "to run edgec without plugins.")
    before = set(PASSES)

    def refused(what: str, reason: str) -> PluginError:
        _forget_passes(before)
        error = PluginError(f"{what} {where}: {reason}", hint=hint)
        error.reason = reason  # for `edgec plugins`, whose columns already say where
        return error

    try:
        obj = ep.load()
    except Exception as exc:
        raise refused("Cannot load", f"{type(exc).__name__}: {exc}") from exc
    try:
        provides = {"edgec.passes": _add_pass, "edgec.models": _add_model_source,
                    "edgec.targets": _add_target}[group](ep.name, obj, before)
    except (TypeError, ValueError) as exc:
        raise refused("Invalid", str(exc)) from None
    return PluginInfo(group, ep.name, ep.value, dist_name, version, provides)


def _forget_passes(before: set[str]) -> None:
    """Undo what a failed plugin module registered before failing: its retry imports it again,
    and the same names would then be 'registered twice'."""
    for name in set(PASSES) - before:
        del PASSES[name]


def broken_plugins_error() -> PluginError | None:
    """What `edgec plugins` raises after listing, when the last attempt left plugins unloaded."""
    if not BROKEN:
        return None
    packages = sorted({b.distribution for b in BROKEN})
    return PluginError(
        f"{len(BROKEN)} installed plugin(s) cannot be loaded (marked above). Every command that "
        "reads a recipe or lists what a recipe may name refuses to run until they are fixed: a "
        "recipe could name what they provide.",
        hint=f"Fix or uninstall {', '.join(packages)} (pip uninstall {' '.join(packages)}), or "
             f"set {DISABLE_ENV}=1 to run edgec without plugins.")


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


def _origin(group: str, name: str, default: str) -> str:
    for info in LOADED:
        if info.group == group and name in info.provides:
            return f"plugin {info.distribution} {info.version}"
    return default


def target_origin(name: str) -> str:
    """'plugin <package> <version>' for a plugin's target profile."""
    return _origin("edgec.targets", name, "plugin")


def model_spec_union():
    """The recipe's ``model:`` type: the built-in sources plus every plugin model source."""
    if not MODEL_SOURCES:
        return ModelSpec
    members = (*_builtin_sources().values(), *MODEL_SOURCES.values())
    return Annotated[Union[members], Field(discriminator="source")]  # noqa: UP007


def pass_origin(pass_name: str) -> str:
    """'built-in', or the plugin package that provides the pass."""
    return _origin("edgec.passes", pass_name, "built-in")
