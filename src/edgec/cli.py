"""The command line: parse arguments and delegate; cli_errors.py turns errors into messages and
exit codes.

No logic lives here. Heavy libraries are imported inside the commands, so `edgec --help` is instant.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from edgec import __version__
from edgec.cli_errors import EXIT_CODES_HELP, EdgecGroup, errors_as_json, exit_codes_help, json_option
from edgec.errors import (
    EXIT_BUDGET,
    EXIT_PIPE,
    EdgecError,
    UsageError,
)

COMPRESS_EXIT_CODES = exit_codes_help(
    (0, 1, 2, 3, 130), c0="success, every budget met",
    c3="runtime failure: loading, a pass, export or benchmarking failed",
    c130="interrupted (Ctrl-C, SIGTERM); completed steps are kept (--resume)")


@click.group(
    cls=EdgecGroup, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]}
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


summary_md_option = click.option(
    "--summary-md", type=click.Path(path_type=Path),
    help="Write a Markdown summary for a CI job page (also appended to $GITHUB_STEP_SUMMARY when "
    "that is set; once, if it is that file).")

_ci_options = [
    click.option("--junit", type=click.Path(path_type=Path),
                 help="Write JUnit XML: one test case per budget (for CI test reports)."),
    summary_md_option,
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


@cli.command(epilog=COMPRESS_EXIT_CODES)
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Run folder (default: the recipe's output.dir, else runs/<recipe name>).")
@_set_option
@click.option("--force", is_flag=True, help="Replace an existing run folder.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted or failed run from its last completed step.")
@json_option("Print report.json to stdout (on failure, an edgec.error/1 object: docs/cli.md).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or status lines.")
@click.option("--target", "target_name", metavar="NAME|PATH",
              help="Device target (mcu, npu, rpi, host, a plugin's profile — see `edgec targets` — or a "
              "profile .yaml); same as --set target=NAME.")
@click.option("--mlflow", "use_mlflow", is_flag=True,
              help="Log to MLflow (as an empty mlflow: section would; needs edgec[mlflow]).")
@ci_options
def compress(recipe: Path, output: Path | None, overrides, force: bool, resume: bool, as_json: bool,
             quiet: bool, target_name: str | None, use_mlflow: bool, junit, summary_md, against,
             fail_on_inconclusive):
    """Run RECIPE: load, compress, export, benchmark, report."""
    from edgec.api import default_output, resolve_recipe
    from edgec.ci_outputs import check_ci_paths, write_failed_ci_outputs
    from edgec.pipeline import run_recipe
    from edgec.progress import Progress, progress_wanted
    from edgec.regression import load_against

    errors_as_json(as_json)
    overrides = (*overrides, "budgets.inconclusive=fail") if fail_on_inconclusive else overrides
    overrides = (*overrides, f"target={target_name}") if target_name else overrides
    target = None
    try:
        check_ci_paths(junit, summary_md)
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
    _finish(report, as_json, junit, summary_md)


def _finish(report, as_json: bool, junit=None, summary_md=None, title: str = "edgec") -> None:
    """Print the report, write the CI files, and exit 1 when a budget was missed. The verdict
    is printed first: a CI file that cannot be written (a disk that filled up during the run)
    then fails the command (exit 3) without hiding what the gate decided."""
    from edgec.ci_outputs import write_ci_outputs
    from edgec.console import stdout_gone
    from edgec.errors import OutputError
    from edgec.report_text import print_console

    missed = [b.missed_text() for b in report.budgets if not b.passed]
    try:
        if as_json:
            click.echo(report.to_json())
            errors_as_json(False)  # stdout holds the report: a later error is said on stderr only
        else:
            print_console(report)
    except BrokenPipeError:  # `edgec compress … | head`: the CI files and the verdict still count
        stdout_gone()
    try:  # on stderr, which a reader of stdout that left does not close
        if missed:
            click.echo(f"budget missed: {', '.join(missed)}", err=True)
    except BrokenPipeError:  # `2>&1 | head`: the exit code still says it
        stdout_gone(also_stderr=True)
    try:
        write_ci_outputs(report, junit, summary_md, title=title)
    except OutputError as exc:
        verdict = "budget missed" if missed else "every budget met"
        raise OutputError(exc.message, hint=f"The gate's verdict above stands ({verdict}); only "
                          "this file is missing. Free space or fix the path, then re-run.") from None
    if missed:
        sys.exit(EXIT_BUDGET)


@cli.command(epilog=exit_codes_help((0, 2), c0="the recipe is valid"))
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


@cli.command()
def schema() -> None:
    """Print the recipe's JSON Schema (for editor completion and validation)."""
    from edgec.recipe import recipe_schema

    click.echo(json.dumps(recipe_schema(), indent=2))


# Commands live in topic modules; importing them registers them on the group above.
from edgec import cli_models, cli_workflows  # noqa: E402, F401


def main() -> None:
    try:
        cli(prog_name="edgec", standalone_mode=True)
    except SystemExit as done:
        _exit_without_teardown(done.code)
        raise


def _exit_without_teardown(code) -> None:
    """Exit as soon as the work is saved. Python's own exit then tears down every module and
    object, which took 1.1-1.4 s here once torch and onnxruntime were loaded (a quickstart compress
    is 4 s in all). Run the atexit hooks (multiprocessing, Ray, MLflow, temp-dir cleanup), flush
    the streams and leave; fall back to a normal exit if a non-daemon thread is still working."""
    import atexit
    import threading

    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        return
    status = code if isinstance(code, int) else (0 if code is None else 1)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # what SystemExit("message") would have printed
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or EXIT_PIPE  # output lost (closed pipe): do not claim success
    os._exit(status)
