"""Side-by-side measurement of ONNX models: size, params, MACs, latency, accuracy, agreement.

Every model of a comparison is measured in the same process, with identical sessions, on the same
inputs, latency interleaved (see latency.py) — so ratios between them are what a CI gate can trust.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from edgec.config import ConfigModel
from edgec.errors import BenchmarkError, UsageError
from edgec.progress import Progress

if TYPE_CHECKING:
    import numpy as np

    from edgec.latency import LatencyStats
    from edgec.measure_memo import MeasureMemo


class BenchmarkConfig(ConfigModel):
    """How models are measured. Defaults favour stable ratios on a shared CI runner."""

    threads: int = Field(1, ge=1, le=256, description="onnxruntime intra-op threads. 1 gives the most "
                         "stable timings on shared machines; set your device's core count to see "
                         "its real speed.")
    runs: int = Field(200, ge=1, le=1_000_000, description="Timed inferences per model (at least).")
    min_seconds: float | None = Field(
        None, ge=0, le=3600, description="Keep timing interleaved rounds until they span this "
        "many seconds. Default: 10 when a budget gates on relative speed (min_speedup, "
        "max_latency_growth), so the gate sees past a shared machine's seconds-long slow spells "
        "(docs/guide-sweep.md); else 0.")
    warmup: int = Field(20, ge=0, le=100_000, description="Untimed inferences per model first.")
    batch_size: int = Field(1, ge=1, le=4096, description="Batch size of the latency inputs.")
    eval_batch_size: int = Field(64, ge=1, le=65536, description="Batch size for accuracy evaluation.")
    max_eval_samples: int | None = Field(None, ge=1, description="Evaluate on at most this many "
                                         "samples (default: the whole eval split).")


GATE_MIN_SECONDS = 10.0  # longer than the longest slow spell measured here (7 s): latency_gate.py


def resolve_min_seconds(config: BenchmarkConfig, budgets) -> BenchmarkConfig:
    """``config`` with ``min_seconds`` decided: as set, else GATE_MIN_SECONDS when a budget gates on
    relative speed (min_speedup, max_latency_growth), else 0 (a report alone stays quick)."""
    if config.min_seconds is not None:
        return config
    gated = budgets.min_speedup is not None or budgets.max_latency_growth is not None
    return config.model_copy(update={"min_seconds": GATE_MIN_SECONDS if gated else 0.0})


@dataclass
class Metrics:
    """Measurements of one ONNX model. Fields are part of the report's JSON contract."""

    path: str
    size_bytes: int
    size_gzip_bytes: int
    params: int
    nonzero_params: int
    macs: int
    flops: int
    latency_ms: LatencyStats
    accuracy: float | None  # top-1 on the labelled eval split; None without labels
    agreement: float | None  # top-1 agreement with the reference model's predictions
    weight_dtypes: dict[str, int]
    eval_samples: int = 0

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["latency_ms"] = self.latency_ms.to_dict()
        return d


