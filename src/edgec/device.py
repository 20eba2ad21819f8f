"""The device side of a run: target op checks between stages, memory per model, device budgets.

The pipeline calls one ``DeviceStage`` method at each point (before compression, after each step,
at the benchmark); everything it finds goes into ``report.device`` (a plain dict in report.json):
  target  the profile (or null), checks  one op-support check per stage, memory  per model.
Op problems stop the run (``TargetError``, exit 3 like any failed step: work was done and stays in
the .partial folder) as soon as a stage produces them; a dtype problem waits while a later pass
(quantize) can still change dtypes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import EdgecError

if TYPE_CHECKING:
    from edgec.benchmark import Metrics
    from edgec.budgets import BudgetRow
    from edgec.recipe import BudgetsConfig, Recipe
    from edgec.targets import TargetProfile

# Pass types that change the dtypes ops compute in; other helpers' qat pass writes QDQ int8 too.
DTYPE_PASSES = {"quantize", "qat"}


class TargetError(EdgecError):
    """The model (as the recipe produces it) cannot run on the recipe's target. A failed step
    (exit 3), not an invalid recipe (exit 2 promises nothing ran); --resume cannot help, as the
    same recipe fails the same check: the recipe must change."""

    resumable = False


class DeviceStage:
    def __init__(self, recipe: Recipe, recipe_dir: Path, workdir: Path, record: dict):
        from edgec.targets import load_target

        self.recipe, self.workdir, self.record = recipe, workdir, record
        self.input_shape = tuple(recipe.model.input_shape)
        self.target: TargetProfile | None = (
            load_target(recipe.target, recipe_dir) if recipe.target else None)
        record.update(target=self.target.model_dump() if self.target else None, checks=[], memory={})

    def before_compression(self, baseline_onnx: Path) -> None:
        """Check the exported baseline now, before any (slow) pass runs."""
        self.after_step("baseline (before compression)", baseline_onnx, [p.type for p in self.recipe.passes])

    def after_step(self, step: str, path: Path, remaining_passes: list[str]) -> None:
        """Check the ONNX model a step produced; raises TargetError on a problem that is final."""
        if self.target is None:
            return
        from edgec.opcheck import check_model

        result = check_model(path, self.target, self.input_shape)
        dtype_pending = any(t in DTYPE_PASSES for t in remaining_passes)
        fatal = result.only("op", "opset") + ([] if dtype_pending else result.only("dtype"))
        self.record["checks"].append({"step": step, **result.to_dict(), "fatal": bool(fatal)})
        if fatal:
            shown = dataclasses.replace(result, problems=fatal)
            raise TargetError(
                f"After step '{step}', the model cannot run on target '{self.target.name}' "
                f"({self.target.description or self.target.runtime}).\n{shown.summary()}",
                hint="Apply the suggested fix in the recipe or model, or check the model with "
                "`edgec check MODEL.onnx --target NAME` while you iterate.",
            )

    def budget_rows(self, budgets: BudgetsConfig, base: Metrics, comp: Metrics, ratios: dict
                    ) -> list[BudgetRow]:
        """Estimate (and with a target, measure) memory; recipe budgets then the target's."""
        from edgec.budgets import check_budgets

        memory = self.record["memory"] = {
            "baseline": self._memory(Path(base.path)), "compressed": self._memory(Path(comp.path))}
        merged, from_target = merge_budgets(budgets, self.target)
        rows = check_budgets(merged, base, comp, ratios, memory=memory["compressed"])
        return mark_target_rows(rows, from_target, self.target)

    def _memory(self, path: Path) -> dict:
        from edgec.memory_probe import measure_memory

        out = memory_record(path, self.input_shape,
                            weights_in_ram=self.target.weights_in_ram if self.target else True)
        if self.target is not None:  # a subprocess per model: only when a device is in question
            out["measured"] = measure_memory(path, self.input_shape, arena=False,
                                             threads=self.recipe.benchmark.threads)
        return out


def memory_record(path: Path, input_shape: tuple[int, ...] | None, weights_in_ram: bool = True
                  ) -> dict:
    """One model's estimated memory, as report.json records it and the memory budgets read it
    (flash_kb, ram_kb, peak_activation_kb); the same for compress and check-budgets."""
    from edgec.memory import estimate_memory

    estimate = estimate_memory(path, input_shape)
    return {"estimate": estimate.to_dict(), "weights_in_ram": weights_in_ram,
            "flash_kb": Path(path).stat().st_size / 1024,
            "ram_kb": estimate.ram_bytes(weights_in_ram) / 1024,
            "peak_activation_kb": estimate.peak_activation_bytes / 1024}


