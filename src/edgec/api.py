"""The Python API: what the CLI does, for notebooks and sweep scripts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgec.errors import UsageError, not_a_folder

if TYPE_CHECKING:
    from edgec.recipe import Recipe
    from edgec.report import Report


def resolve_recipe(
    recipe_or_path: str | os.PathLike | dict | Recipe, overrides: list[str] | tuple[str, ...] = (),
    base_dir: str | os.PathLike | None = None,
) -> tuple[Recipe, Path, str]:
    """Any accepted recipe form → (validated Recipe, folder for relative paths, run name).
    A recipe file's paths are relative to its folder; a dict's or Recipe's to ``base_dir``
    (default: the current folder)."""
    from edgec.recipe import Recipe, load_recipe, validate_recipe
    from edgec.recipe_files import check_local_paths
    from edgec.recipe_yaml import apply_overrides

    if isinstance(recipe_or_path, (str, os.PathLike)):
        path = Path(recipe_or_path)
        _check_recipe_path(recipe_or_path, path, base_dir)
        recipe, recipe_dir, name = load_recipe(path, overrides), path.resolve().parent, path.stem
        check_local_paths(recipe, recipe_dir, str(path))
        return recipe, recipe_dir, name
    if not isinstance(recipe_or_path, (dict, Recipe)):
        raise UsageError(f"The recipe must be the path of a recipe file, a dict or a Recipe "
                         f"(edgec.load_recipe), not {_a(recipe_or_path)}.",
                         hint="Pass e.g. edgec.compress('configs/quickstart.yaml').")
    source = "<Recipe object>" if isinstance(recipe_or_path, Recipe) else "<recipe dict>"
    if isinstance(recipe_or_path, Recipe):
        recipe_or_path = recipe_or_path.model_dump(mode="json", exclude_unset=True)
    folder = _folder(base_dir, "base_dir") if base_dir is not None else Path.cwd()
    raw: Any = apply_overrides(recipe_or_path, overrides)
    recipe = validate_recipe(raw, source=source)
    said = "given by base_dir=" if base_dir is not None else "the current folder: no base_dir= given"
    check_local_paths(recipe, folder, source, hint=(
        f"A dict's or Recipe's paths are relative to base_dir= ({folder}, {said}); pass "
        "base_dir= the folder they are relative to (a loaded recipe file's own folder), or fix "
        "the paths."))
    return recipe, folder, "run"


def _check_recipe_path(given, path: Path, base_dir) -> None:
    if isinstance(given, str) and "\n" in given:
        raise UsageError("The recipe is a string of several lines: recipe text, not the path of "
                         "a recipe file.", hint="Pass yaml.safe_load(text) (a dict), or the path "
                         "of the file.")
    if base_dir is not None:
        raise UsageError(f"base_dir= is for a recipe given as a dict or Recipe; the paths in the "
                         f"recipe file '{path}' are relative to its own folder "
                         f"({path.resolve().parent}).", hint="Leave base_dir out.")


def _a(value: Any) -> str:
    kind = type(value).__name__
    return f"{'an' if kind[0].lower() in 'aeiou' else 'a'} {kind} ({value!r:.40})"


def _path_argument(value: Any, name: str) -> Path | None:
    """``name=`` as a Path (None stays None); anything but a str or path is a UsageError."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise UsageError(f"{name}= must be a folder path (a str or pathlib.Path), not {_a(value)}.")
    return Path(value)


def _folder(value: Any, name: str) -> Path:
    """An existing folder ``name=`` names, resolved (base_dir=)."""
    path = _path_argument(value, name)
    if not path.is_dir():
        raise UsageError(f"{name}='{path}' {not_a_folder(path)}; give an existing folder.")
    return path.resolve()


def _stage_cache(value: Any) -> Path | None:
    """stage_cache=: a folder, made if missing. A file there failed minutes into the run, at
    the benchmark step ("File system error on 't1.py/measured' … Not a directory")."""
    from edgec.rundir import check_creatable

    path = _path_argument(value, "stage_cache")
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        raise UsageError(f"stage_cache='{path}' is a file; give a folder (made if missing) that "
                         "the runs sharing their torch stage all name.")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"stage_cache='{path}' is not writable; give a folder you can write to.")
    if not path.exists():
        check_creatable(path, "stage_cache= folder")
    return path


def _check_flags(**flags: Any) -> None:
    for name, value in flags.items():
        if not isinstance(value, bool):  # force='no' is truthy: it replaced a run
            raise UsageError(f"{name}= must be True or False, not {_a(value)}.")


def default_output(recipe: Recipe, name: str) -> Path:
    from edgec.recipe_files import check_output_dir

    if recipe.output.dir is None:
        return Path("runs") / name
    check_output_dir(recipe.output.dir)  # the one place a recipe's output.dir becomes a path
    return Path(recipe.output.dir)


def compress(
    recipe_or_path: str | os.PathLike | dict | Recipe,
    overrides: list[str] | tuple[str, ...] = (),
    output: str | os.PathLike | None = None,
    *,
    force: bool = False,
    resume: bool = False,
    progress: bool = False,
    stage_cache: str | os.PathLike | None = None,
    base_dir: str | os.PathLike | None = None,
) -> Report:
    """Run a recipe end to end and return its Report; ``report.passed`` says whether it completed
    and every budget held (a missed budget does not raise).

    ``recipe_or_path``: the path of a recipe YAML file, a recipe dict, or a Recipe from
    ``edgec.load_recipe``. A file's relative paths (model.callable, data.path …) are relative to
    its folder; a dict's or Recipe's to ``base_dir`` (default: the current folder).
    ``overrides``: ``dotted.path=value`` strings, as the CLI's ``--set`` takes, e.g.
    ``['passes.0.mode=dynamic', 'benchmark.runs=500']``.
    ``output``: the run folder (default: the recipe's output.dir, else ``runs/<recipe name>``);
    ``force=True`` replaces an existing one. A failed run's work stays in ``<output>.partial``,
    and ``resume=True`` continues it from its last completed step.
    ``progress=True`` shows progress bars and step logs on stderr.
    ``stage_cache``: a folder that runs of one sweep share, so a run whose model, data, seed, torch
    passes and export settings match an earlier one reuses its export instead of recomputing it.

    Raises (all ``edgec.EdgecError``, with ``.message``, ``.hint`` and ``.exit_code``):
    ``RecipeError`` / ``UsageError`` for an invalid recipe or argument, before any work;
    ``PluginError`` for an installed plugin that cannot be loaded; ``ModelLoadError``,
    ``DataError``, ``PassError``, ``ExportError``, ``BenchmarkError`` or ``OutputError`` for a run
    that failed (``.run_folder`` is its unfinished folder). Ctrl-C raises KeyboardInterrupt.
    Threads may run several at once, each with its own ``output`` (their torch exports take
    turns); processes, as ``edgec sweep --jobs`` uses, scale better.
    """
    from edgec.errors import spelling
    from edgec.pipeline import run_recipe
    from edgec.progress import Progress

    with spelling("api"):  # "pass force=True", not "--force"
        _check_flags(force=force, resume=resume, progress=progress)
        target = _path_argument(output, "output") if output != "" else None
        cache = _stage_cache(stage_cache)
        recipe, recipe_dir, name = resolve_recipe(recipe_or_path, overrides, base_dir)
        return run_recipe(
            recipe, recipe_dir=recipe_dir, output=target or default_output(recipe, name),
            force=force, resume=resume, progress=Progress(enabled=progress, verbose=progress),
            stage_cache=cache,
        )
