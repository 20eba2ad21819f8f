"""The Python API: what the CLI does, for notebooks and sweep scripts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgec.recipe import Recipe
    from edgec.report import Report


def resolve_recipe(
    recipe_or_path: str | Path | dict | Recipe, overrides: list[str] | tuple[str, ...] = ()
) -> tuple[Recipe, Path, str]:
    """Any accepted recipe form → (validated Recipe, folder for relative paths, run name)."""
    from edgec.recipe import Recipe, load_recipe, validate_recipe
    from edgec.recipe_files import check_local_paths
    from edgec.recipe_yaml import apply_overrides

    if isinstance(recipe_or_path, (str, Path)):
        path = Path(recipe_or_path)
        recipe, recipe_dir, name = load_recipe(path, overrides), path.resolve().parent, path.stem
        source = str(path)
    else:
        if isinstance(recipe_or_path, Recipe):
            recipe_or_path = recipe_or_path.model_dump(mode="json", exclude_unset=True)
        raw: Any = apply_overrides(recipe_or_path, overrides)
        source = "<recipe dict>"
        recipe, recipe_dir, name = validate_recipe(raw, source=source), Path.cwd(), "run"
    check_local_paths(recipe, recipe_dir, source)
    return recipe, recipe_dir, name


def default_output(recipe: Recipe, name: str) -> Path:
    from edgec.recipe_files import check_output_dir

    if recipe.output.dir is None:
        return Path("runs") / name
    check_output_dir(recipe.output.dir)  # the one place a recipe's output.dir becomes a path
    return Path(recipe.output.dir)


def compress(
    recipe_or_path: str | Path | dict | Recipe,
    overrides: list[str] | tuple[str, ...] = (),
    output: str | Path | None = None,
    *,
    force: bool = False,
    resume: bool = False,
    progress: bool = False,
    stage_cache: str | Path | None = None,
) -> Report:
    """Run a recipe end to end and return its Report (``report.passed`` says if budgets held).

    ``overrides`` are ``dotted.path=value`` strings, as with ``--set``. Raises ``EdgecError``
    subclasses for invalid recipes (``RecipeError``) and failed runs; a failed run's work stays in
    ``<output>.partial``, and ``resume=True`` continues it from its last completed step.
    ``stage_cache``: a folder that runs of one sweep share, so a run whose model, data, seed, torch
    passes and export settings match an earlier one reuses its export instead of recomputing it.
    """
    from edgec.errors import spelling
    from edgec.pipeline import run_recipe
    from edgec.progress import Progress

    with spelling("api"):  # "pass force=True", not "--force"
        recipe, recipe_dir, name = resolve_recipe(recipe_or_path, overrides)
        target = Path(output) if output else default_output(recipe, name)
        return run_recipe(
            recipe, recipe_dir=recipe_dir, output=target, force=force, resume=resume,
            progress=Progress(enabled=progress, verbose=progress),
            stage_cache=Path(stage_cache) if stage_cache else None,
        )
