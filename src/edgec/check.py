"""`edgec check MODEL.onnx --target NAME`: op support plus the target's flash/RAM budgets.

The same op check the pipeline runs between stages, and the same memory estimate its report
shows, for a model that already exists (one exported elsewhere, or a run's model.onnx).
"""

from __future__ import annotations

import json
from pathlib import Path


def assess(model: Path, target_name: str, input_shape=None, measure: bool = False) -> dict:
    """Everything `edgec check` reports, as a JSON-ready dict with an overall ``ok``."""
    from edgec.graph_stats import load_onnx
    from edgec.memory import estimate_model_memory
    from edgec.memory_probe import measure_memory
    from edgec.model_input import check_runnable_input, resolve_input_shape
    from edgec.opcheck import check_model
    from edgec.targets import load_target

    target = load_target(target_name, Path.cwd())
    onnx_model = load_onnx(model)
    # every number below is for this one shape: refused here if the model cannot take it
    shape = resolve_input_shape(onnx_model, model, input_shape)
    if measure:  # the probe runs the model on random floats
        check_runnable_input(onnx_model, model)
    ops = check_model(model, target, shape)
    estimate = estimate_model_memory(onnx_model, shape)
    actual = {"max_flash_kb": model.stat().st_size / 1024,
              "max_ram_kb": estimate.ram_bytes(target.weights_in_ram) / 1024,
              "max_peak_activation_kb": estimate.peak_activation_bytes / 1024}
    budgets = [{"name": name, "limit": limit, "actual": round(actual[name], 1),
                "passed": actual[name] <= limit}
               for name, limit in target.budgets().items() if name in actual]
    out = {"model": str(model), "target": target.name, "input_shape": list(shape),
           "ops": ops.to_dict(), "memory": estimate.to_dict(), "budgets": budgets,
           "ok": ops.ok and all(b["passed"] for b in budgets)}
    if measure:
        out["measured"] = measure_memory(model, shape, arena=False)
    return out


def run_check(model: Path, target_name: str, input_shape, measure: bool, as_json: bool) -> bool:
    """Print the assessment; True when the model fits the target."""
    import click

    from edgec.opcheck import OpCheckResult, OpProblem

    result = assess(model, target_name, input_shape, measure)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return result["ok"]
    ops = dict(result["ops"])
    ops.pop("ok")
    problems = [OpProblem(**p) for p in ops.pop("problems")]
    click.echo(OpCheckResult(**ops, problems=problems).summary(max_nodes=5))
    mem = result["memory"]
    shape = ",".join(map(str, result["input_shape"]))
    click.echo(f"memory (estimated, input {shape}): weights {mem['weight_bytes'] / 1024:,.1f} KiB, "
               f"peak activations {mem['peak_activation_bytes'] / 1024:,.1f} KiB at "
               f"{mem['peak_node']} ({mem['peak_op']})")
    measured = result.get("measured")
    if measured:
        text = (f"unavailable ({measured['reason']})" if not measured["available"] else
                "below the noise floor" if measured["inference_below_noise"] else
                f"{measured['inference_peak_bytes'] / 1024:,.0f} KiB")
        click.echo(f"memory (measured, onnxruntime, arena off): inference RSS growth {text}")
    for b in result["budgets"]:
        verdict = "PASS" if b["passed"] else f"FAIL (over by {b['actual'] - b['limit']:,.1f} KiB)"
        click.echo(f"  {b['name']}: {b['actual']:,.1f} / {b['limit']:,.1f} KiB  {verdict}")
    click.echo("fits the target." if result["ok"] else f"does NOT fit target '{result['target']}'.")
    return result["ok"]
