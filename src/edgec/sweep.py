"""`edgec sweep`: run many variants of one recipe, then tabulate, find the Pareto front, plot.

The folder's layout, and which earlier runs in it are reused: sweep_folder.py.

Resumable: a variant whose folder holds a completed report of the same recipe is not run again.
Results are rewritten after every finished variant, so Ctrl-C keeps what finished.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgec.errors import RecipeError, UsageError, sigterm_as_interrupt
from edgec.rundir import exclusive_lock
from edgec.sweep_folder import check_folder, name_variants, reusable, write_variant_meta
from edgec.sweep_results import SweepResult, tabulate

if TYPE_CHECKING:
    from edgec.progress import Progress


def plan(recipe: Path, grid_options: tuple[str, ...], mode: str | None,
         overrides: tuple[str, ...] = (), axes: list[str] | None = None,
         log: Callable[[str], None] | None = None) -> tuple[list[dict], Any]:
    """Expand the grid and validate every variant before any work: ([{name, values, overrides,
    recipe}], sweep config). ``recipe`` is the validated Recipe, kept in memory for the decisions
    made before the variants run (never written; each variant validates its overrides again).
    ``name`` is the position, until run_sweep names each variant as its sweep folder knows it.
    ``axes`` (--axes) replace the config's; an axis no variant can measure is refused when it
    picks the best (the first), else ``log`` says the front leaves it out."""
    from edgec.recipe import recipe_variants
    from edgec.recipe_files import check_local_paths
    from edgec.sweep_config import SweepConfig, as_overrides, expand, parse_grid_option

    load_recipe = recipe_variants(recipe)  # parsed once: 100 variants re-read it in 2-3 s
    try:
        config = load_recipe(overrides).sweep or SweepConfig()
    except RecipeError:  # the recipe may be complete only with its grid values: each variant is
        config = _sweep_section(recipe, overrides)  # validated with them below
        if config is None:  # the sweep section itself is wrong: the whole error says where
            raise
    grid = dict(config.grid)
    given: set[str] = set()
    for item in grid_options:
        path, values = parse_grid_option(item)
        if path in given:
            raise UsageError(f"--grid {path} is given twice; only one option may set a path.",
                             hint=f"Put all its values in one option: --grid {path}=v1,v2,v3.")
        given.add(path)
        grid[path] = values  # replaces the recipe's values for this path, if it has some
    variants, points = [], expand(grid, mode or config.mode)
    for i, values in enumerate(points):
        sets = [*overrides, *as_overrides(values)]
        # messages name where a value came from: the user typed no --set for a grid value
        options = ["--set"] * len(overrides) + ["--grid" if p in given else "sweep.grid"
                                                for p in values]
        try:
            validated = load_recipe(sets, options)
            check_local_paths(validated, Path(recipe).resolve().parent, str(recipe))
        except RecipeError as exc:
            err = RecipeError(f"sweep variant {i + 1} of {len(points)} ({_label(values)}) is "
                              f"invalid: {exc.message}", hint=exc.hint)
            err.problems = exc.problems  # already in the message; kept for --json's error object
            raise err from None
        variants.append({"name": f"v{i:03d}", "values": values, "overrides": sets, "recipe": validated})
    where = "--axes" if axes is not None else "sweep.axes"
    axes = _measurable_axes(variants, config.axes if axes is None else axes, where, log)
    config = config.model_copy(update={"axes": axes})
    return variants, config


def _measurable_axes(variants: list[dict], axes: list[str], where: str,
                     log: Callable[[str], None] | None) -> list[str]:
    """The axes, canonical; refuses a first axis no variant can measure (it picks the best: the
    sweep ran to the end and found none), and says which later one the front will leave out.
    Only what the recipe shows: accuracy needs labels, which synthetic data never has."""
    from edgec.pareto import canonical_axes

    axes = canonical_axes(axes)
    if "accuracy" not in axes or any(v["recipe"].data.source != "synthetic" for v in variants):
        return axes
    why = "the recipe's data is synthetic: random inputs without labels"

    def shown(names: list[str]) -> str:  # as the user wrote them
        return (f"--axes {','.join(names)}" if where == "--axes"
                else f"sweep.axes: [{', '.join(names)}]")

    if axes[0] == "accuracy":
        rest = [a for a in axes if a != "accuracy"]
        error = UsageError if where == "--axes" else RecipeError
        raise error(f"{shown(axes)}: no variant can measure accuracy ({why}), and the first axis "
                    "picks the best variant, so the sweep would find none.",
                    hint=(f"Put a measurable axis first ({shown(rest)}), or " if rest
                          else f"Choose measurable axes ({shown(['size_kb', 'speedup'])}), or ")
                    + "give the recipe labelled data (data: {source: digits}, an npz with "
                    "labels, or an imagefolder).")
    if log is not None:
        log(f"  accuracy is left out of the Pareto front over {shown(axes)} ({why})")
    return axes


def _sweep_section(recipe: Path, overrides: tuple[str, ...]):
    """The recipe's sweep section alone, validated; None if it is invalid."""
    from pydantic import ValidationError

    from edgec.recipe_yaml import peek_recipe
    from edgec.sweep_config import SweepConfig

    raw = (peek_recipe(str(recipe), tuple(overrides)) or {}).get("sweep") or {}
    try:
        return SweepConfig.model_validate(raw)
    except ValidationError:
        return None