def benchmark_models(
    models: dict[str, Path],
    eval_x: np.ndarray | None,
    eval_y: np.ndarray | None,
    config: BenchmarkConfig,
    input_shape: tuple[int, ...],
    reference: str | None = "baseline",
    progress: Progress | None = None,
    memo: MeasureMemo | None = None,
) -> dict[str, Metrics]:
    """Measure each model; latency interleaved across all of them, accuracy on (eval_x, eval_y).

    ``reference`` names the model the others' predictions are compared with (agreement); without
    one (or eval data) agreement is None. ``memo`` (a sweep's) keeps the reference's measurements
    other than latency, so the variants after the first one only time it.
    """
    from edgec.latency import make_session, measure_latency_interleaved

    progress = progress or Progress()
    x = None
    if eval_x is not None and len(eval_x):
        x = eval_x[: config.max_eval_samples] if config.max_eval_samples else eval_x
    memo_key = known = None
    if memo is not None and reference in models:
        settings = {"input_shape": input_shape, "threads": config.threads,
                    "eval_batch_size": config.eval_batch_size}
        memo_key = memo.key("static", models[reference], (x,), settings)
        known = memo.get(memo_key)
        if not (isinstance(known, dict) and {"static", "preds"} <= known.keys()):
            known = None  # absent, or written by something else: measure
    reused = {reference} if known is not None else set()
    static = {n: known["static"] if n in reused else _static_metrics(p, input_shape)
              for n, p in models.items()}
    sessions = {n: make_session(p, config.threads) for n, p in models.items()}
    latency_input = _latency_input(eval_x, input_shape, config.batch_size)
    feeds = {n: _feed(s, latency_input, n) for n, s in sessions.items()}
    latency = measure_latency_interleaved(sessions, feeds, config.runs, config.warmup, progress,
                                          min_seconds=config.min_seconds or 0.0)

    preds = {n: _as_array(known["preds"]) if n in reused else
             None if x is None else _predict(sessions[n], x, config.eval_batch_size, n, progress)
             for n in models}
    if memo_key is not None and known is None:
        p = preds[reference]
        memo.put(memo_key, {"static": static[reference], "preds": None if p is None else p.tolist()})
    y = None if eval_y is None or x is None else eval_y[: len(x)]
    ref = preds.get(reference) if reference else None
    return {
        name: Metrics(path=str(path), **static[name], latency_ms=latency[name],
                      accuracy=_share(preds[name], y), agreement=_share(preds[name], ref),
                      eval_samples=0 if preds[name] is None else len(preds[name]))
        for name, path in models.items()
    }


def _static_metrics(path: Path, input_shape: tuple[int, ...]) -> dict:
    """The measurements of a file that need no timing: sizes, parameters, MACs, weight dtypes.

    MACs and FLOPs are per sample (batch 1), as reports label them and budgets.max_macs defines
    them, whatever batch the shape has: convolutions and matrix products grow linearly with it."""
    from edgec.graph_stats import analyze_onnx

    stats = analyze_onnx(path, input_shape)
    batch = stats.input_shape[0] if stats.input_shape and stats.input_shape[0] > 0 else 1
    data = Path(path).read_bytes()
    return {"size_bytes": len(data),
            "size_gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0)),
            "params": stats.params, "nonzero_params": stats.nonzero_params,
            "macs": stats.macs // batch, "flops": stats.flops // batch,
            "weight_dtypes": stats.weight_dtypes}


def _as_array(values: list | None):
    import numpy as np

    return None if values is None else np.asarray(values, dtype=np.int64)


# The speed-up that gates, regressions and sweep tables read, best first: the p1 ratio
# (latency_gate.py); reports written before it have only the paired median or the p50 ratio.
SPEEDUP_KEYS = ("speedup_p1", "speedup_paired", "speedup_p50")


def gate_speedup(ratios: dict) -> float | None:
    return next((ratios[k] for k in SPEEDUP_KEYS if ratios.get(k)), None)


def ratios(base: Metrics, comp: Metrics) -> dict[str, float | None]:
    """Compressed vs baseline, each as 'times better' (>1 = smaller / faster), plus accuracy drop."""
    from edgec.latency import paired_speedup

    def times(a, b):
        return round(a / b, 4) if a is not None and b else None

    drop = None
    if base.accuracy is not None and comp.accuracy is not None:
        drop = round(base.accuracy - comp.accuracy, 6)
    return {
        "size": times(base.size_bytes, comp.size_bytes),
        "size_gzip": times(base.size_gzip_bytes, comp.size_gzip_bytes),
        "params": times(base.params, comp.params),
        "nonzero_params": times(base.nonzero_params, comp.nonzero_params),
        "macs": times(base.macs, comp.macs),
        "flops": times(base.flops, comp.flops),
        "speedup_p1": _speedup_p1(base.latency_ms, comp.latency_ms, times),
        "speedup_p50": times(base.latency_ms.p50, comp.latency_ms.p50),
        "speedup_p90": times(base.latency_ms.p90, comp.latency_ms.p90),
        "speedup_paired": paired_speedup(base.latency_ms, comp.latency_ms),
        "accuracy_drop": drop,
    }


