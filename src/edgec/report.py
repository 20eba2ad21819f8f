"""The run report: one dataclass, written as versioned JSON (for machines) and Markdown (people).

``schema: "edgec.report/1"`` is a contract: fields may be added, never renamed or removed,
without bumping the version. Rendering for people lives in report_text.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from edgec.benchmark import Metrics
    from edgec.budgets import BudgetRow
    from edgec.passes.base import PassRecord

SCHEMA = "edgec.report/1"
Status = Literal["ok", "failed", "interrupted"]


@dataclass
class Report:
    recipe: dict
    environment: dict
    status: Status = "ok"
    baseline: Metrics | None = None
    compressed: Metrics | None = None
    ratios: dict[str, float | None] = field(default_factory=dict)
    passes: list[PassRecord] = field(default_factory=list)
    export: dict[str, Any] = field(default_factory=dict)
    budgets: list[BudgetRow] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    device: dict[str, Any] = field(default_factory=dict)  # target, op checks, memory (device.py)
    op_profile: dict | None = None  # per-operator time shares (profile_ops.py), None if not profiled
    error: dict[str, str] | None = None  # {step, type, message} when status != ok
    run_dir: str | None = None
    started: str | None = None
    seconds: float | None = None
    against: dict[str, Any] | None = None  # comparison with a stored report (compress --against)

    def relocate(self, old: Path, new: Path) -> None:
        """Point the measured models' paths into ``new``: a run measures them in its unfinished
        folder (``<run>.partial``), which becomes ``new`` when the run completes."""
        for metrics in (self.baseline, self.compressed):
            if metrics is not None and Path(metrics.path).parent == Path(old):
                metrics.path = str(Path(new) / Path(metrics.path).name)

    @property
    def passed(self) -> bool:
        """True when the run completed and every budget held."""
        return self.status == "ok" and all(b.passed for b in self.budgets)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "status": self.status,
            "passed": self.passed,
            "error": self.error,
            "run_dir": self.run_dir,
            "started": self.started,
            "seconds": self.seconds,
            "environment": self.environment,
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "compressed": self.compressed.to_dict() if self.compressed else None,
            "ratios": self.ratios,
            "passes": [_record_dict(p) for p in self.passes],
            "export": self.export,
            "budgets": [b.to_dict() for b in self.budgets],
            "findings": self.findings,
            "against": self.against,
            "device": self.device,
            "op_profile": self.op_profile,
            "recipe": self.recipe,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=_jsonable)


def _record_dict(record: PassRecord) -> dict:
    from dataclasses import asdict

    return asdict(record)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temp file and rename, so a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # no stray temp file beside a path that cannot be written
        raise


# what makes int8 slower than float on a CPU, by quantize mode (measured: docs/guide-quantize.md);
# dynamic's cause depends on the ops it wrote (the pass records them: quant_ops), so {why}
_SLOW_MODE_FIX = {
    "dynamic": "{why} Use mode: static (activation scales calibrated once, ahead of time) or "
               "mode: auto, which keeps the layers where int8 does not pay float.",
    "fp16": "onnxruntime's CPU kernels compute fp16 by casting to float; fp16 halves the size only. "
            "For speed use mode: static (or mode: auto).",
    "static": "{why} mode: auto keeps the layers where int8 does not pay float, so the result is "
              "never slower; `edgec doctor model.onnx` profiles where the time goes.",
}


def _int8_reason(environment: dict | None) -> str:
    """Why static int8 can lose here, from the CPU flags the report records (doctor.py's reasons)."""
    from edgec.cpu import cpu_flags, has_vnni, is_x86
    from edgec.doctor import NO_VNNI

    env = environment or {}
    flags = frozenset(env["cpu_flags"]) if "cpu_flags" in env else cpu_flags()
    if has_vnni(flags) or "asimddp" in flags:  # the int8 dot products themselves are fast here
        return ("This CPU has fast int8 dot products (VNNI or its ARM equivalent), so the int8 "
                "arithmetic is not what is slow: converting tensors between float and int8 "
                "around it (Quantize/DequantizeLinear, layout reorders) costs more than it saves, "
                "most of all on small layers.")
    if is_x86(env.get("machine")):
        return f"{NO_VNNI} Small layers can then run slower in int8 than in float."
    return ("This CPU has no int8 dot-product instructions (ARM asimddp), so int8 kernels gain "
            "little over float and small layers can be slower.")


def _dynamic_reason(quant_ops: dict) -> str:
    """Why dynamic int8 can lose, for the ops it wrote: ConvInteger (no fast kernel), or the
    run-time quantization every MatMulInteger waits for (an MLP has no Conv to blame)."""
    convs = quant_ops.get("ConvInteger", 0)
    if convs:
        return (f"Dynamic int8 turned {convs} Conv node(s) into ConvInteger, which onnxruntime "
                "runs slowly.")
    matmuls = quant_ops.get("MatMulInteger", 0)
    layers = f"each of the {matmuls} MatMulInteger node(s)" if matmuls else "each int8 layer"
    return ("Dynamic int8 quantizes activations while the model runs: "
            f"{layers} waits for a DynamicQuantizeLinear (a min/max pass over its input, then a "
            "conversion) and turns its int32 result back into float, which can cost more than "
            "the int8 arithmetic saves, most of all on small layers.")


def _slower_fix(passes: list, environment: dict | None = None) -> str:
    """The likely cause and fix of a slower model, from the passes that ran and the CPU."""
    for record in passes:
        mode = record.details.get("mode") if record.type == "quantize" else None
        if mode in _SLOW_MODE_FIX:
            why = (_int8_reason(environment) if mode == "static" else
                   _dynamic_reason(record.details.get("quant_ops") or {}) if mode == "dynamic"
                   else "")
            return f"Fix: {_SLOW_MODE_FIX[mode].format(why=why)}"
    return ("The operator profile in this report shows which operators lost time; "
            "`edgec doctor MODEL.onnx` suggests fixes.")


def find_findings(baseline: Metrics, compressed: Metrics, ratios: dict, passes: list, *,
                  environment: dict | None = None, recipe: dict | None = None) -> list[str]:
    """Plain-language statements a user must not miss (slower int8, sparsity without speed, an
    accuracy measured on images the model was trained on). ``environment`` and ``recipe``: the
    report's (CPU flags, model and data sections)."""
    out = []
    # the speed-up the gates decide on (p1: the undisturbed times), so a finding never says
    # "slower" about a model that min_speedup passes, or the other way round, on a noisy host
    speedup = ratios.get("speedup_p1")
    stat = "p1"
    if speedup is None:  # too few timed runs for a 1st percentile
        speedup, stat = ratios.get("speedup_p50"), "p50"
    if speedup is not None and speedup < 0.95:
        comp, base = getattr(compressed.latency_ms, stat), getattr(baseline.latency_ms, stat)
        out.append(
            f"The compressed model is SLOWER than the baseline on this host: {speedup:.2f}x the "
            f"baseline speed ({stat} {comp:.3f} ms vs {base:.3f} ms). "
            f"{_slower_fix(passes, environment)}"
        )
    sparse = compressed.params and compressed.nonzero_params < 0.8 * compressed.params
    if sparse and compressed.macs >= 0.95 * baseline.macs:
        out.append(
            f"{1 - compressed.nonzero_params / compressed.params:.0%} of the weights are zero, but "
            "onnxruntime's CPU kernels are dense: zeros shrink the gzip'd file "
            f"({ratios.get('size_gzip') or 0:.2f}x), not the latency or the raw file size."
        )
    drop = ratios.get("accuracy_drop")
    if drop is not None and drop > 0.01:
        out.append(f"Accuracy dropped by {drop * 100:.2f} points.")
    out += _zoo_eval_overlap(recipe or {}, baseline, compressed)
    return out


def _zoo_eval_overlap(recipe: dict, baseline: Metrics, compressed: Metrics) -> list[str]:
    """A zoo model learnt seed 0's digits train split; another split seed puts some of those very
    images in the eval split, and the accuracies come out too good (100% looks like a result)."""
    model, data = recipe.get("model", {}), recipe.get("data", {})
    seed = data.get("seed", 0)
    if model.get("source") != "zoo" or data.get("source") != "digits" or not seed:
        return []
    from edgec.zoo import eval_images_trained_on

    seen, total = eval_images_trained_on(seed)
    if not seen:
        return []
    measured = ("" if baseline.accuracy is None or compressed.accuracy is None else
                f" ({baseline.accuracy:.2%} baseline, {compressed.accuracy:.2%} compressed)")
    return [f"data.seed is {seed}, but zoo model '{model.get('name')}' was trained on seed 0's "
            f"train split: {seen} of the {total} eval images ({seen / total:.0%}) are images it "
            f"was trained on, so the accuracies{measured} are overstated and the drop says "
            "little. Keep data.seed: 0 with zoo models (the recipe's top-level seed varies "
            "the rest of the run)."]
