"""Commands on ONNX files: bench, inspect, check, check-budgets, doctor, partition.

Each is a thin layer: parse options, call one library function, print. Registered on the group
by the import at the end of cli.py.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from edgec.cli import (
    _finish,
    _shape,
    ci_options,
    cli,
)
from edgec.cli_errors import errors_as_json, exit_codes_help, json_option
from edgec.errors import EXIT_BUDGET, EdgecError


def _from_options(config_cls, **options):
    """``config_cls(**options)``; a value the config refuses (nan, or past a bound that click's
    range does not repeat) is a usage error naming the option, not an internal error."""
    from pydantic import ValidationError

    from edgec.errors import UsageError
    from edgec.recipe_errors import describe_validation_error

    try:
        return config_cls(**options)
    except ValidationError as exc:
        problems = []
        for problem in describe_validation_error(exc, options, config_cls, {}):
            name, _, rest = problem.partition(":")  # 'max_ram_kb: must be …' → '--max-ram-kb: …'
            problems.append(f"--{name.replace('_', '-')}:{rest}" if name in options else problem)
        raise UsageError("Invalid option:", problems=problems) from None


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and inf: every comparison with nan is false, so a plain
    range lets it through to a silently wrong result ('latency at nan Mbit/s')."""

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value} is not a finite number.", param, ctx)
        return value


@cli.command("check-budgets", epilog=exit_codes_help(
    (0, 1, 2, 3, 130), c0="every budget met", c1="a budget was missed"))
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--budgets", "budgets_file", required=True, type=click.Path(path_type=Path),
              help="YAML with the budgets (a bare mapping, or a recipe with a budgets: section). "
              "Accuracy budgets are skipped: no labelled data is loaded.")
@click.option("--baseline", type=click.Path(path_type=Path),
              help="Reference ONNX model, measured side by side (needed by min_speedup, "
              "min_size_reduction, max_latency_growth).")
@click.option("--input-shape", help="e.g. 1,3,224,224: latency is timed at its batch, MACs stay "
              "per sample (default: the model's own shape, a dynamic batch as 1).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1))
@click.option("--runs", default=200, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=20, show_default=True, type=click.IntRange(0))
@click.option("--min-seconds", type=click.FloatRange(0, 3600),
              help="Keep timing until the rounds span this long (default: 10 when a budget gates "
              "on relative speed, else 0).")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="Override a budget, e.g. --set max_size_kb=150 (repeatable).")
@click.option("--target", "target_name", metavar="NAME|PATH",
              help="Device target (`edgec targets`: mcu, npu, rpi, host, a plugin's) or a profile "
              ".yaml, as in a recipe: decides how RAM is counted (weights in RAM, or read in place "
              "from flash) and adds the profile's budgets where the file sets none. Default: the "
              "target: of a recipe given as --budgets. Operator support: `edgec check --target`.")
@json_option("Print the report as JSON (on failure, an edgec.error/1 object: docs/cli.md).")
@ci_options
def check_budgets_command(model: Path, budgets_file: Path, baseline, input_shape, threads: int,
                          runs: int, warmup: int, min_seconds: float | None, overrides,
                          target_name: str | None, as_json: bool, junit, summary_md, against,
                          fail_on_inconclusive):
    """Gate an existing ONNX MODEL on a budgets file, without re-running compression."""
    from edgec.benchmark import BenchmarkConfig
    from edgec.budget_check import check_onnx, read_budgets, resolve_target
    from edgec.ci_outputs import check_ci_paths, write_failed_ci_outputs
    from edgec.progress import Progress, progress_wanted
    from edgec.regression import load_against

    errors_as_json(as_json)
    title = f"edgec check-budgets {Path(model).name}"
    overrides = (*overrides, "inconclusive=fail") if fail_on_inconclusive else overrides
    try:
        check_ci_paths(junit, summary_md)
        budgets, recipe_target = read_budgets(budgets_file, overrides)
        target = resolve_target(target_name, recipe_target, budgets_file)
        stored = load_against(against) if against else None
        config = _from_options(BenchmarkConfig, threads=threads, runs=runs, warmup=warmup,
                               min_seconds=min_seconds)
        report = check_onnx(model, budgets, config, baseline=baseline,
                            input_shape=_shape(input_shape), against=stored, target=target,
                            progress=Progress(enabled=progress_wanted(as_json)))
    except (EdgecError, KeyboardInterrupt) as exc:  # CI still gets a JUnit file saying why
        write_failed_ci_outputs(exc, None, junit, summary_md, title=title)
        raise
    _finish(report, as_json, junit, summary_md, title=title)


@cli.command(epilog=exit_codes_help((0, 2, 3, 130, 141)))
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--vs", "others", multiple=True, type=click.Path(path_type=Path),
              help="Another ONNX model to measure side by side (repeatable).")
