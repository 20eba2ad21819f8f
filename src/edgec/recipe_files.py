"""The local files and folders a recipe names, checked before any work.

A checkpoint, .npz, image folder, model .py file or metadata file that is not there would otherwise
surface minutes into a run (after the baseline export, say) as a failed run with a .partial folder
and --resume advice that cannot help. Sections declare their path fields (``FILE_FIELDS`` /
``FOLDER_FIELDS`` on ConfigModel, or ``local_paths``); this walks the validated recipe and
reports every missing one at once, as a recipe error (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edgec.errors import RecipeError, not_a_folder, option


def check_local_paths(recipe: BaseModel, base_dir: Path, source: str, hint: str | None = None) -> None:
    """Raise RecipeError naming each path the recipe gives that does not exist (or has the wrong
    kind); paths are relative to ``base_dir``, the recipe's folder. ``hint``: what to do instead
    of the default advice (a recipe with no file has no folder of its own)."""
    problems = []
    for key, path, kind in _paths(recipe, ""):
        full = base_dir / path
        if kind == "folder" and not full.is_dir():
            problem = not_a_folder(full)
        elif kind == "file" and not full.is_file():
            problem = "is a folder, not a file" if full.exists() else "does not exist"
        else:
            continue
        problems.append(f"{key}: '{path}' {problem} (looked for {full})")
    if problems:
        raise RecipeError(f"{source}: the recipe names files that are not there:",
                          problems=problems, hint=hint or "Paths are relative to the recipe's "
                          f"folder ({base_dir}); fix the path or move the file there.")


def check_output_dir(output_dir: str) -> None:
    """Refuse a recipe's output.dir that leads outside the current folder through a symbolic
    link. Its validator checks the text (no absolute path, no '..'), but `esc/run` with `esc` a
    link elsewhere would still let a recipe from someone else make edgec write there."""
    here = Path.cwd().resolve()
    real = (here / output_dir).resolve()
    if here not in real.parents:
        raise RecipeError(
            f"output.dir: '{output_dir}' leads to '{real}' through a symbolic link, which is not "
            f"below the current folder ({here}); a recipe may only name a folder below it.",
            hint=f"Pass {option('output')} to write elsewhere.")


def _paths(node: Any, where: str) -> list[tuple[str, str, str]]:
    found = []
    if isinstance(node, BaseModel):
        if hasattr(node, "local_paths"):
            found += [(f"{where}{key}", path, kind) for key, path, kind in node.local_paths()]
        for name in type(node).model_fields:
            found += _paths(getattr(node, name), f"{where}{name}.")
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            found += _paths(item, f"{where}{i}.")
    elif isinstance(node, dict):
        for key, item in node.items():
            found += _paths(item, f"{where}{key}.")
    return found
