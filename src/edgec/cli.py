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
  130 interrupted (Ctrl-C); completed artifacts are kept
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
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; completed artifacts were kept.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if _debug(ctx):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {exc}\nThis is a bug in edgec, not in "
                "your recipe. Re-run with --debug for the traceback and report it.", err=True,
            )
            ctx.exit(EXIT_RUNTIME)


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


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Run folder (default: the recipe's output.dir, else runs/<recipe name>).")
@_set_option
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or status lines.")
def compress(recipe: Path, output: Path | None, overrides, force: bool, as_json: bool, quiet: bool):
    """Run RECIPE: load, compress, export, benchmark, report."""
    from edgec.api import default_output, resolve_recipe
    from edgec.pipeline import run_recipe
    from edgec.progress import Progress, progress_wanted
    from edgec.report_text import print_console

    parsed, recipe_dir, name = resolve_recipe(recipe, overrides)
    target = output or default_output(parsed, name)
    progress = Progress(enabled=progress_wanted(quiet), verbose=not quiet)
    report = run_recipe(parsed, recipe_dir=recipe_dir, output=target, force=force, progress=progress)
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


def main() -> None:
    cli(prog_name="edgec")