@click.option("--input-shape", help="e.g. 8,3,224,224: latency is timed at its batch, MACs stay "
              "per sample (default: the model's own shape, a dynamic batch as 1).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1))
@click.option("--runs", default=200, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=20, show_default=True, type=click.IntRange(0))
@click.option("--min-seconds", default=0.0, show_default=True, type=FiniteFloat(0, 3600),
              help="Keep timing until the rounds span this long (10+ for stable ratios on a "
              "shared machine).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def bench(model: Path, others, input_shape, threads: int, runs: int, warmup: int,
          min_seconds: float, as_json: bool):
    """Measure ONNX MODEL (and --vs others) side by side, interleaved, on random inputs."""
    from edgec.benchmark import BenchmarkConfig, bench_files
    from edgec.progress import Progress, progress_wanted
    from edgec.report_text import print_metrics

    config = _from_options(BenchmarkConfig, threads=threads, runs=runs, warmup=warmup,
                           min_seconds=min_seconds)
    metrics = bench_files([model, *others], _shape(input_shape), config,
                          progress=Progress(enabled=progress_wanted(as_json)))
    if as_json:
        click.echo(json.dumps({name: m.to_dict() for name, m in metrics.items()}, indent=2))
    else:
        print_metrics(metrics, threads)


@cli.command(epilog=exit_codes_help((0, 2, 3, 141)))
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--input-shape", help="Fix a dynamic input shape, e.g. 1,3,224,224.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def inspect(model: Path, input_shape, as_json: bool) -> None:
    """Show params, MACs/FLOPs and a per-layer table of ONNX MODEL."""
    from edgec.graph_stats import analyze_onnx
    from edgec.report_text import print_layers

    stats = analyze_onnx(model, _shape(input_shape))
    if as_json:
        click.echo(json.dumps(stats.to_dict(), indent=2))
    else:
        print_layers(model, stats)


@cli.command(epilog="""
\b
Exit codes:
  0  the model fits the target (ops, dtypes, opset, flash and RAM budgets)
  1  it does not: each problem is printed with its nodes and a fix
  2  unknown target, invalid profile, unreadable model, or an --input-shape it cannot take
""")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--target", "target_name", required=True, metavar="NAME|PATH",
              help="Built-in or plugin target (`edgec targets`) or the path of a profile .yaml.")
@click.option("--input-shape", help="Fix a dynamic input shape, e.g. 1,3,224,224.")
@click.option("--measure", is_flag=True, help="Also measure onnxruntime's RSS (a subprocess).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check(model: Path, target_name: str, input_shape, measure: bool, as_json: bool) -> None:
    """Can ONNX MODEL run on a target? Ops, dtypes, opset, flash/RAM budgets. Exit 1 if not."""
    from edgec.check import run_check

    if not run_check(model, target_name, _shape(input_shape), measure, as_json):
        sys.exit(EXIT_BUDGET)


@cli.command(epilog=exit_codes_help((0, 2, 3, 130, 141)))
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


@cli.command(epilog="""
\b
Exit codes:
  0  every device's model fits its budget; verified device by device in onnxruntime
  1  a device's budget cannot be met (the device is named)
  2  invalid option, model or recipe
  3  loading, training, export, or the check against the whole model failed
""")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--devices", required=True, type=click.IntRange(1), help="Devices (K).")
@click.option("--method", type=click.Choice(["layerwise", "nonn"]), default="layerwise", show_default=True,
              help="layerwise: cut MODEL (.onnx or recipe) into a chain of pieces; nonn: train one "
              "small student per device from a recipe's model and data, plus a shared head.")
@click.option("--max-params", type=click.IntRange(1), help="Parameters per device.")
@click.option("--max-flash-kb", type=FiniteFloat(0, min_open=True), help="Weight KiB per device.")
@click.option("--max-macs", type=click.IntRange(1), help="Multiply-accumulates per device per inference.")
@click.option("--max-ram-kb", type=FiniteFloat(0, min_open=True),
              help="Peak activation KiB per device (tensors live at one step, an upper bound).")
@click.option("--target", "target_name", metavar="NAME|PATH",
              help="Take --max-flash-kb / --max-ram-kb from a target profile (if not given). Its "
              "operators and data types are not checked: `edgec check device_K.onnx --target` does.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Folder for device_K.onnx and partition.json (default: runs/partition-NAME); "
              "it appears only when the partition succeeds.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@click.option("--input-shape", help="Fix a dynamic input shape, e.g. 1,3,224,224 (layerwise).")
@click.option("--link-mbps", type=FiniteFloat(0, min_open=True),
              help="Link speed, to estimate the latency per inference.")
@click.option("--epochs", type=click.IntRange(1), help="Training epochs of the NoNN students (nonn).")
@click.option("--json", "as_json", is_flag=True, help="Print partition.json to stdout.")
def partition(model: Path, devices: int, method: str, max_params, max_flash_kb, max_macs, max_ram_kb,
              target_name, output, force: bool, input_shape, link_mbps, epochs, as_json: bool) -> None:
    """Distribute MODEL across --devices devices, each within its budget: a layer-wise split
    cutting where the fewest bytes cross, or (--method nonn) a Network of Neural Networks whose
    devices send only a small feature vector."""
    from edgec.partition import partition_into_folder
    from edgec.partition_layerwise import DeviceBudget
    from edgec.progress import Progress, progress_wanted

    budget = _from_options(DeviceBudget, max_params=max_params, max_flash_kb=max_flash_kb,
                           max_macs=max_macs, max_ram_kb=max_ram_kb)
    settings = None
    if method == "nonn":
        from edgec.passes.partition_settings import NonnSettings

        settings = _from_options(NonnSettings, **({"epochs": epochs} if epochs else {}))
    out = output or Path("runs") / f"partition-{model.stem}"
    plan = partition_into_folder(model, devices, budget, out, force, target_name,
                                 input_shape=_shape(input_shape), link_mbps=link_mbps, method=method,
                                 settings=settings, progress=Progress(enabled=progress_wanted(as_json)))
    if as_json:
        click.echo((out / "partition.json").read_text())
    elif method == "nonn":
        from edgec.partition_nonn import format_nonn

        click.echo(format_nonn(plan))
    else:
        from edgec.partition import format_plan

        click.echo(format_plan(plan))
    if not as_json:
        click.echo(f"files in {out}/ (device_K.onnx{', head.onnx' * (method == 'nonn')}, "
                   "partition.json, partition.png)")
