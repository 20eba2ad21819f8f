"""Per-layer pruning sensitivity: how much accuracy a model loses when one layer alone is pruned.

``edgec sensitivity recipe.yaml`` loads the recipe's model and data, prunes each prunable layer
(channel group, or conv/linear weight tensor for unstructured) on its own at a few ratios, with the
settings of the recipe's first channel or unstructured ``prune`` pass (structure, importance,
round_to, ignore; defaults otherwise), and evaluates each result on the eval split without
fine-tuning. Layers whose accuracy barely moves can be pruned hard; layers that collapse belong in
``ignore:``.

The suggestion for a target (``max_drop``): each layer gets the largest tested ratio whose drop
stays within the target and that removes something, or ``ignore`` if none does (``why`` says
which). A ratio that rounds to nothing removed (a quarter of 32 channels at round_to 16) measures
nothing: its +0.0 must not become a suggested entry that does nothing. Single-layer drops do not
add up exactly, so the suggestion is then applied as a whole and measured (accuracy, MACs,
params) — the number printed is the combined one, not a sum of guesses. Outputs and rendering
live in sensitivity_output.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgec.errors import DataError, PassError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import torch.nn as nn

    from edgec.data import Split
    from edgec.passes.prune_config import PruneConfig
    from edgec.progress import Progress
    from edgec.recipe import Recipe

DEFAULT_RATIOS = (0.25, 0.5, 0.75)


# macs/params come from torch-pruning's count on the torch module, where BatchNorm is still a
# layer of its own; the exported ONNX folds it into the convolutions, so edgec inspect and
# report.json count fewer. Said wherever the numbers are shown.
COUNTED = ("the torch module, before export folds BatchNorm into the convolutions: report.json "
           "and edgec inspect count fewer")


@dataclass
class SensitivityResult:
    metric: str  # "accuracy" on labelled eval data, else "agreement" with the unpruned model
    baseline: float
    macs: int  # counted as COUNTED says
    params: int
    structure: str
    importance: str
    ratios: list[float]
    max_drop: float
    rows: list[dict] = field(default_factory=list)  # one per (layer, ratio)
    skipped: dict[str, str] = field(default_factory=dict)  # layer -> why it was not scanned
    suggestion: dict[str, Any] = field(default_factory=dict)
    counted: str = COUNTED

    def to_dict(self) -> dict:
        return asdict(self)

    def layers(self) -> list[str]:
        return list(dict.fromkeys(r["layer"] for r in self.rows))


def run_sensitivity(recipe_path: Path, overrides, output: Path | None, ratios: tuple[float, ...],
                    max_drop: float, force: bool, progress: Progress) -> tuple[SensitivityResult, Path]:
    """The `edgec sensitivity` command: scan, then write the outputs into a run folder."""
    from edgec.api import default_output, resolve_recipe
    from edgec.rundir import RunFolder
    from edgec.sensitivity_output import write_outputs

    recipe, recipe_dir, name = resolve_recipe(recipe_path, overrides)
    cfg = prune_settings(recipe, ratios)
    target = output or Path(f"{default_output(recipe, name)}-sensitivity")
    # refuses an existing folder before any work; no half-written folder that looks like a result
    with RunFolder(target, force, keep_failed=False) as folder:
        result = scan_recipe(recipe, recipe_dir, cfg, ratios, max_drop, progress)
        write_outputs(result, folder.path)
    return result, target


def scan_recipe(recipe: Recipe, recipe_dir: Path, cfg: PruneConfig, ratios: tuple[float, ...],
                max_drop: float, progress: Progress) -> SensitivityResult:
    """Load the recipe's model and data and scan every layer (see the module docstring)."""
    from edgec.data import load_data
    from edgec.models import load_model

    shape = tuple(recipe.model.input_shape)
    progress.log("edgec: load model…")
    model = load_model(recipe.model, recipe_dir, progress=progress).eval()
    progress.log("edgec: load data…")
    data = load_data(recipe.data, shape, recipe_dir)
    if data.eval is None or len(data.eval) == 0:
        raise DataError("sensitivity needs eval data to measure what pruning costs; this recipe's "
                        "data has no eval split.")
    train = None
    if cfg.importance == "taylor":
        from edgec.training import labelled_train_split

        train = labelled_train_split(data, "sensitivity with importance: taylor")
    return scan(model, data.eval, shape, cfg, ratios, max_drop, recipe.seed, progress, train)


def prune_settings(recipe: Recipe, ratios: tuple[float, ...]) -> PruneConfig:
    """The recipe's first prune pass (its amount is irrelevant here), or the defaults."""
    from edgec.passes.prune_config import PruneConfig

    # Per-layer ratios mean channels or weights; a block-pruning pass is not what to scan.
    cfg = next((p for p in recipe.passes if p.type == "prune" and p.structure != "block"), None)
    if cfg is None:
        return PruneConfig(amount=0.5, max_per_layer=max(0.9, max(ratios)))
    if max(ratios) > cfg.max_per_layer:
        raise UsageError(f"--ratios goes up to {max(ratios):g}, above the recipe's prune "
                         f"max_per_layer {cfg.max_per_layer:g}; lower the ratios or raise max_per_layer.")
    return cfg


