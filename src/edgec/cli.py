"""The command line: parse arguments, delegate, turn errors into messages and exit codes.

No logic lives here. Heavy libraries are imported inside the commands, so `edgec --help` is instant.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import click

from edgec import __version__
from edgec.errors import EXIT_BUDGET, EXIT_INTERRUPTED, EXIT_RUNTIME, EdgecError, UsageError

EXIT_CODES_HELP = """
\b
Exit codes:
  0  success, every budget met
  1  the run completed and wrote its report, but a budget was missed
  2  invalid recipe, option or input file (nothing was run)
  3  runtime failure: loading, a pass, export or benchmarking failed
  130 interrupted (Ctrl-C, SIGTERM); completed artifacts are kept (--resume)
"""


class _EdgecGroup(click.Group):
    """Maps EdgecError to its exit code with a clean message; other exceptions are bugs."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except EdgecError as exc:
            if _debug(ctx):
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            _say_kept(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            click.echo("interrupted; completed artifacts were kept.", err=True)
            _say_kept(exc)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if _debug(ctx):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {exc}\nThis is a bug in edgec, not in "
                "your recipe. Re-run with --debug for the traceback and report it.", err=True,
            )
            _say_kept(exc)
            ctx.exit(EXIT_RUNTIME)


def _say_kept(exc: BaseException) -> None:
    folder = getattr(exc, "run_folder", None)
    if folder is not None:
        click.echo(f"The unfinished run is in '{folder}' (report.json says where it stopped); "
                   "re-run the same command with --resume to continue it.", err=True)


def _debug(ctx: click.Context) -> bool:
    return bool((ctx.obj or {}).get("debug")) or os.environ.get("EDGEC_DEBUG") == "1"


@click.group(
    cls=_EdgecGroup, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="edgec")