def _label(values: dict) -> str:
    from edgec.sweep_config import grid_text

    return ", ".join(f"{k}={grid_text(v)}" for k, v in values.items())


def run_sweep(
    recipe: Path, variants: list[dict], folder: Path, axes: list[str], *, jobs: int = 1,
    executor: str = "local", address: str | None = None, rerun: bool = False,
    progress: Progress | None = None,
) -> SweepResult:
    """Run (or reuse) every variant, saving results after each; returns the tabulated sweep."""
    from edgec.pareto import canonical_axes
    from edgec.sweep_exec import executor as make_executor
    from edgec.sweep_exec import torch_threads_per_job

    axes = canonical_axes(axes)
    folder = Path(folder)
    check_folder(folder)
    t0 = time.perf_counter()
    left_out = name_variants(folder, variants)
    finished: dict[str, dict] = {}
    tasks = []
    for v in variants:
        reused = None if rerun else reusable(folder, v)
        if reused is not None:
            finished[v["name"]] = reused
            continue
        tasks.append({"name": v["name"], "recipe": str(Path(recipe).resolve()),
                      "overrides": v["overrides"], "run_dir": str(folder / "variants" / v["name"]),
                      "torch_threads": torch_threads_per_job(jobs),
                      "stage_cache": str(folder / "cache")})
    by_name = {v["name"]: v for v in variants}
    from edgec.sweep_plot import warm_plotting

    run = make_executor(executor, jobs, address, meanwhile=warm_plotting,  # checks its options
                        torch=_needs_torch([by_name[t["name"]] for t in tasks]))
    try:
        (folder / "variants").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"Cannot create the sweep folder '{folder}': {exc.strerror or exc}.") from None
    lock = exclusive_lock(folder / ".lock", f"Another edgec sweep is writing '{folder}' right now; "
                          "two sweeps in one folder would mix their results. Wait for it to "
                          "finish, or choose another -o folder.")
    result = SweepResult(folder, [], axes, reused=len(finished), planned=len(variants))
    log = progress.log if progress else (lambda _msg: None)
    log(f"edgec sweep: {len(variants)} variants, {len(finished)} reused, {len(tasks)} to run "
        f"({executor}, {jobs} job(s))")
    if executor == "local" and tasks:
        threads = max(by_name[t["name"]]["recipe"].benchmark.threads for t in tasks)
        note = _oversubscribed(min(jobs, len(tasks)), threads, os.cpu_count() or 1)
        if note:
            log(note)
    if left_out:
        log(f"  {len(left_out)} earlier variant(s) in this folder are not in this grid "
            f"({', '.join(left_out[:5])}{' …' if len(left_out) > 5 else ''}): kept, not tabulated")
    try:
        with sigterm_as_interrupt():
            if tasks and (jobs > 1 or executor == "ray"):
                _train_shared_models(variants, progress)
            _run_tasks(result, variants, finished, run(tasks), log, t0)
    finally:
        if lock is not None:
            lock.close()
    return result


