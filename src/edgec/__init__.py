"""edgec: compress PyTorch models for edge devices and measure the result honestly.

The public API is ``edgec.compress(recipe_or_path, overrides=..., output=...) -> Report``.
Importing edgec is cheap: torch and onnxruntime load only when work starts.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "compress"]


def compress(*args, **kwargs):
    """Run a recipe end to end; see ``edgec.api.compress``."""
    from edgec.api import compress as _compress

    return _compress(*args, **kwargs)