@click.option("--debug", is_flag=True, help="Show tracebacks (also EDGEC_DEBUG=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """edgec: prune, distill and quantize PyTorch models for edge devices, export to ONNX, and
    benchmark the result against the original, side by side."""
    ctx.obj = {"debug": debug}


_set_option = click.option(
    "--set", "overrides", multiple=True, metavar="PATH=VALUE",
    help="Override a recipe field, e.g. --set passes.0.per_channel=false (repeatable).",
)


_ci_options = [
    click.option("--junit", type=click.Path(path_type=Path),
                 help="Write JUnit XML: one test case per budget (for CI test reports)."),
    click.option("--summary-md", type=click.Path(path_type=Path),
                 help="Write a Markdown summary for a CI job page (also appended to "
                 "$GITHUB_STEP_SUMMARY when that is set)."),
    click.option("--against", type=click.Path(path_type=Path),
                 help="A stored report.json (e.g. main's) to gate regressions on: budgets "
                 "max_size_growth, max_latency_growth, max_accuracy_loss."),
    click.option("--fail-on-inconclusive", is_flag=True,
                 help="Fail a noise-aware gate whose confidence interval straddles the limit."),
]


def ci_options(func):
    for option in reversed(_ci_options):
        func = option(func)
    return func


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Run folder (default: the recipe's output.dir, else runs/<recipe name>).")
@_set_option
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted or failed run from its last completed step.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or status lines.")
@click.option("--target", "target_name", metavar="NAME|PATH",
              help="Device target (mcu, npu, rpi, host or a profile .yaml); same as --set target=NAME.")
@click.option("--mlflow", "use_mlflow", is_flag=True,
              help="Log to MLflow (as an empty mlflow: section would; needs edgec[mlflow]).")
@ci_options
def compress(recipe: Path, output: Path | None, overrides, force: bool, resume: bool, as_json: bool,
             quiet: bool, target_name: str | None, use_mlflow: bool, junit, summary_md, against,
             fail_on_inconclusive):
    """Run RECIPE: load, compress, export, benchmark, report."""
    from edgec.api import default_output, resolve_recipe
    from edgec.ci_outputs import write_ci_outputs, write_failed_ci_outputs
    from edgec.pipeline import run_recipe
    from edgec.progress import Progress, progress_wanted
    from edgec.regression import load_against

    overrides = (*overrides, "budgets.inconclusive=fail") if fail_on_inconclusive else overrides
    overrides = (*overrides, f"target={target_name}") if target_name else overrides
    target = None
    try:
        parsed, recipe_dir, name = resolve_recipe(recipe, overrides)
        if use_mlflow and parsed.mlflow is None:
            from edgec.mlflow_log import MlflowConfig

            parsed = parsed.model_copy(update={"mlflow": MlflowConfig()})
        stored = load_against(against) if against else None
        target = output or default_output(parsed, name)
        progress = Progress(enabled=progress_wanted(quiet), verbose=not quiet)
        report = run_recipe(parsed, recipe_dir=recipe_dir, output=target, force=force,
                            progress=progress, against=stored, resume=resume)
    except (EdgecError, KeyboardInterrupt) as exc:  # CI still gets a JUnit file saying why
        write_failed_ci_outputs(exc, target, junit, summary_md)
        raise
    write_ci_outputs(report, junit, summary_md)
    _finish(report, as_json)


def _finish(report, as_json: bool) -> None:
    """Print the report and exit 1 when a budget was missed."""
    from edgec.report_text import print_console

    if as_json:
        click.echo(report.to_json())
    else:
        print_console(report)
    if not report.passed:
        missed = [
            f"{b.name} (limit {b.limit:g}, actual {'n/a' if b.actual is None else f'{b.actual:.4g}'})"
            for b in report.budgets if not b.passed
        ]
        click.echo(f"budget missed: {', '.join(missed)}", err=True)
        sys.exit(EXIT_BUDGET)


@cli.command("check-budgets", epilog=EXIT_CODES_HELP)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--budgets", "budgets_file", required=True, type=click.Path(path_type=Path),
              help="YAML with the budgets (a bare mapping, or a recipe with a budgets: section).")
@click.option("--baseline", type=click.Path(path_type=Path),
              help="Reference ONNX model, measured side by side (needed by min_speedup, "
              "min_size_reduction).")
@click.option("--input-shape", help="e.g. 1,3,224,224 (default: from the model, batch 1).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1))
@click.option("--runs", default=200, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=20, show_default=True, type=click.IntRange(0))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="Override a budget, e.g. --set max_size_kb=150 (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@ci_options
def check_budgets_command(model: Path, budgets_file: Path, baseline, input_shape, threads: int, runs: int,
                  warmup: int, overrides, as_json: bool, junit, summary_md, against,
                  fail_on_inconclusive):
    """Gate an existing ONNX MODEL on a budgets file, without re-running compression."""
    from edgec.benchmark import BenchmarkConfig
    from edgec.budget_check import check_onnx, load_budgets
    from edgec.ci_outputs import write_ci_outputs
    from edgec.progress import Progress, progress_wanted
    from edgec.regression import load_against

    overrides = (*overrides, "inconclusive=fail") if fail_on_inconclusive else overrides
    budgets = load_budgets(budgets_file, overrides)
    stored = load_against(against) if against else None
    config = BenchmarkConfig(threads=threads, runs=runs, warmup=warmup)
    report = check_onnx(model, budgets, config, baseline=baseline, input_shape=_shape(input_shape),
                        against=stored, progress=Progress(enabled=progress_wanted(as_json)))
    write_ci_outputs(report, junit, summary_md, title=f"edgec check-budgets {Path(model).name}")
    _finish(report, as_json)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("recipe", type=click.Path(path_type=Path))
@_set_option
def validate(recipe: Path, overrides) -> None:
    """Check RECIPE (and overrides) without running anything."""
    from edgec.api import resolve_recipe

    parsed, _, _ = resolve_recipe(recipe, overrides)
    steps = " → ".join(p.label or p.type for p in parsed.passes) or "no passes"
    click.echo(f"{recipe}: valid. model: {parsed.model.source}; data: {parsed.data.source}; "
               f"passes: {steps}")


def _shape(value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise UsageError(f"--input-shape '{value}': expected positive integers like 1,3,224,224.")
    return shape


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--vs", "others", multiple=True, type=click.Path(path_type=Path),
              help="Another ONNX model to measure side by side (repeatable).")
@click.option("--input-shape", help="e.g. 1,3,224,224 (default: from the model, batch 1).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1))
@click.option("--runs", default=200, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=20, show_default=True, type=click.IntRange(0))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def bench(model: Path, others, input_shape, threads: int, runs: int, warmup: int, as_json: bool):
    """Measure ONNX MODEL (and --vs others) side by side, interleaved, on random inputs."""
    from edgec.benchmark import BenchmarkConfig, bench_files
    from edgec.progress import Progress, progress_wanted
    from edgec.report_text import print_metrics

    config = BenchmarkConfig(threads=threads, runs=runs, warmup=warmup)
    metrics = bench_files([model, *others], _shape(input_shape), config,
                          progress=Progress(enabled=progress_wanted(as_json)))
    if as_json:
        click.echo(json.dumps({name: m.to_dict() for name, m in metrics.items()}, indent=2))
    else:
        print_metrics(metrics, threads)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--input-shape", help="Fix a dynamic input shape, e.g. 1,3,224,224.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def inspect(model: Path, input_shape, as_json: bool) -> None:
    """Show params, MACs/FLOPs and a per-layer table of ONNX MODEL."""
    from edgec.graph_stats import analyze_onnx
    from edgec.report_text import print_layers

    if not model.is_file():
        raise UsageError(f"ONNX file '{model}' does not exist.")
    stats = analyze_onnx(model, _shape(input_shape))
    if as_json:
        click.echo(json.dumps(stats.to_dict(), indent=2))
    else:
        print_layers(model, stats)


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
              "(repeatable; adds to the recipe's sweep.grid).")
@click.option("--mode", type=click.Choice(["product", "zip"]),
              help="Combine grid paths as a product (default) or zip them.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Sweep folder (default: runs/<recipe name>-sweep).")
@_set_option
@click.option("--jobs", type=click.IntRange(1), help="Variants in parallel (default: sweep.jobs).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Local processes, or Ray (pip install 'edgec[ray]').")
@click.option("--ray", "use_ray", is_flag=True, help="Same as --executor ray.")
@click.option("--address", help="Ray cluster address (default: start a local Ray instance).")
@click.option("--axes", help="Pareto axes, comma separated, e.g. size_kb,speedup,accuracy.")
@click.option("--rerun", is_flag=True, help="Run every variant again instead of reusing finished ones.")
@click.option("--json", "as_json", is_flag=True, help="Print results.json to stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No status lines.")
def sweep(recipe: Path, grid, mode, output, overrides, jobs, executor, use_ray, address, axes,
          rerun: bool, as_json: bool, quiet: bool):
    """Run variants of RECIPE (a grid of --set values), tabulate them, find the Pareto front."""
    from edgec.progress import Progress
    from edgec.sweep import plan, run_sweep
    from edgec.sweep_report import finish_sweep

    variants, config = plan(recipe, grid, mode, overrides)
    result = run_sweep(
        recipe, variants, output or Path("runs") / f"{recipe.stem}-sweep",
        axes.split(",") if axes else list(config.axes), jobs=jobs or config.jobs,
        executor="ray" if use_ray else executor, address=address, rerun=rerun,
        progress=Progress(enabled=False, verbose=not quiet and not as_json),
    )
    sys.exit(finish_sweep(result, as_json))


@cli.command(epilog="""
\b
Exit codes:
  0  the model fits the target (ops, dtypes, opset, flash and RAM budgets)
  1  it does not: each problem is printed with its nodes and a fix
  2  unknown target, invalid profile or unreadable model
""")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--target", "target_name", required=True, metavar="NAME|PATH",
              help="Built-in target (mcu, npu, rpi, host) or the path of a profile .yaml.")
@click.option("--input-shape", help="Fix a dynamic input shape, e.g. 1,3,224,224.")
@click.option("--measure", is_flag=True, help="Also measure onnxruntime's RSS (a subprocess).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check(model: Path, target_name: str, input_shape, measure: bool, as_json: bool) -> None:
    """Can ONNX MODEL run on a target? Ops, dtypes, opset, flash/RAM budgets. Exit 1 if not."""
    from edgec.check import run_check

    if not run_check(model, target_name, _shape(input_shape), measure, as_json):
        sys.exit(EXIT_BUDGET)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--input-shape", help="Fix a dynamic input shape, e.g. 1,3,224,224.")
@click.option("--runs", default=20, show_default=True, type=click.IntRange(0),
              help="Profiled inferences (0: only read the graph).")
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON.")
def doctor(model: Path, input_shape, runs: int, as_json: bool) -> None:
    """Explain why quantized ONNX MODEL is (or is not) fast on this CPU, and how to fix it."""
    from edgec.doctor import diagnose, print_diagnosis

    found = diagnose(model, _shape(input_shape), runs)
    if as_json:
        click.echo(json.dumps(found.to_dict(), indent=2))
    else:
        print_diagnosis(found)


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Where to write the metadata (.npz).")
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


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Folder for sensitivity.csv/.json/.png (default: runs/<recipe name>-sensitivity).")
@click.option("--ratios", default="0.25,0.5,0.75", show_default=True,
              help="Fractions of channels (weights) removed from each layer alone, comma-separated.")
@click.option("--max-drop", default=0.01, show_default=True, type=click.FloatRange(0, 1),
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
def schema() -> None:
    """Print the recipe's JSON Schema (for editor completion and validation)."""
    from edgec.recipe import recipe_schema

    click.echo(json.dumps(recipe_schema(), indent=2))


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


@cli.command()
def plugins() -> None:
    """List installed plugins (entry points edgec.passes, edgec.models, edgec.targets)."""
    from edgec.pass_catalog import print_plugins

    print_plugins()


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("compare.md"),
              show_default=True, help="Also write the table here (.md, .csv or .json).")
