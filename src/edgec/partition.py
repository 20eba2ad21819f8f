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
    check_source(source, method)
    if method == "nonn":
        return _partition_nonn(source, devices, budget, out_dir, link_mbps, settings, progress)
    from edgec.partition_layerwise import plan_layerwise
    from edgec.partition_pieces import export_pieces, measure_pieces, verify_pieces

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, input_shape, note = _at_input_shape(_onnx_of(source, out_dir), source, input_shape,
                                                   out_dir)
    plan = plan_layerwise(onnx_path, devices, budget, input_shape)
    plan.notes += [note] if note else []
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


def check_source(source: Path, method: str) -> None:
    """Refuse, before any folder or work, a method or a model file that cannot be partitioned."""
    if method not in METHODS:
        raise UsageError(f"Unknown partition method '{method}'.", hint=f"Use one of: {', '.join(METHODS)}.")
    if not source.is_file():
        what = not_a_file(source)
        raise UsageError(f"'{source}' {what}.", hint="Give a recipe .yaml." if method == "nonn"
                         else "Give an .onnx file or a recipe .yaml.")
    if method == "nonn" and source.suffix not in (".yaml", ".yml"):
        raise UsageError(f"--method nonn trains students from a teacher in PyTorch, but '{source}' is "
                         "not a recipe.", hint="Give a recipe .yaml whose model: is the teacher and "
                         "whose data: trains the students (or use --method layerwise on an .onnx).")
    if source.suffix not in (".onnx", ".yaml", ".yml"):
        raise UsageError(f"'{source}' is neither an .onnx file nor a recipe .yaml.")


def partition_into_folder(source: Path, devices: int, budget: DeviceBudget, output: Path,
                          force: bool = False, target: str | None = None,
                          **options) -> LayerwisePlan | NonnPlan:
    """`edgec partition`: partition_model into run folder ``output``, which appears only when the
    partition succeeded (a failure or a missed budget leaves no folder behind) and replaces an
    existing one only with ``force``, as compress and sensitivity do. ``target`` fills the flash
    and RAM limits not given; ``options`` go to partition_model."""
    from edgec.rundir import RunFolder

    check_source(source, options.get("method", "layerwise"))
    if target:
        budget = budget_with_target(budget, target)
    # refuses an existing folder before any work; a failure leaves no folder behind
    with RunFolder(output, force, keep_failed=False) as folder:
        plan = partition_model(source, devices, budget, folder.path, **options)
        if target:
            _add_note(plan, folder.path, target_scope_note(target, Path(output)))
    return plan


def target_scope_note(target: str, folder: Path | str) -> str:
    """What a target does for a partition: its flash/RAM limits only. Its operators and data types
    are `edgec check`'s job, which the result must not be read as having done."""
    return (f"target {target}: only its flash and RAM limits were applied; the device files were "
            "not checked against its operators and data types (float32 pieces on an int8-only "
            f"device fit the budgets yet do not run there): check each with `edgec check "
            f"{Path(folder) / 'device_K.onnx'} --target {target}`")


def _add_note(plan, folder: Path, note: str) -> None:
    """Add ``note`` to the plan and to the partition.json already written from it."""
    plan.notes.append(note)
    path = folder / "partition.json"
    doc = json.loads(path.read_text())
    doc["notes"] = list(plan.notes)
    path.write_text(json.dumps(doc, indent=2))


def _onnx_of(source: Path, out_dir: Path) -> Path:
    if source.suffix == ".onnx":
        return source
    from edgec.export import export_onnx
    from edgec.models import load_model
    from edgec.recipe import load_recipe

    recipe = load_recipe(source)
    model = load_model(recipe.model, source.resolve().parent)
    path = out_dir / "model.onnx"
    export_onnx(model, tuple(recipe.model.input_shape), path, recipe.export)
    return path


def _at_input_shape(path: Path, source: Path, input_shape,
                    out_dir: Path) -> tuple[Path, tuple[int, ...], str | None]:
    """The model to cut and its input shape, checked before any planning (model_input.py; a
    mismatch names ``source``, not the export of a recipe's model in a folder that will not stay).
    With dynamic dims, the cut model is a copy fixed at that shape, out_dir/model.onnx: the pieces,
    their check and their timings read shapes from the graph, and would take those dims as 1."""
    import onnx

    from edgec.graph_stats import load_onnx
    from edgec.model_input import resolve_input_shape, with_fixed_input

    model = load_onnx(path)
    shape = resolve_input_shape(model, source, input_shape)
    fixed = with_fixed_input(model, path, shape)
    if fixed is None:
        return path, shape, None
    copy = out_dir / "model.onnx"
    onnx.save(fixed, str(copy))
    return copy, shape, (f"cut at input {','.join(map(str, shape))}: {copy.name} is the model with "
                         "its dynamic input dims fixed to it")


def format_plan(plan: LayerwisePlan) -> str:
    """A plain-text table, one row per device, then the traffic per inference."""
    from edgec.partition_budget import RAM_NOTE

    rows = [f"{'device':>6} {'nodes':>5} {'params':>10} {'MACs':>12} {'flash KiB':>10} "
            f"{'RAM KiB':>8} {'ms':>7} {'sends B':>9}  file"]
    for p in plan.pieces:
        ms = f"{p.compute_ms:.3f}" if p.compute_ms is not None else "?"
        rows.append(f"{p.device:>6} {len(p.nodes):>5} {p.params:>10,} {p.macs:>12,} "
                    f"{p.flash_bytes / 1024:>10.1f} {p.ram_bound_bytes / 1024:>8.1f} {ms:>7} "
                    f"{p.bytes_out:>9,}  {Path(p.onnx_path).name if p.onnx_path else '?'}")
    rows.append(f"bytes sent between devices per inference: {plan.bytes_per_inference:,}; "
                f"{RAM_NOTE}; ms: median compute on this host")
    if plan.max_abs_diff is not None:
        rows.append(f"assembled pieces vs whole model (onnxruntime): max |diff| {plan.max_abs_diff:.2e}")
    rows.extend(plan.notes)
    return "\n".join(rows)
