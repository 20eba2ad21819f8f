"""Optional MLflow logging of a finished run (`mlflow:` in the recipe, or `compress --mlflow`).

Params are the resolved recipe (flattened to dotted keys), metrics come from the report (both
models' measurements, the ratios, budget verdicts), artifacts are the compressed ONNX model and
the reports. mlflow is an optional dependency (`pip install 'edgec[mlflow]'`), imported only here.
Before the run starts, ``check_mlflow`` refuses what would only fail after it: a missing package,
or a tracking store this install cannot write to (so neither costs a whole run).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import Field

from edgec.config import ConfigModel
from edgec.errors import EdgecError, UsageError

if TYPE_CHECKING:
    from edgec.report import Report

_PARAM_CHARS = 500  # MLflow servers cap param values (older ones at 500 characters)
# URI schemes MLflow serves with its SQLAlchemy store (a driver may follow: postgresql+psycopg2)
_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
# what that store imports, and mlflow-skinny leaves out (the edgec[mlflow] extra adds them)
_DATABASE_PACKAGES = ("sqlalchemy", "alembic")


class MlflowConfig(ConfigModel):
    """Log the run to MLflow: params from the recipe, metrics from the report, artifacts."""

    tracking_uri: str | None = Field(None, description="Tracking server or store, e.g. "
                                     "http://host:5000 or sqlite:///mlflow.db. Default: "
                                     "$MLFLOW_TRACKING_URI, else MLflow's default: sqlite:///mlflow.db "
                                     "in the current folder, artifacts in ./mlruns (MLflow 2: the "
                                     "folder store ./mlruns).")
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


def check_mlflow(config: MlflowConfig) -> None:
    """Fail before any work when the run could not be logged: mlflow is not installed, or the
    tracking store it would log to cannot work with this install. Only what is known without
    creating the store or contacting a server (a down server still fails after the run)."""
    require_mlflow()
    import mlflow

    # get_tracking_uri() resolves $MLFLOW_TRACKING_URI and MLflow's default, as logging will
    uri = config.tracking_uri or mlflow.get_tracking_uri()
    if config.tracking_uri:
        source = "mlflow.tracking_uri"
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        source = "$MLFLOW_TRACKING_URI"
    else:
        source = "MLflow's default"
    scheme = urlsplit(uri).scheme.split("+")[0].lower()
    if scheme in _DATABASE_SCHEMES:
        _check_database_store(uri, source)
    elif scheme in ("", "file"):
        _check_folder_store(uri, source)


def _check_database_store(uri: str, source: str) -> None:
    missing = [name for name in _DATABASE_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"MLflow logging would write to the database store {uri} ({source}), "
                         f"which needs {' and '.join(missing)}; mlflow-skinny does not install them.",
                         hint="pip install 'edgec[mlflow]' (it adds them) or pip install "
                              f"{' '.join(missing)}; or set mlflow.tracking_uri to a tracking server "
                              "(http://host:5000).")
    database = uri[len("sqlite:///"):].split("?")[0] if uri.startswith("sqlite:///") else ""
    if database and database != ":memory:":  # MLflow makes the file and its folders, if it may
        from edgec.output_files import output_file_problem

        problem = output_file_problem(Path(database), "MLflow's database", "mlflow.db")
        if problem:
            raise UsageError(problem, hint="Set mlflow.tracking_uri to sqlite:///<a file you can "
                                           f"write> (this path came from {source}).")


def _check_folder_store(uri: str, source: str) -> None:
    # MLflow 3.13+ refuses folder stores (maintenance mode) unless this opt-in is set; older
    # releases have neither the variable nor the refusal
    import mlflow
    from mlflow import environment_variables

    opt_in = getattr(environment_variables, "MLFLOW_ALLOW_FILE_STORE", None)
    if opt_in is None:
        return
    try:
        allowed = opt_in.get()
    except ValueError as exc:  # MLflow reads it strictly: true/false/1/0
        raise UsageError(f"$MLFLOW_ALLOW_FILE_STORE has a value MLflow does not accept: {exc}.",
                         hint="Set it to true (or unset it).") from None
    if not allowed:
        why = " while ./mlruns holds earlier runs" if source == "MLflow's default" else ""
        raise UsageError(f"MLflow logging would write to the folder store {uri} ({source}{why}), "
                         f"which MLflow {mlflow.__version__} refuses unless MLFLOW_ALLOW_FILE_STORE=true "
                         "is set.",
                         hint="Log to a database store instead (mlflow.tracking_uri: "
                              "sqlite:///mlflow.db), or export MLFLOW_ALLOW_FILE_STORE=true to keep "
                              "the folder store.")


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