def compare(runs, output: Path) -> None:
    """Show several run folders side by side (from their report.json files)."""
    from edgec.compare import compare_table, print_comparison, write_comparison

    header, rows = compare_table(list(runs))
    write_comparison(header, rows, output)  # first: a bad file name fails before any output
    print_comparison(header, rows)
    click.echo(f"written to {output}")


def _ask(value: str | None, prompt: str, choices: tuple[str, ...], default: str) -> str:
    """A flag's value; else a prompt on a terminal; else the default (scripts never hang)."""
    if value is not None:
        return value
    if sys.stdin.isatty():
        return click.prompt(prompt, type=click.Choice(choices), default=default)
    return default


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("path", type=click.Path(path_type=Path), default=Path("recipe.yaml"))
@click.option("--model", "model", type=click.Choice(["zoo", "torchvision", "python", "checkpoint"]),
              help="Model source (asked on a terminal; default zoo).")
@click.option("--data", "data", type=click.Choice(["digits", "npz", "imagefolder", "synthetic"]),
              help="Data kind (asked on a terminal; default digits).")
@click.option("--force", is_flag=True, help="Replace an existing file.")
def init(path: Path, model: str | None, data: str | None, force: bool) -> None:
    """Write a commented starter recipe to PATH (default recipe.yaml)."""
    from edgec.init_recipe import write_starter

    model = _ask(model, "Model source", ("zoo", "torchvision", "python", "checkpoint"), "zoo")
    data = _ask(data, "Data", ("digits", "npz", "imagefolder", "synthetic"), "digits")
    write_starter(path, model, data, force)
    click.echo(f"wrote {path} ({model} model, {data} data). Next: edgec validate {path}")


