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

NEEDS_BASELINE = ("min_speedup", "min_size_reduction")  # max_accuracy_drop too, but it is skipped
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
    if _is_recipe(raw):
        target = raw.get("target") if isinstance(raw.get("target"), str) else None
        if raw.get("budgets") is None and not _sets_a_budget(overrides):
            what = "'s budgets: section is empty" if "budgets" in raw else " has no budgets: section"
            raise RecipeError(f"{path}: this recipe{what}, so there is nothing to check.",
                hint="Add one, e.g. 'budgets: {max_size_kb: 200}', or set one with "
                "--set budgets.max_size_kb=200.")
        raw = {} if raw.get("budgets") is None else raw["budgets"]  # None: --set gives them
        lines = {k[1:]: v for k, v in lines.items() if k[:1] == ("budgets",)}
        if not isinstance(raw, dict):
            raise RecipeError(f"{path}: budgets: is {type(raw).__name__}, expected a mapping of "
                              "budgets, e.g. 'budgets: {max_size_kb: 200}'.")
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


def _is_recipe(raw) -> bool:
    """A recipe (its budgets: section is read), not a bare mapping of budgets: it has a budgets:
    key, or recipe keys (version, model, ...) and no budget (then an unknown key is a typo)."""
    from edgec.recipe import BudgetsConfig, Recipe

    if not isinstance(raw, dict):
        return False
    return "budgets" in raw or (bool(set(raw) & set(Recipe.model_fields))
                                and not set(raw) & set(BudgetsConfig.model_fields))


def _sets_a_budget(overrides: tuple[str, ...]) -> bool:
    """Whether a --set names a budget, not only a setting (--fail-on-inconclusive adds one)."""
    settings = {"latency_percentile", "speedup_confidence", "inconclusive"}
    return any(o.split("=", 1)[0].removeprefix("budgets.").split(".")[0] not in settings
               for o in overrides)


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
    # accuracy needs labelled data, which check-budgets never loads: skipped with the reason, with
    # or without --against, so a recipe (they all set one) works as --budgets, and a CI gate that
    # passed on main (no --against) does not refuse the same file on every pull request
    unmeasured = {k: getattr(budgets, k) for k in budgets.needs_labels}
    checked = budgets.model_copy(update=dict.fromkeys(unmeasured))
    refuse_undecidable(checked, unmeasured, against is not None, baseline is not None)
    active = checked.active()
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
    rows = check_budgets(checked, base or comp, comp, report.ratios,
                         memory=memory["compressed"] if memory else None)
    report.budgets = mark_target_rows(rows, from_target, target)
    apply_against(report, against, checked)
    _skip_accuracy(report, unmeasured)
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def refuse_undecidable(budgets: BudgetsConfig, unmeasured: dict, against: bool, baseline: bool
                       ) -> None:
    """UsageError, before any work, when the command line cannot decide ``budgets`` (accuracy
    budgets, ``unmeasured``, already taken out): nothing left to check, or a gate without the
    --baseline it compares with. Judged alike with and without --against, so a CI gate that
    passes on main's first run (no stored report yet) does not refuse every pull request."""
    active, regression = budgets.active(), budgets.regression()
    if not active and not (regression and against):
        measured = "e.g. max_size_kb: 200 (in the file, or --set max_size_kb=200)"
        if regression:  # and no --against
            raise UsageError(f"The budgets file sets only regression budgets ({', '.join(regression)}), "
                             "which compare with a stored report; without --against nothing would be "
                             "checked.", hint=f"Pass --against main-report.json, or also set {measured}:"
                             " a first run, with no stored report yet, then checks that.")
        if unmeasured:
            raise UsageError(f"The budgets file sets only accuracy budgets ({', '.join(unmeasured)}), "
                             "which need labelled evaluation data: check-budgets loads none, so "
                             "nothing would be checked.", hint="Gate accuracy in `edgec compress`, "
                             f"or also set a budget check-budgets measures, {measured}.")
        raise UsageError("The budgets file sets no budget; nothing would be checked.",
                         hint=f"Set one, {measured}" + (", or max_size_growth: 0.05 to compare "
                                                         "with the --against report." if against
                                                         else "."))
    if "max_latency_growth" in regression and not baseline:  # refused without --against too
        raise UsageError("budgets.max_latency_growth compares speed-ups over a baseline model, "
                         "measured side by side.", hint="Pass --baseline baseline.onnx (asked for "
                         "without --against too: the same command then works before and after "
                         "main has a stored report).")
    relative = [k for k in NEEDS_BASELINE if k in active]
    if relative and not baseline:
        raise UsageError(f"budgets.{relative[0]} compares with a baseline model.",
                         hint="Pass --baseline baseline.onnx (measured side by side, interleaved).")


NO_ACCURACY = "check-budgets loads no labelled evaluation data; `edgec compress` gates accuracy"


def _skip_accuracy(report: Report, unmeasured: dict) -> None:
    """The accuracy budgets as skipped rows (a skipped JUnit case: visible, not failed)."""
    from edgec.budgets import BudgetRow
    from edgec.recipe import REGRESSION_BUDGETS

    if not unmeasured:
        return
    report.findings.append(f"Accuracy budgets ({', '.join(unmeasured)}) were not checked: "
                           f"{NO_ACCURACY}.")
    report.budgets += [BudgetRow(name, float(limit), None, True,
                                 "fraction" if name in REGRESSION_BUDGETS else "", "skipped",
                                 note=NO_ACCURACY) for name, limit in unmeasured.items()]
