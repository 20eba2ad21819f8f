"""Exported zoo baselines kept across runs: a run that only changes ONNX passes never imports torch.

Importing torch takes 2.4-3.4 s here, and in a run of a zoo model with only ONNX passes (the
quickstart, or a sweep over quantize settings) torch does nothing but export a model that has not
changed since the last run. A zoo model's identity is a file edgec owns: its trained weights in
the zoo cache, whose architecture is edgec's own code (versioned with edgec). So its export is a
function of that file's bytes, the export settings, the input shape and the library versions; the
parity numbers the report shows also depend on the samples they were computed on, which the key
hashes too. Other model sources are not kept: a Python callable's code, or what a checkpoint's
pickle imports, can change without any file the key could hash.

Entries live in ``<cache>/exports/<key>/`` (``$EDGEC_CACHE_DIR``, else ``~/.cache/edgec``), shared
by every run of this user, written and locked like a sweep's shared stage (stage_cache.py): a
parallel run with the same key waits for the first one's export, then reuses it. Deleting the
folder only costs the next run its export.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgec.data import DataSplits
    from edgec.recipe import Recipe


def eligible(recipe: Recipe, torch_configs: list) -> bool:
    """Whether this run's torch stage can come from the kept exports: a trained zoo model (already
    in the zoo cache), no torch passes, no memory limit to check on the loaded module."""
    from edgec.zoo import zoo_cache_path

    spec = recipe.model
    return (spec.source == "zoo" and not torch_configs and spec.max_memory_mb is None
            and zoo_cache_path(spec.name).is_file())


def torch_free(recipe: Recipe) -> bool:
    """Whether a run of ``recipe`` may never import torch (once its export is kept)."""
    from edgec.passes import PASSES

    return eligible(recipe, [c for c in recipe.passes if PASSES[c.type].stage == "torch"])


# The built-in passes that run on the ONNX model (PASSES[...].stage == "onnx"; a test keeps this in
# step). Only for likely_torch_free, which must decide before the registry is imported.
ONNX_PASSES = frozenset({"quantize"})


def likely_torch_free(path: Path, overrides: tuple[str, ...] = ()) -> bool:
    """A guess at ``torch_free`` from the recipe's raw YAML, in milliseconds, for a sweep that
    starts its workers' fork server before it has validated the recipe (a plugin's ONNX pass or a
    grid that changes the model makes it wrong, which costs time, never results)."""
    from edgec.recipe_yaml import peek_recipe
    from edgec.zoo import ZOO_NAMES, zoo_cache_path

    raw = peek_recipe(str(path), tuple(overrides))
    try:
        model, passes = raw["model"], raw.get("passes") or []
        return (model.get("source") == "zoo" and model.get("name") in ZOO_NAMES
                and model.get("max_memory_mb") is None
                and zoo_cache_path(model["name"]).is_file()
                and all(p.get("type") in ONNX_PASSES for p in passes))
    except Exception:  # an invalid recipe: planning will say why; preload torch meanwhile
        return False


def exports_root() -> Path:
    from edgec.zoo import cache_root

    return cache_root() / "exports"


def claim_kept_export(recipe: Recipe, data: DataSplits, progress):
    """Claim this model's kept export (a StageCache claim: a hit to reuse, or a miss this run fills
    in), or None when the cache folder cannot be written: the run then exports without keeping."""
    import contextlib
    import os

    from edgec.stage_cache import StageCache

    root = exports_root()
    with contextlib.suppress(OSError):
        root.mkdir(parents=True, exist_ok=True)
    if root.is_dir() and os.access(root, os.W_OK):
        return StageCache(root, f"the export cache ({root})").claim(export_key(recipe, data))
    progress.log(f"edgec: cannot write the export cache {root} (set EDGEC_CACHE_DIR to a writable "
                 "folder); exporting this run's model")
    return None


def export_key(recipe: Recipe, data: DataSplits) -> str:
    """sha256 over everything the kept export and its report entries depend on (module doc)."""
    from edgec import __version__
    from edgec.environment import package_version
    from edgec.zoo import zoo_cache_path

    digest = hashlib.sha256()
    described = {
        "versions": [__version__, *(package_version(p) for p in ("torch", "onnx", "onnxscript"))],
        "model": recipe.model.model_dump(mode="json"), "export": recipe.export.model_dump(mode="json"),
    }
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    digest.update(hashlib.sha256(zoo_cache_path(recipe.model.name).read_bytes()).digest())
    parity = data.eval.x[: recipe.export.parity_samples]
    digest.update(f"{parity.dtype}{parity.shape}".encode() + parity.tobytes())
    return digest.hexdigest()[:32]