def scan(model: nn.Module, split: Split, input_shape: tuple[int, ...], cfg: PruneConfig,
         ratios: tuple[float, ...], max_drop: float, seed: int, progress: Progress,
         train: Split | None = None) -> SensitivityResult:
    import torch

    from edgec.passes.prune import PrunePass, _accumulate_gradients
    from edgec.passes.prune_report import measure

    example = torch.randn(1, *input_shape[1:], generator=torch.Generator().manual_seed(seed))
    evaluate = _evaluator(model, split)
    base = measure(model, example)
    engine = PrunePass(cfg)._engine(model, example, seed)
    if cfg.importance == "taylor":
        _accumulate_gradients(model, train, cfg.taylor_samples, seed)
    scores = engine.score(model)
    model.zero_grad(set_to_none=True)
    units = _units(scores, model)
    if not units:
        raise PassError("sensitivity: no layer can be pruned (every conv/linear layer produces the "
                        "model output or is in ignore:).")
    result = SensitivityResult(evaluate.metric, evaluate(model), base["macs"], base["params"],
                               cfg.structure, cfg.importance, sorted(ratios), max_drop)
    plans: dict[tuple[str, float], Any] = {}
    with progress.task("sensitivity scan", total=len(units) * len(ratios)) as advance:
        for name, unit in units.items():
            for ratio in result.ratios:
                advance(layer=name, ratio=ratio)
                try:
                    plan = engine.plan(unit, ratio)
                    pruned = engine.apply(model, scores, plan)
                    engine.check(model, pruned, scores, plan)
                except PassError as exc:  # this ratio empties the layer, or the cut is wrong
                    if ratio == result.ratios[0]:
                        result.skipped[name] = exc.message.removeprefix("prune: ")
                    break
                plans[name, ratio] = plan
                size = measure(pruned, example)
                value = evaluate(pruned)
                result.rows.append({
                    "layer": name, "members": _members(unit), "ratio": ratio,
                    "removed": _removed(plan), "macs": size["macs"], "params": size["params"],
                    "nonzero_params": size["nonzero_params"], result.metric: round(value, 6),
                    "drop": round(result.baseline - value, 6),
                })
    result.suggestion = _suggest(result, engine, model, scores, plans, example, evaluate)
    return result


def _units(scores, model: nn.Module) -> dict[str, Any]:
    """Each prunable unit by name, in model order, in the form the engine's plan() takes: a
    one-group list (channel) or a one-entry dict (unstructured)."""
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    if isinstance(scores, dict):
        units = {name: {name: s} for name, s in scores.items()}
    else:
        units = {g.root: [_without_override(g)] for g in scores}
    return dict(sorted(units.items(), key=lambda kv: order.get(kv[0], len(order))))


def _without_override(group):
    import copy

    g = copy.copy(group)
    g.ratio = None  # the recipe's per-layer entries must not replace the scanned ratio
    return g


def _members(unit) -> list[str]:
    return list(unit) if isinstance(unit, dict) else list(unit[0].members)


def _removed(plan) -> int:
    return sum(len(v) for v in plan.remove.values())


def _suggest(result: SensitivityResult, engine, model, scores, plans, example, evaluate) -> dict:
    from edgec.passes.prune_report import measure
    from edgec.passes.prune_structured import Plan

    layers, ignore, why = {}, sorted(result.skipped), {}
    for name in result.layers():
        rows = [r for r in result.rows if r["layer"] == name]
        ok = [r["ratio"] for r in rows if r["drop"] <= result.max_drop and r["removed"] > 0]
        if ok:
            layers[name] = max(ok)
        else:
            ignore.append(name)
            why[name] = _why_ignored(result, rows)
    suggestion: dict[str, Any] = {"max_drop": result.max_drop, "layers": layers, "ignore": ignore,
                                  "why": why}
    if not layers:
        return suggestion
    merged = Plan({k: v for name, r in layers.items() for k, v in plans[name, r].remove.items()}, ())
    try:
        pruned = engine.apply(model, scores, merged)
    except PassError as exc:  # should not happen: each part applied on its own
        suggestion["error"] = exc.message
        return suggestion
    size = measure(pruned, example)
    value = evaluate(pruned)
    suggestion.update(macs=size["macs"], params=size["params"], nonzero_params=size["nonzero_params"],
                      **{result.metric: round(value, 6)}, drop=round(result.baseline - value, 6))
    return suggestion


def _why_ignored(result: SensitivityResult, rows: list[dict]) -> str:
    """Why a scanned layer gets no ratio: each tested one drops too much, or removes nothing."""
    unit = "channel" if result.structure == "channel" else "weight"
    empty = [f"{r['ratio']:g}" for r in rows if r["removed"] == 0]
    cut = [r for r in rows if r["removed"] > 0]
    said = []
    if empty:
        rounding = " (channels go in multiples of round_to)" if unit == "channel" else ""
        said.append(f"ratio {', '.join(empty)} removes no {unit}{rounding}")
    if cut:
        said.append(f"{'every' if not empty else 'every other'} tested ratio drops more than "
                    f"{result.max_drop * 100:g} point(s)")
    return "; ".join(said)


class _Evaluator:
    """Top-1 accuracy on labelled data; otherwise top-1 agreement with the unpruned model."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None, metric: str):
        self.x, self.y, self.metric = x, y, metric

    def __call__(self, model: nn.Module) -> float:
        return float((_predict(model, self.x) == self.y).mean())


def _evaluator(model: nn.Module, split: Split) -> _Evaluator:
    if split.y is not None:
        return _Evaluator(split.x, split.y, "accuracy")
    return _Evaluator(split.x, _predict(model, split.x), "agreement")


def _predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    import numpy as np
    import torch

    model.eval()
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i:i + 256])).argmax(1).numpy()
                               for i in range(0, len(x), 256)])


def parse_ratios(text: str) -> tuple[float, ...]:
    try:
        values = tuple(sorted({float(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        values = ()
    if not values or not all(0 < v < 1 for v in values):
        raise UsageError(f"--ratios '{text}': expected fractions between 0 and 1, e.g. 0.25,0.5,0.75.")
    return values
