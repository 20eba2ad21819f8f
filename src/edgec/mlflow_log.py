"""Optional MLflow logging of a finished run (`mlflow:` in the recipe, or `compress --mlflow`).

Params are the resolved recipe (flattened to dotted keys), metrics come from the report (both
models' measurements, the ratios, budget verdicts), artifacts are the compressed ONNX model and
the reports. mlflow is an optional dependency (`pip install 'edgec[mlflow]'`), imported only here,
and its presence is checked before the run starts so a missing package never costs a whole run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from edgec.config import ConfigModel
from edgec.errors import EdgecError, UsageError

if TYPE_CHECKING:
    from edgec.report import Report

_PARAM_CHARS = 500  # MLflow servers cap param values (older ones at 500 characters)


class MlflowConfig(ConfigModel):
    """Log the run to MLflow: params from the recipe, metrics from the report, artifacts."""

    tracking_uri: str | None = Field(None, description="Tracking server or store, e.g. "
                                     "file:./mlruns or http://host:5000. Default: $MLFLOW_TRACKING_URI, "
                                     "else MLflow's own default (./mlruns).")
    experiment: str = Field("edgec", min_length=1, description="Experiment name (created if missing).")
    run_name: str | None = Field(None, description="MLflow run name. Default: the run folder's name.")
    log_baseline: bool = Field(False, description="Also upload baseline.onnx (the compressed model "
                               "and the reports are always uploaded).")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags for the MLflow run.")


class MlflowError(EdgecError):
    """Logging to MLflow failed (the run itself completed and its folder is intact)."""


def mlflow_installed() -> bool:
    return importlib.util.find_spec("mlflow") is not None


def require_mlflow() -> None:
    """Fail before any work when MLflow logging is asked for but mlflow is not installed."""
    if not mlflow_installed():
        raise UsageError("MLflow logging is enabled (mlflow: in the recipe, or --mlflow), but the "
                         "mlflow package is not installed.",
                         hint="pip install 'edgec[mlflow]' (or mlflow-skinny), or remove mlflow:.")


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """{'passes': [{'type': 'quantize'}]} → {'passes.0.type': 'quantize'} (the --set paths)."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(value, list) and value and all(isinstance(v, (dict, list)) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): str(value)[:_PARAM_CHARS]}


def report_metrics(report: Report) -> dict[str, float]:
    """Numeric metrics of a report, MLflow-style names (baseline_size_bytes, speedup_p50, …)."""
    out: dict[str, float] = {}
    for side in ("baseline", "compressed"):
        m = getattr(report, side)
        if m is None:
            continue
        for key in ("size_bytes", "size_gzip_bytes", "params", "nonzero_params", "macs", "accuracy",
                    "agreement"):
            if getattr(m, key) is not None:
                out[f"{side}_{key}"] = float(getattr(m, key))
        for p in ("p50", "p90", "p99"):
            out[f"{side}_latency_{p}_ms"] = float(getattr(m.latency_ms, p))
    out.update({f"ratio_{k}": float(v) for k, v in report.ratios.items() if v is not None})
    for row in report.budgets:
        out[f"budget_{row.name}_passed"] = float(row.passed)
    out["passed"] = float(report.passed)
    return out


def log_to_mlflow(config: MlflowConfig, report: Report, run_dir: Path) -> str:
    """Log one finished run; returns the MLflow run id. Raises MlflowError."""
    require_mlflow()
    import mlflow

    from edgec import __version__

    try:
        if config.tracking_uri:
            mlflow.set_tracking_uri(config.tracking_uri)
        mlflow.set_experiment(config.experiment)
        tags = {"edgec.version": __version__, "edgec.status": report.status,
                "edgec.passed": str(report.passed), "edgec.run_dir": str(run_dir), **config.tags}
        with mlflow.start_run(run_name=config.run_name or Path(run_dir).name, tags=tags) as active:
            params = flatten(report.recipe)
            items = list(params.items())
            for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
                mlflow.log_params(dict(items[i:i + 100]))
            mlflow.log_metrics(report_metrics(report))
            names = ["model.onnx", "report.json", "report.md", "report.html", "recipe.yaml"]
            if config.log_baseline:
                names.append("baseline.onnx")
            for name in names:
                if (run_dir / name).is_file():
                    mlflow.log_artifact(str(run_dir / name))
            return active.info.run_id
    except Exception as exc:
        raise MlflowError(f"Logging to MLflow ({mlflow.get_tracking_uri()}) failed: "
                          f"{type(exc).__name__}: {str(exc)[:800]}",
                          hint=f"The run itself completed: its results are in {run_dir}.") from exc
