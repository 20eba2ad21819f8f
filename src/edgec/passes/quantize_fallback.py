"""Accuracy-aware static quantization: put layers back to float until the accuracy drop fits.

The loop: quantize everything, measure eval accuracy; while the drop exceeds the limit, return the
int8 layer that adds the most quantization noise (see quantize_errors) to float and quantize
again. Ranking once, on the all-int8 model, is enough: noise a layer adds barely depends on which
other layers are float, and re-ranking would cost one more profiling run per step. Each step
re-calibrates (onnxruntime's quantizer has no incremental mode); for the reference models that is
seconds. The cost of the float layers, in size and latency against the all-int8 model, is measured
at the end, interleaved in one process like every edgec timing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import PassError
from edgec.passes.quantize_errors import LayerError, int8_mac_share, rank_for_fallback

if TYPE_CHECKING:
    from edgec.data import Split
    from edgec.passes.base import Pass, PassContext

Requantize = Callable[[list[str], Path], None]  # (float node names, output path) → writes int8 model
COST_RUNS = 100  # interleaved timed runs per model for the latency cost


def fallback_to_float(p: Pass, fp32: Path, dst: Path, requantize: Requantize, excluded: list[str],
                      errors: list[LayerError], ctx: PassContext) -> list[str]:
    """Run the loop on ``dst`` (already all-int8); returns the layers returned to float."""
    limit = p.config.max_accuracy_drop
    split = ctx.data.eval
    if split is None or split.y is None or len(split) == 0:
        raise PassError("max_accuracy_drop needs labelled eval data to measure the accuracy drop, "
                        "but this run's eval split has no labels. Use a labelled data source or "
                        "remove max_accuracy_drop.")
    all_int8 = dst.with_name(dst.stem + "-all-int8.onnx")
    shutil.copyfile(dst, all_int8)
    reference = onnx_accuracy(fp32, split)
    accuracy = onnx_accuracy(dst, split)
    history = [{"float_layer": None, "accuracy": accuracy, "drop": round(reference - accuracy, 6)}]
    ranking, fallen = rank_for_fallback(errors), []
    with ctx.progress.task("accuracy-aware fallback", total=len(ranking)) as advance:
        while reference - accuracy > limit and ranking:
            fallen.append(ranking.pop(0))
            requantize([*excluded, *fallen], dst)
            accuracy = onnx_accuracy(dst, split)
            history.append({"float_layer": fallen[-1], "accuracy": accuracy,
                            "drop": round(reference - accuracy, 6)})
            advance(1)
    met = reference - accuracy <= limit
    p.details.update(
        max_accuracy_drop=limit, accuracy_float=reference, accuracy_all_int8=history[0]["accuracy"],
        accuracy_final=accuracy, limit_met=met, float_layers=fallen, fallback_history=history,
        **_cost(all_int8, dst, split.x),
    )
    all_int8.unlink()
    drop = (reference - accuracy) * 100
    if not fallen:
        p.note(f"all-int8 accuracy drop {drop:.2f} points is within max_accuracy_drop "
               f"({limit * 100:.2f}); no layer returned to float")
    else:
        cost = p.details
        p.note(f"{len(fallen)} layer(s) returned to float to keep the accuracy drop at "
               f"{drop:.2f} points (limit {limit * 100:.2f}; all-int8 lost "
               f"{history[0]['drop'] * 100:.2f}): {', '.join(fallen)}. Cost vs all-int8: "
               f"{cost['size_cost']:.2f}x the size, {cost['latency_cost']:.2f}x the latency")
    if not met:
        p.note(f"max_accuracy_drop NOT met even with every ranked layer in float (drop {drop:.2f} "
               "points): the loss comes from elsewhere (inputs, non-compute ops); try "
               "method: percentile or entropy, more samples, or QAT (type: qat)")
    p.note("the float layers were chosen on the eval split, the one the report's accuracy uses: "
           "that accuracy is slightly optimistic")
    return fallen


def onnx_accuracy(path: Path, split: Split) -> float:
    """Top-1 accuracy of an ONNX classifier on a labelled split (one thread, batches of 64)."""
    from edgec.benchmark import _predict
    from edgec.latency import make_session
    from edgec.progress import Progress

    pred = _predict(make_session(path, 1), split.x, 64, path.name, Progress(enabled=False))
    if pred is None:
        raise PassError(f"max_accuracy_drop needs a classifier (N×classes logits), but "
                        f"'{path.name}' outputs something else. Remove max_accuracy_drop.")
    return round(float((pred == split.y[: len(pred)]).mean()), 6)


def _cost(all_int8: Path, final: Path, x) -> dict:
    """Size and latency of the final model relative to the all-int8 one (>1: bigger / slower)."""
    from edgec.benchmark import _feed
    from edgec.latency import make_session, measure_latency_interleaved, paired_speedup

    sessions = {"int8": make_session(all_int8, 1), "final": make_session(final, 1)}
    feeds = {n: _feed(s, x[:1], n) for n, s in sessions.items()}
    stats = measure_latency_interleaved(sessions, feeds, COST_RUNS, 10)
    speed = paired_speedup(stats["int8"], stats["final"]) or 1.0
    return {"size_cost": round(final.stat().st_size / all_int8.stat().st_size, 4),
            "latency_cost": round(1 / speed, 4),
            "latency_ms": {"all_int8_p50": stats["int8"].p50, "final_p50": stats["final"].p50}}


def summarize_layers(p: Pass, errors: list[LayerError]) -> None:
    """Record the per-layer error table and the share of MACs that runs in int8."""
    p.details["layer_errors"] = [e.to_dict() for e in errors]
    share = int8_mac_share(errors)
    if share is not None:
        p.details["int8_mac_share"] = share