def merge_budgets(budgets: BudgetsConfig, target: TargetProfile | None
                  ) -> tuple[BudgetsConfig, set[str]]:
    """The recipe's budgets plus the target's where the recipe sets none (the recipe wins)."""
    if target is None:
        return budgets, set()
    extra = {k: v for k, v in target.budgets().items() if getattr(budgets, k) is None}
    return budgets.model_copy(update=extra), set(extra)


def mark_target_rows(rows: list[BudgetRow], from_target: set[str], target: TargetProfile | None
                     ) -> list[BudgetRow]:
    """Rows whose limit came from the target profile say so (source 'target <name>')."""
    if target is None:
        return rows
    return [dataclasses.replace(r, source=f"target {target.name}") if r.name in from_target else r
            for r in rows]


def markdown_lines(device: dict) -> list[str]:
    """The 'Device' section of report.md."""
    target, memory = device.get("target"), device.get("memory") or {}
    if not target and not memory:
        return []
    lines = ["## Device", ""]
    if target:
        lines += [f"Target `{target['name']}`: {target['description']} ({target['runtime']}); "
                  f"weights {'in RAM' if target['weights_in_ram'] else 'read in place from flash'}.",
                  ""]
    for check in device.get("checks", []):
        verdict = "ok" if check["ok"] else f"{len(check['problems'])} problem(s)" + (
            "" if check["fatal"] else " left for a later pass (quantize) to fix")
        lines.append(f"- op check after {check['step']}: {verdict}")
        lines += [f"  - {p['message']}" + (f"; fix: {p['fix']}" if p["fix"] else "")
                  for p in check["problems"]]
    if memory:
        lines += ["", "| memory | " + " | ".join(memory) + " |", "|---|" + "---|" * len(memory)]
        rows = [("flash (model file)", lambda m: f"{m['flash_kb']:,.1f} KiB"),
                ("weights", lambda m: f"{m['estimate']['weight_bytes'] / 1024:,.1f} KiB"),
                ("peak activations (estimated)", lambda m: f"{m['peak_activation_kb']:,.1f} KiB"),
                ("RAM (estimated)", lambda m: f"{m['ram_kb']:,.1f} KiB"),
                ("peak at layer", lambda m: f"`{m['estimate']['peak_node']}` "
                                           f"({m['estimate']['peak_op']})"),
                ("inference RSS growth (measured)", _measured_text),
                ("measured / estimated", _measured_ratio),
                ("session load RSS growth (measured)", lambda m: _measured_text(m, "load_peak_bytes"))]
        for label, fmt in rows:
            lines.append(f"| {label} | " + " | ".join(fmt(m) for m in memory.values()) + " |")
        lines += ["", "Estimates: liveness over the graph's execution order at the recipe's input "
                  "shape, QDQ folded as an int8 runtime runs it, in-place element-wise ops and "
                  "views sharing their input's buffer. Measured: onnxruntime in a subprocess, "
                  "memory arena and memory pattern off, peak RSS above the pre-run RSS. The "
                  "estimate counts activation tensors only: onnxruntime's int8 kernels add int32 "
                  "accumulator and im2col scratch on top (resnet18 int8: 5.9 MB measured vs 1.0 MB "
                  "of int8 activations), so for QDQ models on onnxruntime it is a lower bound."]
    return [*lines, ""]


def _measured_ratio(m: dict) -> str:
    measured, est = m.get("measured") or {}, m["estimate"]["peak_activation_bytes"]
    if not measured.get("available") or measured["inference_below_noise"] or not est:
        return "n/a"
    return f"{measured['inference_peak_bytes'] / est:.2f}x"


def _measured_text(m: dict, key: str = "inference_peak_bytes") -> str:
    measured = m.get("measured")
    if not measured:
        return "not measured (no target)"
    if not measured.get("available"):
        return f"unavailable: {measured['reason']}"
    value = measured[key]
    if key == "inference_peak_bytes" and measured["inference_below_noise"]:
        return f"below the noise floor ({measured['noise_floor_bytes'] / 2**20:.0f} MiB)"
    return f"{value / 1024:,.0f} KiB"
