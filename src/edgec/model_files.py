"""Reading model files: state dicts (``weights_only`` unless the user trusts the pickle), whole
pickled modules, and the user's Python callables. Each failure is a ModelLoadError that names the
file and the fix.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgec.errors import ModelLoadError, exit_call, not_a_file

if TYPE_CHECKING:
    import torch.nn as nn


def load_weights(model: nn.Module, path: Path, what: str, *, trust_pickle: bool = False) -> None:
    """Load a state dict from ``path`` into ``model`` (shared by every source that takes weights).

    Accepts a raw state dict, ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers, a DataParallel
    ``module.`` prefix, and (with ``trust_pickle``) a whole pickled module's weights.
    """
    import torch
    import torch.nn as nn

    state = _torch_load(path, what, weights_only=not trust_pickle)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), (dict, nn.Module)):
            state = state[key]
            break
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = f"a dict with keys {list(state)[:8]}" if isinstance(state, dict) else type(state).__name__
        raise ModelLoadError(f"'{path}' ({what}) does not hold a state dict of tensors but {found}. "
                             "Save it with torch.save(model.state_dict(), path).")
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel / DDP
        state = {k.removeprefix("module."): v for k, v in state.items()}
    expected = model.state_dict()
    # BatchNorm fills in a missing num_batches_tracked itself (older checkpoints lack it)
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k}: file {list(state[k].shape)} vs model {list(expected[k].shape)}"
             for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:5])}{', …' if len(keys) > 5 else ''}"
                 for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                     ("shape mismatches", wrong)) if keys]
        raise ModelLoadError(f"The state dict in '{path}' does not fit the model: {'; '.join(parts)}. "
                             "Check that the architecture (name, num_classes, kwargs) is the one the "
                             "weights were saved from.")
    model.load_state_dict(state, strict=False)


def _torch_load(path: Path, what: str, *, weights_only: bool, extra_sys_path: Path | None = None):
    import torch

    if not path.is_file():
        kind = not_a_file(path)
        raise ModelLoadError(f"Weights file '{path}' ({what}) {kind}. Paths are relative to the "
                             "recipe's folder.")
    try:
        with _sys_path(extra_sys_path):  # a pickled model's classes may live beside the recipe
            return torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as exc:
        # the safe loader says "Unsupported global" for a class it will not build (a pickled
        # model); garbage bytes fail in the same loader with e.g. "Unsupported operand"
        if weights_only and "Unsupported global" in str(exc):
            opt_in = ("set model.trust_pickle: true" if what == "model.path" else
                      "load it with source: checkpoint and trust_pickle: true")
            raise ModelLoadError(
                f"'{path}' ({what}) holds Python objects beyond tensors (e.g. a whole pickled model "
                "or training state). Loading those means unpickling, which runs code stored in the "
                f"file, so edgec only does it on request: {opt_in} if you trust the file's origin, "
                "or better, save a state dict (torch.save(model.state_dict(), path)) and load it "
                "with an architecture."
            ) from None
        raise _unreadable(path, what, exc) from None
    except Exception as exc:
        raise _unreadable(path, what, exc) from None


def _unreadable(path: Path, what: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(f"'{path}' ({what}) is not a readable PyTorch checkpoint: it is corrupt "
                          f"or truncated, or not a file saved with torch.save ({_loader_said(exc)}). "
                          "Save it again with torch.save(model.state_dict(), path).")


def _loader_said(exc: Exception) -> str:
    """What torch.load's error says about the bytes themselves. The safe loader wraps any failure,
    garbage bytes included, in advice to retry with weights_only=False (unsafe, and useless for a
    file that is no checkpoint): only the unpickler's own reason after that advice is kept."""
    text = str(exc).strip()
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].strip()
    # the first sentence: torch's later ones repeat advice ("file a bug", "see the docs")
    reason = (text.splitlines() or [""])[0].split(". ")[0].rstrip(".")[:200]
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__


def whole_model(path: Path, base_dir: Path, trust_pickle: bool) -> nn.Module:
    import torch.nn as nn

    obj = _torch_load(path, "model.path", weights_only=not trust_pickle, extra_sys_path=base_dir)
    if isinstance(obj, dict) and isinstance(obj.get("model"), nn.Module):
        obj = obj["model"]
    if isinstance(obj, nn.Module):
        return obj
    what = "a state dict (weights only)" if isinstance(obj, dict) else f"a {type(obj).__name__}"
    raise ModelLoadError(
        f"'{path}' holds {what}, not a whole model. Add model.architecture to say which network "
        "the weights belong to, e.g. architecture: {source: torchvision, name: resnet18, "
        "num_classes: 10} or {source: python, callable: 'net.py:build'}."
    )


def callable_file(ref: str) -> str | None:
    """The file part of a 'path/file.py:fn' reference, None for 'package.module:fn'."""
    module_ref = ref.rpartition(":")[0]
    is_file = module_ref.endswith(".py") or "/" in module_ref or "\\" in module_ref
    return module_ref if is_file else None


def import_callable(ref: str, base_dir: Path) -> Callable[..., Any]:
    """'pkg.module:fn' (importable, or under base_dir) or 'path/file.py:fn' (relative to base_dir)."""
    import functools
    import hashlib
    import importlib
    import importlib.util

    module_ref, _, attr = ref.rpartition(":")
    try:
        if callable_file(ref):
            file = (base_dir / module_ref).resolve()
            if not file.is_file():
                raise ModelLoadError(f"model.callable '{ref}': file '{file}' does not exist. The path "
                                     "is relative to the recipe's folder.")
            # a name unique to the file, so two recipes' model.py files never shadow each other
            name = f"edgec_user_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
            spec = importlib.util.spec_from_file_location(name, file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # pickling and dataclasses look modules up here
            try:
                with _sys_path(file.parent):  # so the file can import its neighbours
                    spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
        else:
            with _sys_path(base_dir):
                module = importlib.import_module(module_ref)
    except ModelLoadError:
        raise
    except SystemExit as exc:  # a script's top level, run on import: it would have ended edgec
        raise ModelLoadError(f"model.callable '{ref}': importing '{module_ref}' called "
                             f"{exit_call(exc)}.", hint="Keep what runs as a script under "
                             "`if __name__ == '__main__':`, so that importing it only defines the "
                             "model.") from exc
    except Exception as exc:  # SyntaxError, ImportError, or whatever the module raises at import
        raise ModelLoadError(f"model.callable '{ref}': importing '{module_ref}' failed with "
                             f"{type(exc).__name__}: {exc}. Module paths resolve against the "
                             f"recipe's folder ({base_dir}).") from exc
    try:
        target = functools.reduce(getattr, attr.split("."), module)
    except AttributeError:
        defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        raise ModelLoadError(f"model.callable '{ref}': '{module_ref}' has no '{attr}'. It defines: "
                             f"{', '.join(defined) or 'no public callables'}.") from None
    if not callable(target):
        raise ModelLoadError(f"model.callable '{ref}' is a {type(target).__name__}, not a function "
                             "or class.")
    return target


@contextmanager
def _sys_path(folder: Path | None) -> Iterator[None]:
    """Put ``folder`` first on sys.path for the duration (user modules beside the recipe)."""
    if folder is None:
        yield
        return
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)
