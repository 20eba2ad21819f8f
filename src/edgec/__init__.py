"""edgec: compress PyTorch models for edge devices and measure the result honestly.

The public API is ``edgec.compress(recipe_or_path, overrides=..., output=...) -> Report``; its
errors are ``edgec.EdgecError`` subclasses. Importing edgec is cheap: torch and onnxruntime load
only when work starts, and the names below other than ``compress`` load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgec.api import compress  # light: api.py imports its heavy parts inside compress

__version__ = "0.1.0"

__all__ = [
    "BenchmarkError",
    "BudgetError",
    "DataError",
    "EdgecError",
    "ExportError",
    "ModelLoadError",
    "OutputError",
    "PassError",
    "PluginError",
    "Recipe",
    "RecipeError",
    "Report",
    "UsageError",
    "__version__",
    "compress",
    "load_recipe",
]
# name → module, imported on first access (PEP 562): edgec.plugins (PluginError) and edgec.recipe
# pull in pydantic, every pass config and the installed plugins (0.25 s and more), which
# `import edgec` (8 ms) should not pay for.
_LAZY = {
    **dict.fromkeys(("EdgecError", "RecipeError", "UsageError", "ModelLoadError", "DataError",
                     "PassError", "ExportError", "BenchmarkError", "OutputError", "BudgetError"),
                    "edgec.errors"),
    "PluginError": "edgec.plugins",
    "Report": "edgec.report",
    "load_recipe": "edgec.recipe",
    "Recipe": "edgec.recipe",
}

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ provides them
    from edgec.errors import (
        BenchmarkError,
        BudgetError,
        DataError,
        EdgecError,
        ExportError,
        ModelLoadError,
        OutputError,
        PassError,
        RecipeError,
        UsageError,
    )
    from edgec.plugins import PluginError
    from edgec.recipe import Recipe, load_recipe
    from edgec.report import Report


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'edgec' has no attribute '{name}'")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # next time without this hook
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
