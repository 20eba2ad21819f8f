"""torchvision's model names, for recipe validation, without importing torchvision.

``torchvision.models.list_models()`` imports torchvision and torch (2.4 s here): too slow for
``edgec validate`` and a sweep's plan, which must stay instant, yet a misspelt ``model.name`` found
only when the model is built costs a failed run (exit 3) instead of a refused recipe (exit 2).
torchvision registers each builder with ``@register_model()``; reading those decorators from its
source files takes milliseconds. A name found there is accepted; any other is looked up in
torchvision itself, so a scan that misses a name (a new torchvision) costs time, never a refusal.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from pathlib import Path

# @register_model() or @register_model(name="quantized_resnet18"), then perhaps other decorators
# (torchvision's handle_legacy_interface spans lines), then the builder's def
_REGISTERED = re.compile(r"@register_model\((?:name\s*=\s*)?(?:['\"](\w+)['\"])?\)\s*\n"
                         r"(?:\s*@.*\n(?:[^\n]*\n)*?)?\s*def\s+(\w+)")


def unknown_model_message(name: str) -> str | None:
    """None when torchvision has a model ``name`` (or is not installed: building it says so);
    otherwise the message naming it, with close matches."""
    if name in _scanned_names():
        return None
    try:
        names = _listed_names()
    except ImportError:
        return None
    if name in names:
        return None
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    return (f"torchvision has no model '{name}'.{hint} torchvision.models.list_models() lists "
            "them all")


@lru_cache(maxsize=1)
def _scanned_names() -> frozenset[str]:
    import importlib.util

    try:
        spec = importlib.util.find_spec("torchvision")  # finds the package without running it
    except (ImportError, ValueError):
        return frozenset()
    found: set[str] = set()
    for root in (spec.submodule_search_locations or []) if spec else []:
        for path in sorted((Path(root) / "models").rglob("*.py")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            found.update(m.group(1) or m.group(2) for m in _REGISTERED.finditer(text))
    return frozenset(found)


@lru_cache(maxsize=1)
def _listed_names() -> tuple[str, ...]:
    import torchvision.models as tvm

    return tuple(tvm.list_models())