def _speedup_p1(base, comp, times) -> float | None:
    """The speed gate's own statistic (latency_gate.quantile_ratio, over the kept unrounded
    times), so the reported speedup_p1 and min_speedup's actual are one number; the ratio of the
    stored p1s only when the times were not kept."""
    from edgec.latency_gate import quantile_ratio

    if getattr(base, "samples", None) and getattr(comp, "samples", None):
        return round(quantile_ratio(base.samples, comp.samples), 4)
    return times(base.p1, comp.p1)


def bench_files(
    paths: list[Path], input_shape: tuple[int, ...] | None, config: BenchmarkConfig,
    progress: Progress | None = None,
) -> dict[str, Metrics]:
    """`edgec bench`: measure ONNX files side by side on random inputs (no accuracy), at
    ``input_shape`` (else the first model's own shape), latency at that shape's batch. Every
    model is checked before anything runs (model_input.py)."""
    from edgec.graph_stats import load_onnx
    from edgec.model_input import check_runnable_input, resolve_input_shape

    names: dict[str, Path] = {}
    shape = None
    for path in map(Path, paths):
        model = load_onnx(path)  # existence and validity, with a clear message
        check_runnable_input(model, path)
        own = resolve_input_shape(model, path, input_shape)
        if shape is not None and own != shape:  # only without --input-shape: each has its own
            raise UsageError(
                f"'{path}' takes input {','.join(map(str, own))} but '{paths[0]}' takes "
                f"{','.join(map(str, shape))}: models are timed side by side on the same input.",
                hint="Compare models with the same input, or give an --input-shape both accept.")
        shape = own
        name = path.stem
        names[name if name not in names else f"{name}#{len(names) + 1}"] = path
    # the batch asked for is the batch timed (a fixed-batch model's own when none was asked)
    config = config.model_copy(update={"batch_size": shape[0] if shape else 1})
    return benchmark_models(names, None, None, config, shape, reference=None, progress=progress)


def _latency_input(eval_x, input_shape: tuple[int, ...], batch: int):
    """Real samples when there are enough (realistic activations), else seeded random normal."""
    import numpy as np

    if eval_x is not None and len(eval_x) >= batch:
        return np.ascontiguousarray(eval_x[:batch], dtype=np.float32)
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, *input_shape[1:])).astype(np.float32)


def _feed(session, x, name: str) -> dict:
    """Input dict for a session, casting to its input dtype (fp16 models keep fp32 io usually)."""
    import numpy as np

    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise BenchmarkError(
            f"Model '{name}' has {len(inputs)} inputs; edgec measures single-input models.",
            hint="Wrap the model so that it takes one tensor.",
        )
    inp = inputs[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    fixed_batch = inp.shape[0] if inp.shape and isinstance(inp.shape[0], int) else None
    if fixed_batch is not None and fixed_batch != x.shape[0]:
        x = _pad_batch(x, fixed_batch)
    return {inp.name: x.astype(dtype, copy=False)}


def _pad_batch(x, batch: int):
    import numpy as np

    if len(x) >= batch:
        return x[:batch]
    reps = -(-batch // len(x))
    return np.concatenate([x] * reps)[:batch]


def _predict(session, x, batch_size: int, name: str, progress: Progress):
    """Top-1 class per sample; batches follow the model's fixed batch size when it has one."""
    import numpy as np

    from edgec.latency import run_session

    inp = session.get_inputs()[0]
    fixed = inp.shape[0] if inp.shape and isinstance(inp.shape[0], int) else None
    step = fixed or batch_size
    out = []
    with progress.task(f"evaluate {name}", len(x)) as advance:
        for i in range(0, len(x), step):
            chunk = x[i:i + step]
            feed = _feed(session, chunk, name)
            logits = run_session(session, feed, name)[0][: len(chunk)]
            if logits.ndim != 2:
                return None  # not a classifier's logits: accuracy and agreement do not apply
            out.append(np.argmax(logits, axis=1))
            advance(len(chunk))
    return np.concatenate(out) if out else None


def _share(pred, target) -> float | None:
    """Fraction of equal entries, or None when either side is missing."""
    if pred is None or target is None:
        return None
    n = min(len(pred), len(target))
    return round(float((pred[:n] == target[:n]).mean()), 6) if n else None