def _oversubscribed(parallel: int, threads: int, cpus: int) -> str | None:
    """What more busy threads than cores costs a local sweep, or None. Measured on 2 CPUs (4
    quickstart variants): --jobs 4 took 1.64-1.66 s, --jobs 2 1.54-1.60 s; with
    benchmark.threads: 2, --jobs 2 was no faster than --jobs 1 and its speed-ups spread over
    1.31-1.48x where --jobs 1 measured 1.29-1.37x."""
    plural = "s" if cpus > 1 else ""
    if threads > 1 and parallel > 1 and parallel * threads > cpus:
        return (f"  {parallel} jobs x benchmark.threads {threads} = {parallel * threads} timing "
                f"threads on {cpus} CPU{plural}: the jobs take cores from each other while they time "
                f"their models, so the sweep is hardly faster and speed-ups vary more between "
                f"variants than {threads} free threads would measure; --jobs "
                f"{max(1, cpus // threads)} gives each variant cores of its own")
    if parallel > cpus:
        return (f"  {parallel} jobs on {cpus} CPU{plural}: they share the cores, so the sweep is "
                f"no faster than with --jobs {cpus} and each variant takes longer (its speed-up is "
                "still measured side by side)")
    return None


def _run_tasks(result: SweepResult, variants: list[dict], finished: dict, outcomes: Iterator[dict],
               log: Callable[[str], None], t0: float) -> None:
    """Record each outcome as it comes; on Ctrl-C or SIGTERM, close the executor (which stops its
    workers) and say what was kept."""
    by_name = {v["name"]: v for v in variants}
    try:
        with contextlib.closing(outcomes):
            for outcome in outcomes:
                finished[outcome["name"]] = outcome
                write_variant_meta(result.folder, by_name[outcome["name"]], outcome)
                log(f"  {outcome['name']} {_label(by_name[outcome['name']]['values'])}: "
                    f"{outcome['status']}" + (f" ({outcome['error']})" if outcome["error"] else ""))
                tabulate(result, variants, finished, time.perf_counter() - t0, final=False)
    except KeyboardInterrupt as exc:  # the CLI says this instead of a run's --resume advice
        exc.run_folder = None
        exc.kept_note = (f"{len(finished)} of {len(variants)} variants finished; they are in "
                         f"'{result.folder}' and the next run of the same sweep reuses them."
                         if finished else f"No variant had finished; the same command runs the "
                         f"sweep into '{result.folder}' again.")
        raise
    finally:  # also on Ctrl-C or a crash: the page and plot show what finished
        tabulate(result, variants, finished, time.perf_counter() - t0)


def _needs_torch(variants: list[dict]) -> bool:
    """Whether some variant will import torch (else its workers need not preload it); after
    _train_shared_models, since only a trained zoo model can skip torch."""
    from edgec.export_cache import torch_free

    return not all(torch_free(v["recipe"]) for v in variants)


def _train_shared_models(variants: list[dict], progress) -> None:
    """Train each zoo reference model once, here, before workers start: otherwise every parallel
    worker would find the cache empty and train the same model at the same time."""
    from edgec.zoo import zoo_cache_path

    names = set()
    for v in variants:
        spec = v["recipe"].model
        if spec.source == "zoo" and not zoo_cache_path(spec.name).is_file():
            names.add(spec.name)  # only a missing model: loading a cached one costs a torch import
    if names:
        from edgec.zoo import load_zoo_model

        for name in sorted(names):
            load_zoo_model(name, progress=progress)
