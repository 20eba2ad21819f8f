"""`edgec check-budgets`: gate an existing ONNX model on a budgets file, without compressing.

For pipelines that produce the model elsewhere (or cached it): the same measurements as a run
(benchmark.bench_files → graph stats, size, interleaved latency) and the same budget rows
(budgets.check_budgets; memory estimated as device.py does for a run, for the same target), in a
Report so the CI outputs (JUnit, summary) are identical to compress.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import RecipeError, UsageError, not_a_file

if TYPE_CHECKING:
    from edgec.benchmark import BenchmarkConfig
    from edgec.recipe import BudgetsConfig
    from edgec.report import Report
    from edgec.targets import TargetProfile

NEEDS_BASELINE = ("min_speedup", "min_size_reduction", "max_accuracy_drop")
MEMORY_BUDGETS = ("max_flash_kb", "max_ram_kb", "max_peak_activation_kb")


def load_budgets(path: Path, overrides: tuple[str, ...] = ()) -> BudgetsConfig:
    """A budgets file: either a bare mapping of budgets, or a recipe with a `budgets:` section."""
    return read_budgets(path, overrides)[0]


def read_budgets(path: Path, overrides: tuple[str, ...] = ()) -> tuple[BudgetsConfig, str | None]:
    """The budgets of a file, and the `target:` it names when it is a recipe (else None)."""
    from pydantic import ValidationError

    from edgec.recipe import BudgetsConfig
    from edgec.recipe_errors import describe_validation_error
    from edgec.recipe_yaml import apply_overrides, lines_with_overrides, parse_yaml

    path = Path(path)
    example = "Give a YAML file such as 'max_size_kb: 200' (or a recipe with a budgets: section)."
    if not path.exists() or path.is_dir():  # a pipe (--budgets <(...), /dev/stdin) is fine
        what = not_a_file(path)
        raise UsageError(f"Budgets file '{path}' {what}. {example}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Cannot read budgets file '{path}': {exc}. {example}") from None
    raw, lines = parse_yaml(text, str(path))
    target = None
    if isinstance(raw, dict) and isinstance(raw.get("budgets"), dict):
        target = raw.get("target") if isinstance(raw.get("target"), str) else None
        raw, lines = raw["budgets"], {k[1:]: v for k, v in lines.items() if k[:1] == ("budgets",)}
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a mapping of budgets, e.g. 'max_size_kb: 200'.")
    applied = [o.removeprefix("budgets.") for o in overrides]
    # the recipe's example (passes.0...) would mislead for a budgets file
    raw = apply_overrides(raw, applied, shown=overrides,
                          example="--set max_size_kb=200 or --set budgets.min_speedup=1.2")
    # a value from --set is blamed on that option, not on the line of the value it replaced
    lines = lines_with_overrides(lines, applied, shown=[f"--set {o}" for o in overrides])
    try:
        return BudgetsConfig.model_validate(raw), target
    except ValidationError as exc:
        problems = describe_validation_error(exc, raw, BudgetsConfig, lines)
        where = f"{path}" + (" with --set" if overrides else "")
        raise RecipeError(f"{where}: invalid budgets:", problems=problems) from None


def resolve_target(option: str | None, from_file: str | None, budgets_file: Path
                   ) -> TargetProfile | None:
    """--target (a name, or a profile path from the working folder, as `edgec check` takes it),
    else the target a recipe given as --budgets names (a path from the recipe's folder, as
    compress resolves it); loaded now, before any work. UsageError names the known targets."""
    from edgec.targets import load_target

    if option is None and from_file is None:
        return None
    origin, name, base = (("--target", option, Path.cwd()) if option is not None else
                          (f"{budgets_file}: target", from_file, Path(budgets_file).parent))
    try:
        return load_target(name, base)
    except RecipeError as exc:
        raise UsageError(f"{origin}: {exc.message}", hint=exc.hint) from None


def check_onnx(
    model: Path, budgets: BudgetsConfig, config: BenchmarkConfig, *,
    baseline: Path | None = None, input_shape: tuple[int, ...] | None = None,
    against: dict | None = None, target: TargetProfile | None = None, progress=None,
) -> Report:
    """Measure ``model`` (side by side with ``baseline`` if given) and check ``budgets``, plus
    the ``target``'s where the budgets set none, its memory counted as compress counts it."""
    import time

    from edgec.benchmark import bench_files, ratios, resolve_min_seconds
    from edgec.budgets import check_budgets
    from edgec.device import mark_target_rows, merge_budgets
    from edgec.environment import collect_environment
    from edgec.regression import apply_against
    from edgec.report import Report

    budgets, from_target = merge_budgets(budgets, target)  # the file wins, as the recipe does
    active, regression = budgets.active(), budgets.regression()
    if not active and not (regression and against is not None):
        raise UsageError("The budgets file sets no budget; nothing would be checked." if not regression
                         else f"The budgets file sets only regression budgets ({', '.join(regression)}), "
                         "which compare with a stored report; without --against nothing would be "
                         "checked.", hint="Pass --against main-report.json, or set e.g. max_size_kb: 200.")
    if against is not None and "max_accuracy_loss" in regression:
        raise UsageError("budgets.max_accuracy_loss needs labelled evaluation data, which "
                         "check-budgets does not load.", hint="Gate accuracy in `edgec compress`, "
                         "or remove it from the budgets file.")
    if against is not None and "max_latency_growth" in regression and baseline is None:
        raise UsageError("budgets.max_latency_growth compares speed-ups over a baseline model, "
                         "measured side by side.", hint="Pass --baseline baseline.onnx.")
    labelled = [k for k in budgets.needs_labels if k in active]
    if labelled:
        raise UsageError(f"budgets.{labelled[0]} needs labelled evaluation data, which "
                         "check-budgets does not load.", hint="Gate accuracy in `edgec compress`, "
                         "or remove it from the budgets file.")
    relative = [k for k in NEEDS_BASELINE if k in active]
    if relative and baseline is None:
        raise UsageError(f"budgets.{relative[0]} compares with a baseline model.",
                         hint="Pass --baseline baseline.onnx (measured side by side, interleaved).")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    config = resolve_min_seconds(config, budgets)
    paths = [Path(model)] + ([Path(baseline)] if baseline else [])
    metrics = list(bench_files(paths, input_shape, config, progress=progress).values())
    comp = metrics[0]
    base = metrics[1] if baseline else None
    report = Report(recipe={"budgets": budgets.model_dump(mode="json"),
                            "benchmark": config.model_dump(mode="json"),
                            "model": {"source": "onnx", "path": str(model)}},
                    environment=collect_environment(config.threads, 0), started=started,
                    baseline=base, compressed=comp)
    report.ratios = ratios(base, comp) if base else {}
    memory = None
    if any(k in active for k in MEMORY_BUDGETS):  # estimated as compress does (device.py)
        from edgec.device import memory_record

        # the target decides whether the weights count in RAM (TFLite Micro reads them in place
        # from flash): without it the same model failed here a RAM budget it met in compress
        in_ram = target.weights_in_ram if target else True
        memory = {"baseline": memory_record(Path(baseline), input_shape, in_ram)} if baseline else {}
        memory["compressed"] = memory_record(Path(model), input_shape, in_ram)
    if memory or target:
        report.device = {"target": target.model_dump() if target else None, "checks": [],
                         "memory": memory or {}}
    rows = check_budgets(budgets, base or comp, comp, report.ratios,
                         memory=memory["compressed"] if memory else None)
    report.budgets = mark_target_rows(rows, from_target, target)
    apply_against(report, against, budgets)
    report.seconds = round(time.perf_counter() - t0, 2)
    return report
