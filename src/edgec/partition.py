"""`edgec partition`: split a model across several devices that are each too small for it.

This is the entry point the CLI and the `partition` pass delegate to. Two methods:
- layerwise: take an ONNX file (or a recipe, whose model is exported first), plan a layer-wise
  split (partition_layerwise), write one ONNX per device (partition_pieces), check that the pieces
  run device by device to the model's own output;
- nonn: take a recipe (its model is the teacher, its data the training data) and train one small
  student per device plus a shared head (partition_nonn).
Both write partition.json and a diagram, partition.png.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import ExportError, UsageError, not_a_file

if TYPE_CHECKING:
    from edgec.partition_layerwise import DeviceBudget, LayerwisePlan
    from edgec.partition_nonn import NonnPlan
    from edgec.passes.partition_settings import NonnSettings
    from edgec.progress import Progress

METHODS = ("layerwise", "nonn")

# Verification tolerance: the pieces run the very same kernels on the same floats, so any
# difference beyond float noise means a piece lost or reordered a tensor.
_PARITY_ATOL = 1e-4


def partition_model(source: Path, devices: int, budget: DeviceBudget | list[DeviceBudget], out_dir: Path,
                    input_shape: tuple[int, ...] | None = None, link_mbps: float | None = None,
                    method: str = "layerwise", settings: NonnSettings | None = None,
                    progress: Progress | None = None) -> LayerwisePlan | NonnPlan:
    """Split ``source`` across ``devices`` devices. layerwise: plan, export and verify a split of
    ``source`` (.onnx or recipe .yaml); nonn: train a NoNN system from a recipe's model and data.
    ``budget``: one for every device, or one per device."""
    if method not in METHODS:
        raise UsageError(f"Unknown partition method '{method}'.", hint=f"Use one of: {', '.join(METHODS)}.")
    if method == "nonn":
        return _partition_nonn(source, devices, budget, out_dir, link_mbps, settings, progress)
    from edgec.partition_layerwise import plan_layerwise
    from edgec.partition_pieces import export_pieces, measure_pieces, verify_pieces

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = _onnx_of(source, out_dir)
    plan = plan_layerwise(onnx_path, devices, budget, input_shape)
    export_pieces(onnx_path, plan, out_dir)
    diff = verify_pieces(onnx_path, plan)
    if diff > _PARITY_ATOL:
        raise ExportError(f"The {devices} pieces of '{onnx_path}' run device by device differ from "
                          f"the whole model by {diff:.2e} (> {_PARITY_ATOL}).",
                          hint="This is a bug in the partitioner; run with --debug and report it.")
    measure_pieces(plan, link_mbps=link_mbps)
    if link_mbps:
        plan.notes.append(f"estimated latency at {link_mbps:g} Mbit/s: {plan.estimated_latency_ms:.3f} ms "
                          f"(transfers {plan.bytes_per_inference * 8 / (link_mbps * 1e3):.3f} ms + "
                          "compute on this host)")
    from edgec.partition_diagram import draw_partition

    draw_partition(plan, out_dir / "partition.png", title=f"{source.name}: layer-wise, {devices} devices")
    (out_dir / "partition.json").write_text(json.dumps(
        {"source": str(source), "method": "layerwise", "devices": devices,
         "budget": _dump(budget), **plan.to_dict()}, indent=2))
    return plan


def _partition_nonn(source: Path, devices: int, budget, out_dir: Path, link_mbps, settings, progress):
    """NoNN from a recipe: its model is the teacher, its data trains the students (synthesized
    from the teacher when the data has no training split)."""
    from edgec.data import load_data
    from edgec.models import load_model
    from edgec.partition_nonn import run_nonn
    from edgec.passes.partition_settings import NonnSettings
    from edgec.recipe import load_recipe

    if not source.is_file():
        what = not_a_file(source)
        raise UsageError(f"'{source}' {what}.", hint="Give a recipe .yaml.")
    if source.suffix not in (".yaml", ".yml"):
        raise UsageError(f"--method nonn trains students from a teacher in PyTorch, but '{source}' is "
                         "not a recipe.", hint="Give a recipe .yaml whose model: is the teacher and "
                         "whose data: trains the students (or use --method layerwise on an .onnx).")
    recipe = load_recipe(source)
    base = source.resolve().parent
    shape = tuple(recipe.model.input_shape)
    teacher = load_model(recipe.model, base, progress=progress)
    data = load_data(recipe.data, shape, base)
    out_dir.mkdir(parents=True, exist_ok=True)
    return run_nonn(teacher, data, shape, devices, budget, settings or NonnSettings(), out_dir,
                    seed=recipe.seed, link_mbps=link_mbps, progress=progress, base_dir=base)


def _dump(budget) -> dict | list[dict]:
    return [b.model_dump() for b in budget] if isinstance(budget, list) else budget.model_dump()


def budget_with_target(budget: DeviceBudget, target: str, base_dir: Path | None = None) -> DeviceBudget:
    """Fill the limits not given explicitly from a target profile (a profile path is relative to
    ``base_dir``). Its RAM budget is an activation budget only when the runtime reads weights in
    place from flash."""
    from edgec.targets import load_target

    profile = load_target(target, base_dir)
    ram = profile.peak_activation_kb or (None if profile.weights_in_ram else profile.ram_kb)
    return budget.model_copy(update={"max_flash_kb": budget.max_flash_kb or profile.flash_kb,
                                     "max_ram_kb": budget.max_ram_kb or ram})


def _onnx_of(source: Path, out_dir: Path) -> Path:
    if not source.is_file():
        what = not_a_file(source)
        raise UsageError(f"'{source}' {what}.", hint="Give an .onnx file or a recipe .yaml.")
    if source.suffix == ".onnx":
        return source
    if source.suffix not in (".yaml", ".yml"):
        raise UsageError(f"'{source}' is neither an .onnx file nor a recipe .yaml.")
    from edgec.export import export_onnx
    from edgec.models import load_model
    from edgec.recipe import load_recipe

    recipe = load_recipe(source)
    model = load_model(recipe.model, source.resolve().parent)
    path = out_dir / "model.onnx"
    export_onnx(model, tuple(recipe.model.input_shape), path, recipe.export)
    return path


def format_plan(plan: LayerwisePlan) -> str:
    """A plain-text table, one row per device, then the traffic per inference."""
    rows = [f"{'device':>6} {'nodes':>5} {'params':>10} {'MACs':>12} {'flash KiB':>10} "
            f"{'act KiB':>8} {'ms':>7} {'sends B':>9}  file"]
    for p in plan.pieces:
        peak = f"{p.peak_activation_bytes / 1024:.1f}" if p.peak_activation_bytes is not None else "?"
        ms = f"{p.compute_ms:.3f}" if p.compute_ms is not None else "?"
        rows.append(f"{p.device:>6} {len(p.nodes):>5} {p.params:>10,} {p.macs:>12,} "
                    f"{p.flash_bytes / 1024:>10.1f} {peak:>8} {ms:>7} {p.bytes_out:>9,}  {p.onnx_path}")
    rows.append(f"bytes sent between devices per inference: {plan.bytes_per_inference:,}; "
                "act KiB: estimated peak activations of the piece; ms: median compute on this host")
    if plan.max_abs_diff is not None:
        rows.append(f"assembled pieces vs whole model (onnxruntime): max |diff| {plan.max_abs_diff:.2e}")
    rows.extend(plan.notes)
    return "\n".join(rows)
