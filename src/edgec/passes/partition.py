"""Distribute the model across several small devices (``type: partition``), each within its budget.

Two methods, as in `edgec partition`: ``nonn`` trains one small student per device from the
current model (the teacher) plus a shared head, so devices exchange only a pooled feature vector;
``layerwise`` cuts the current model into a chain of pieces where the fewest bytes cross.

The result is several models, one per device, which the single-model flow after this pass (one
export, one benchmark, ONNX passes) has no place for. So the pass writes the partition into the
run folder, ``<run>/<label or partition>/`` (device_K.onnx, head.onnx for NoNN, partition.json,
partition.png), records per-device costs and traffic in the report, and hands the model on
unchanged: the rest of the recipe still compresses and measures the single model, and both can
be compared in one report. A device whose budget cannot be met stops the run as a failed pass
(exit 3), naming the device and what would fit: not exit 1, which promises a finished run with
its report, nor a --resume, as the same recipe fails the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from edgec.errors import BudgetError, PassError, RecipeError
from edgec.partition_budget import DeviceBudget
from edgec.passes.base import PassConfig, PassContext, TorchPass
from edgec.passes.partition_settings import NonnSettings
from edgec.passes.registry import register_pass

if TYPE_CHECKING:
    import torch.nn as nn


class PartitionError(PassError):
    """The partition cannot be made with this recipe's pass settings (a device too small, more
    devices than layers). Known only once the model reaches the pass (earlier passes change it),
    so a failed step (exit 3), not a refused recipe; --resume would fail the same way."""

    resumable = False


class PartitionConfig(PassConfig):
    type: Literal["partition"] = "partition"
    devices: int = Field(ge=1, le=64, description="How many devices share the work (K).")
    method: Literal["nonn", "layerwise"] = Field(
        "nonn", description="nonn: one small student per device, trained from the model, plus a "
        "shared head (devices send only a feature vector); layerwise: cut the model into a chain "
        "of K pieces (activations cross at every cut).")
    budget: DeviceBudget = Field(default_factory=DeviceBudget,
                                 description="Limits of every device (unless budgets: is given).")
    budgets: list[DeviceBudget] | None = Field(
        None, description="One budget per device, in device order (instead of budget:).")
    target: str | None = Field(
        None, description="Target profile (built-in name or path of a profile YAML) whose flash "
        "and RAM budgets fill the per-device limits not given.")
    link_mbps: float | None = Field(None, gt=0, description="Link speed between devices, Mbit/s, "
                                    "to estimate the latency of one inference.")
    nonn: NonnSettings = Field(default_factory=NonnSettings,
                               description="How the NoNN students are trained (method: nonn).")

    @model_validator(mode="after")
    def _one_budget_per_device(self) -> PartitionConfig:
        if self.method == "layerwise" and "nonn" in self.model_fields_set:
            raise ValueError("nonn: settings only apply to method: nonn; remove them or set method: nonn")
        if self.budgets is not None:
            if len(self.budgets) != self.devices:
                raise ValueError(f"budgets lists {len(self.budgets)} devices but devices is "
                                 f"{self.devices}; give one budget per device")
            if "budget" in self.model_fields_set:
                raise ValueError("give either budget: (every device) or budgets: (one per device)")
        unlimited = [k + 1 for k, b in enumerate(self.budgets or [self.budget] * self.devices)
                     if all(v is None for v in b.model_dump().values())]
        if self.method == "nonn" and unlimited and not self.target:
            # a student is as wide as its device allows: without a limit there is no width to pick
            which = ("every device" if len(unlimited) == self.devices
                     else f"device(s) {', '.join(map(str, unlimited))}")
            raise ValueError(f"method: nonn sizes each student to its device's budget, but {which} "
                             "has none; set budget: (or budgets:) with max_params, max_flash_kb, "
                             "max_macs or max_ram_kb, or a target:")
        return self

    def data_requirement(self) -> str | None:
        if self.method == "nonn" and self.nonn.data == "real":
            return "training data for the NoNN students (set data: synthetic to train them data-free)"
        return None

    def device_budgets(self, base_dir: Path) -> list[DeviceBudget]:
        from edgec.partition import budget_with_target

        budgets = self.budgets or [self.budget] * self.devices
        if self.target:
            budgets = [budget_with_target(b, self.target, base_dir) for b in budgets]
        return budgets


@register_pass
class PartitionPass(TorchPass):
    name = "partition"
    Config = PartitionConfig

    def apply(self, model: nn.Module, ctx: PassContext) -> nn.Module:
        cfg: PartitionConfig = self.config  # type: ignore[assignment]
        folder = ctx.run_dir / (cfg.label or "partition")
        folder.mkdir(parents=True, exist_ok=True)
        try:
            budgets = cfg.device_budgets(ctx.recipe_dir)  # a target: profile may be missing
            if cfg.method == "nonn":
                self._nonn(model, ctx, cfg, budgets, folder)
            else:
                self._layerwise(model, ctx, cfg, budgets, folder)
        except (BudgetError, RecipeError) as exc:
            # `edgec partition`'s own verdicts (exit 1 or 2 there, where nothing else ran); in a
            # run, work was done before this pass, so it is a failed step like any other pass's
            label = cfg.label or self.name
            raise PartitionError(
                f"Pass '{label}' ({self.name}) failed: {exc}",
                hint=f"Change pass '{label}' in the recipe: a larger budget: (or budgets:), another "
                "devices: count, or a prune or distill pass before it." if isinstance(exc, BudgetError)
                else None) from exc
        if cfg.target:
            from edgec.partition import target_scope_note

            self.note(target_scope_note(cfg.target, folder.name) + " in the run folder")
        self.details["partition"]["folder"] = folder.name
        return model

    def _nonn(self, model, ctx: PassContext, cfg: PartitionConfig, budgets, folder: Path) -> None:
        from edgec.partition_nonn import run_nonn

        plan = run_nonn(model, ctx.data, ctx.input_shape, cfg.devices, budgets, cfg.nonn, folder,
                        seed=ctx.seed, link_mbps=cfg.link_mbps, progress=ctx.progress,
                        base_dir=ctx.recipe_dir)
        self.details["partition"] = {"method": "nonn", **_summary(plan.to_dict())}
        acc = (f"; accuracy {plan.accuracy:.2%} (teacher {plan.teacher_accuracy:.2%})"
               if plan.accuracy is not None and plan.teacher_accuracy is not None else "")
        self.note(f"NoNN across {cfg.devices} devices: students of "
                  f"{', '.join(f'{d.params:,}' for d in plan.devices)} params (device 1 with the "
                  f"head), {plan.bytes_per_inference:,} B sent per inference{acc}; the model itself "
                  f"is handed on unchanged; files in {folder.name}/")

    def _layerwise(self, model, ctx: PassContext, cfg: PartitionConfig, budgets, folder: Path) -> None:
        from edgec.export import export_onnx
        from edgec.partition import partition_model
        from edgec.recipe import ExportConfig

        path = folder / "model.onnx"
        export_onnx(model, ctx.input_shape, path, ExportConfig(dynamic_batch=False))
        plan = partition_model(path, cfg.devices, budgets, folder, ctx.input_shape, cfg.link_mbps)
        self.details["partition"] = {"method": "layerwise", **_summary(plan.to_dict())}
        self.note(f"layer-wise split across {cfg.devices} devices: pieces of "
                  f"{', '.join(f'{p.params:,}' for p in plan.pieces)} params, "
                  f"{plan.bytes_per_inference:,} B sent per inference; files in {folder.name}/")


def _summary(plan: dict) -> dict:
    """What the report keeps: everything but the per-epoch training history and node lists."""
    out = {k: v for k, v in plan.items() if k != "training"}
    if "training" in plan:
        out["training"] = {k: v for k, v in plan["training"].items() if k != "epochs"}
    for piece in out.get("pieces", []):
        piece["nodes"] = len(piece["nodes"])
    return out


def partition_markdown(details: dict) -> list[str]:
    """report.md: the per-device table of a partition pass (nothing for other passes)."""
    part = details.get("partition")
    if not isinstance(part, dict):
        return []
    rows = part.get("devices") or part.get("pieces") or []
    lines = [f"#### Devices ({part['method']}; files in `{part.get('folder', '')}/`)", "",
             "| device | params | MACs | weights KiB | RAM KiB (bound max_ram_kb limits) | ms on this host "
             "| sends B |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        peak = r.get("ram_bound_bytes")  # the measure the RAM budget was checked on
        ms = r.get("compute_ms")
        lines.append(f"| {r['device']} | {r['params']:,} | {r['macs']:,} | {r['flash_bytes'] / 1024:.1f} | "
                     f"{'?' if peak is None else f'{peak / 1024:.1f}'} | "
                     f"{'?' if ms is None else f'{ms:.3f}'} | {r['bytes_out']:,} |")
    summary = f"Bytes sent between devices per inference: {part['bytes_per_inference']:,}"
    if part.get("accuracy") is not None and part.get("teacher_accuracy") is not None:
        summary += (f"; accuracy of the assembled files {part['accuracy']:.2%} (teacher "
                    f"{part['teacher_accuracy']:.2%})")
    if part.get("estimated_latency_ms") is not None:
        summary += (f"; estimated latency {part['estimated_latency_ms']:.2f} ms at "
                    f"{part['link_mbps']:g} Mbit/s")
    return [*lines, "", summary + ".", ""]