@cli.command(epilog="""
\b
Exit codes:
  0  every device's piece fits its budget; pieces verified against the whole model
  1  a device's budget cannot be met by any split (the device is named)
  2  invalid option, model or recipe
  3  loading, export, or the check of the pieces against the whole model failed
""")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--devices", required=True, type=click.IntRange(1), help="Devices in the chain (K).")
@click.option("--max-params", type=click.IntRange(1), help="Parameters per device.")
@click.option("--max-flash-kb", type=click.FloatRange(0, min_open=True), help="Weight KiB per device.")
@click.option("--max-macs", type=click.IntRange(1), help="Multiply-accumulates per device per inference.")
@click.option("--max-ram-kb", type=click.FloatRange(0, min_open=True),
              help="Peak activation KiB per device (tensors live at one step, an upper bound).")
@click.option("--target", "target_name", metavar="NAME|PATH",
              help="Take --max-flash-kb / --max-ram-kb from a target profile (if not given).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Folder for device_K.onnx and partition.json (default: runs/partition-NAME).")
@click.option("--input-shape", help="Fix a dynamic input shape, e.g. 1,3,224,224.")
@click.option("--link-mbps", type=click.FloatRange(0, min_open=True),
              help="Link speed, to estimate the transfer time per inference.")
@click.option("--json", "as_json", is_flag=True, help="Print partition.json to stdout.")
def partition(model: Path, devices: int, max_params, max_flash_kb, max_macs, max_ram_kb, target_name, output,
              input_shape, link_mbps, as_json: bool) -> None:
    """Split ONNX MODEL (or a recipe's model) layer by layer across --devices devices, each within
    its budget, cutting where the fewest bytes cross between devices."""
    from edgec.partition import budget_with_target, format_plan, partition_model
    from edgec.partition_layerwise import DeviceBudget

    budget = DeviceBudget(max_params=max_params, max_flash_kb=max_flash_kb, max_macs=max_macs,
                          max_ram_kb=max_ram_kb)
    if target_name:
        budget = budget_with_target(budget, target_name)
    out = output or Path("runs") / f"partition-{model.stem}"
    plan = partition_model(model, devices, budget, out, _shape(input_shape), link_mbps)
    if as_json:
        click.echo((out / "partition.json").read_text())
    else:
        click.echo(format_plan(plan))


def main() -> None:
    cli(prog_name="edgec")
