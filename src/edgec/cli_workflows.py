"""Recipe-level workflows and listings: sweep, sensitivity, metadata, passes, plugins, targets,
compare, init, cache.

Each is a thin layer: parse options, call one library function, print. Registered on the group
by the import at the end of cli.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from edgec.cli import (
    _set_option,
    cli,
    summary_md_option,
)
from edgec.cli_errors import errors_as_json, exit_codes_help, json_option
from edgec.cli_models import FiniteFloat


@cli.command(epilog="""
\b
Exit codes:
  0  every variant ran (see results.csv for budgets and the Pareto front)
  1  every variant ran, but none meets the recipe's budgets
  2  invalid recipe, grid or option (nothing was run)
  3  at least one variant failed (the others' results are kept)
  130 interrupted; finished variants are kept and reused on the next run
""")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--grid", "grid", multiple=True, metavar="PATH=V1,V2,...",
              help="Values to sweep for a recipe field, e.g. --grid passes.0.mode=static,dynamic "
              "(repeatable, one option per path; adds a path to the recipe's sweep.grid or "
              "replaces its values). Commas inside [..] or quotes belong to a value: "
              "--grid passes.0.exclude_ops=[Conv,Gemm],[]")
@click.option("--mode", type=click.Choice(["product", "zip"]),
              help="Combine grid paths as a product (default) or zip them.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Sweep folder (default: runs/<recipe name>-sweep).")
@_set_option
@click.option("--jobs", type=click.IntRange(1), help="Variants in parallel (default: sweep.jobs).")
@click.option("--executor", type=click.Choice(["local", "ray"]),
              help="Local processes (default), or Ray (pip install 'edgec[ray]').")
@click.option("--ray", "use_ray", is_flag=True, help="Same as --executor ray.")
@click.option("--address", help="Ray cluster address (default: start a local Ray instance).")
@click.option("--axes", help="Pareto axes, comma separated, e.g. size_kb,speedup,accuracy.")
@click.option("--rerun", is_flag=True, help="Run every variant again instead of reusing finished ones.")
@json_option("Print results.json to stdout (when nothing ran, or on Ctrl-C, an edgec.error/1 "
             "object: docs/cli.md).")
@summary_md_option
@click.option("-q", "--quiet", is_flag=True, help="No status lines.")
def sweep(recipe: Path, grid, mode, output, overrides, jobs, executor, use_ray, address, axes,
          rerun: bool, as_json: bool, summary_md: Path | None, quiet: bool):
    """Run variants of RECIPE (a grid of --set values), tabulate them, find the Pareto front."""
    from edgec.ci_outputs import check_ci_paths, write_summary
    from edgec.errors import EdgecError
    from edgec.export_cache import likely_torch_free
    from edgec.progress import Progress
    from edgec.sweep import check_folder, plan, run_sweep
    from edgec.sweep_exec import choose_executor, recipe_jobs, start_early
    from edgec.sweep_report import finish_sweep, summary_markdown, write_failed_summary

    errors_as_json(as_json)
    folder = output or Path("runs") / f"{recipe.stem}-sweep"
    try:  # a CI job's summary page says why a sweep stopped, as it says what one found
        executor = choose_executor(executor, use_ray, address)
        check_folder(folder)
        check_ci_paths(None, summary_md)
        start_early(jobs or recipe_jobs(recipe, overrides), executor,
                    torch=not likely_torch_free(recipe, overrides))
        progress = Progress(enabled=False, verbose=not quiet and not as_json)
        variants, config = plan(recipe, grid, mode, overrides, log=progress.log,
                                axes=[a for a in axes.split(",") if a] if axes is not None else None)
        result = run_sweep(
            recipe, variants, folder, list(config.axes), jobs=jobs or config.jobs,
            executor=executor, address=address, rerun=rerun, progress=progress,
        )
    except (EdgecError, KeyboardInterrupt) as exc:
        write_failed_summary(exc, summary_md)
        raise
    code = finish_sweep(result, as_json)
    write_summary(summary_markdown(result, code), summary_md,  # after the verdict is printed
                  kept=f" The sweep itself finished: '{folder / 'results.json'}' holds its results.")
    sys.exit(code)


@cli.command(epilog=exit_codes_help((0, 2, 3, 130)))
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="The file to write the metadata to, exactly as named (an .npz archive; "
              "e.g. meta.npz).")
@click.option("--clusters", default=4, show_default=True, type=click.IntRange(1, 64),
              help="k-means clusters per class.")
@click.option("--components", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Principal components kept per cluster.")
@_set_option
def metadata(recipe: Path, output: Path, clusters: int, components: int, overrides) -> None:
    """Summarize RECIPE's model activations on its training data for data-free distillation
    (distill synthetic method: dream). Run where the data lives; no images are stored."""
    from edgec.passes.distill_metadata import metadata_from_recipe

    meta = metadata_from_recipe(recipe, overrides, output, clusters, components)
    click.echo(f"{output}: {len(meta.centroids)} clusters over {len(set(meta.classes.tolist()))} "
               f"classes of '{meta.layer}' inputs ({meta.centroids.shape[1]} values each)")


@cli.command(epilog=exit_codes_help(  # 141: `| head` on its table, printed after the files
    (0, 2, 3, 130, 141), c130="interrupted (Ctrl-C, SIGTERM); no folder is left"))
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Folder for sensitivity.csv/.json/.png (default: runs/<recipe name>-sensitivity).")
@click.option("--ratios", default="0.25,0.5,0.75", show_default=True,
              help="Fractions of channels (weights) removed from each layer alone, comma-separated.")
@click.option("--max-drop", default=0.01, show_default=True, type=FiniteFloat(0, 1),
              help="Accuracy drop per layer the suggestion allows (0.01 = one point).")
@_set_option
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or status lines.")
def sensitivity(recipe: Path, output: Path | None, ratios: str, max_drop: float, overrides,
                force: bool, quiet: bool) -> None:
    """Prune each layer of RECIPE's model alone at several ratios, measure the accuracy drop,
    write sensitivity.csv/.json/.png and suggest per-layer prune settings."""
    from edgec.progress import Progress, progress_wanted
    from edgec.sensitivity import parse_ratios, run_sensitivity
    from edgec.sensitivity_output import print_result

    progress = Progress(enabled=progress_wanted(quiet), verbose=not quiet)
    result, folder = run_sensitivity(recipe, overrides, output, parse_ratios(ratios), max_drop,
                                     force, progress)
    print_result(result)
    click.echo(f"results in {folder}/ (sensitivity.csv, sensitivity.json, sensitivity.png)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def passes(as_json: bool) -> None:
    """List every pass (built-in and plugin) with its fields, defaults and descriptions."""
    from edgec.pass_catalog import describe_passes, print_passes

    docs = describe_passes()
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in docs], indent=2))
    else:
        print_passes(docs)


@cli.command(epilog=exit_codes_help((0, 2, 141), c2="an installed plugin cannot be loaded (listed "
                                     "with its error)"))
def plugins() -> None:
    """List installed plugins (entry points edgec.passes, edgec.models, edgec.targets), a broken
    one with its error."""
    from edgec.pass_catalog import print_plugins

    print_plugins()


@cli.command(epilog=exit_codes_help((0, 2, 141)))
@click.option("--show", metavar="NAME", help="Print one profile's fields as YAML (a starting point "
              "for your own profile file).")
def targets(show: str | None) -> None:
    """List the device targets a recipe can name (built-in and plugin), or --show one."""
    import yaml

    from edgec.targets import load_target, target_names

    if show:
        profile = load_target(show)
        click.echo(yaml.safe_dump(profile.model_dump(mode="json"), sort_keys=False), nl=False)
        return
    for name, origin in target_names().items():
        profile = load_target(name)
        limits = ", ".join(f"{k} {v:g}" for k, v in profile.budgets().items()) or "no budgets"
        click.echo(f"{name:<14} {origin:<28} {limits}\n{'':<14} {profile.description}")


@cli.command(epilog=exit_codes_help((0, 2, 141)))
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("compare.md"),
              show_default=True, help="Also write the table here (.md, .csv or .json).")
def compare(runs, output: Path) -> None:
    """Show several run folders side by side (from their report.json files)."""
    from edgec.compare import compare_table, print_comparison, write_comparison

    table = compare_table(list(runs))
    write_comparison(table, output)  # first: a bad file name fails before any output
    print_comparison(table)
    click.echo(f"written to {output}")


def _ask(value: str | None, prompt: str, choices: tuple[str, ...], default: str) -> str:
    """A flag's value; else a prompt on a terminal; else the default (scripts never hang)."""
    if value is not None:
        return value
    if not sys.stdin.isatty():
        return default
    try:
        return click.prompt(prompt, type=click.Choice(choices), default=default)
    except click.Abort as exc:  # click's answer to Ctrl-C (an interruption) and to end of input
        if not isinstance(exc.__context__, EOFError):
            raise
        from edgec.errors import UsageError

        click.echo()  # the message goes below the unanswered prompt, not after it
        raise UsageError(f"edgec init: no answer for '{prompt}' (the input ended).",
                         hint="Answer on the command line instead, e.g. "
                         "`edgec init --model zoo --data digits`.") from None


@cli.command(epilog=exit_codes_help((0, 2, 3, 130)))
@click.argument("path", type=click.Path(path_type=Path), default=Path("recipe.yaml"))
@click.option("--model", "model", type=click.Choice(["zoo", "torchvision", "python", "checkpoint"]),
              help="Model source (asked on a terminal; default zoo).")
@click.option("--data", "data", type=click.Choice(["digits", "npz", "imagefolder", "synthetic"]),
              help="Data kind (asked on a terminal; default digits, or imagefolder for "
              "--model torchvision, whose networks take 3-channel images).")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def init(path: Path, model: str | None, data: str | None, force: bool) -> None:
    """Write a commented starter recipe to PATH (default recipe.yaml)."""
    from edgec.init_recipe import check_starter_path, default_data, write_starter

    check_starter_path(path, force)  # before any question: a wrong path is not worth answering
    model = _ask(model, "Model source", ("zoo", "torchvision", "python", "checkpoint"), "zoo")
    data = _ask(data, "Data", ("digits", "npz", "imagefolder", "synthetic"), default_data(model))
    write_starter(path, model, data, force)
    click.echo(f"wrote {path} ({model} model, {data} data). Next: edgec validate {path}")


@cli.command()
@click.option("--clear", type=click.Choice(["exports", "zoo", "all"]),
              help="Delete kept exports, trained zoo models, or both (each is redone when needed).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the sections (with --clear: what was removed and what is left) as JSON.")
def cache(clear: str | None, as_json: bool) -> None:
    """Show what edgec keeps between runs (~/.cache/edgec, or $EDGEC_CACHE_DIR) and its size."""
    from edgec import user_cache
    from edgec.zoo import cache_root

    root = cache_root()
    if root.exists() and not root.is_dir():
        click.echo(f"note: the cache {root} is a file, not a folder, so edgec keeps nothing between "
                   "runs (zoo models are retrained, exports redone). Point EDGEC_CACHE_DIR at a "
                   "folder, or remove the file.", err=True)
    if clear:
        names = list(user_cache.SECTIONS) if clear == "all" else [clear]
        cleared = [user_cache.clear(name) for name in names]
        if as_json:
            click.echo(json.dumps([{
                "section": sec.name, "path": str(sec.path), "removed_entries": sec.entries - left.entries,
                "removed_bytes": sec.bytes - left.bytes, "entries": left.entries, "bytes": left.bytes,
            } for sec, left in cleared], indent=2))
            return
        for sec, left in cleared:
            click.echo(f"removed {sec.entries - left.entries} {sec.what} "
                       f"({_mb(sec.bytes - left.bytes)}) from {sec.path}: {sec.after_clear}")
            if left.bytes:
                click.echo(f"  {_mb(left.bytes)} could not be removed (files of another user, or "
                           "a run writing its export now); remove them by hand if they stay.")
        return
    sections = user_cache.survey()
    if as_json:
        click.echo(json.dumps([{"section": s.name, "path": str(s.path), "entries": s.entries,
                                "bytes": s.bytes} for s in sections], indent=2))
        return
    click.echo(f"edgec cache: {root} (set EDGEC_CACHE_DIR to move it)")
    for sec in sections:
        click.echo(f"  {sec.name:<8} {sec.entries:>3} {sec.what:<27} {_mb(sec.bytes):>9}   "
                   f"--clear {sec.name}: {sec.after_clear}")


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
