"""MLflow logging: params/metrics/artifacts against a local file store and MLflow's default
store (skipped without mlflow), and a clean exit 2 before any work when mlflow is asked for but
not installed, or its tracking store cannot work with this install."""

import json
import sys

import pytest
from click.testing import CliRunner

from edgec import mlflow_log
from edgec.cli import cli
from edgec.mlflow_log import flatten, report_metrics
from edgec.report import Report


def test_flatten_gives_set_style_paths():
    flat = flatten({"model": {"source": "zoo", "input_shape": [1, 1, 8, 8]},
                    "passes": [{"type": "prune", "ignore": []}, {"type": "quantize"}], "seed": 0})
    assert flat == {"model.source": "zoo", "model.input_shape": "[1, 1, 8, 8]", "passes.0.type": "prune",
                    "passes.0.ignore": "[]", "passes.1.type": "quantize", "seed": "0"}
    assert len(flatten({"x": "y" * 2000})["x"]) == 500


def test_metrics_of_an_unfinished_report():
    assert report_metrics(Report(recipe={}, environment={}, status="failed")) == {"passed": 0.0}


def test_missing_mlflow_fails_before_any_work(write_recipe, monkeypatch, tmp_path):
    monkeypatch.setattr(mlflow_log, "mlflow_installed", lambda: False)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["compress", str(write_recipe()), "-o", str(out), "--mlflow", "-q"])
    assert result.exit_code == 2 and "edgec[mlflow]" in result.output
    assert not out.exists()


def test_run_is_logged_to_a_local_file_store(write_recipe, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow not installed (pip install 'edgec[mlflow]')")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow >= 3.x opt-in for file stores
    from mlflow.tracking import MlflowClient

    store = (tmp_path / "mlruns").as_uri()
    recipe = write_recipe()
    text = recipe.read_text() + f"mlflow: {{tracking_uri: '{store}', experiment: edgec-test}}\n"
    recipe.write_text(text)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["compress", str(recipe), "-o", str(out), "--json", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())

    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("edgec-test").experiment_id])
    assert run.info.run_name == "run" and run.data.tags["edgec.status"] == "ok"
    assert run.data.params["passes.0.type"] == "quantize" and run.data.params["model.source"] == "python"
    metrics = run.data.metrics
    assert metrics["compressed_size_bytes"] == report["compressed"]["size_bytes"]
    assert metrics["ratio_speedup_p50"] == pytest.approx(report["ratios"]["speedup_p50"])
    assert metrics["passed"] == 1.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.onnx", "report.json", "report.html", "report.md"} <= artifacts


@pytest.fixture
def mlflow_home(tmp_path, monkeypatch):
    """mlflow, run from tmp_path with no tracking URI from the environment or an earlier test
    (log_to_mlflow sets MLflow's process-wide one) and no folder-store opt-in."""
    mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (pip install 'edgec[mlflow]')")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None, raising=False)
    return mlflow


def _hide_database_packages(monkeypatch):
    """As after `pip install mlflow-skinny` alone: sqlalchemy and alembic cannot be imported."""
    for name in ("sqlalchemy", "alembic"):
        monkeypatch.setitem(sys.modules, name, None)


def _compress(recipe, out, *args):
    return CliRunner().invoke(cli, ["compress", str(recipe), "-o", str(out), "-q", *args])


def test_database_store_without_its_packages_fails_before_any_work(mlflow_home, write_recipe, tmp_path,
                                                                   monkeypatch):
    _hide_database_packages(monkeypatch)
    db = tmp_path / "m.db"
    recipe = write_recipe()
    recipe.write_text(recipe.read_text() + f"mlflow: {{tracking_uri: 'sqlite:///{db}'}}\n")
    result = _compress(recipe, tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert f"sqlite:///{db} (mlflow.tracking_uri)" in result.output
    assert "needs sqlalchemy and alembic" in result.output and "edgec[mlflow]" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists() and not db.exists()


def test_default_store_without_its_packages_is_named(mlflow_home, write_recipe, tmp_path, monkeypatch):
    if not mlflow_home.get_tracking_uri().startswith("sqlite:"):
        pytest.skip("this MLflow's default store is a folder (MLflow 2), not sqlite")
    _hide_database_packages(monkeypatch)
    result = _compress(write_recipe(), tmp_path / "run", "--mlflow")
    assert result.exit_code == 2, result.output
    assert "mlflow.db (MLflow's default), which needs sqlalchemy and alembic" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("opt_in", [None, "yes"])
def test_folder_store_without_mlflows_opt_in_fails_before_any_work(mlflow_home, write_recipe, tmp_path,
                                                                   monkeypatch, opt_in):
    if not hasattr(mlflow_home.environment_variables, "MLFLOW_ALLOW_FILE_STORE"):
        pytest.skip("this MLflow (< 3.13) still writes folder stores without an opt-in")
    if opt_in:
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", opt_in)
    result = _compress(write_recipe(), tmp_path / "run", "--set", "mlflow.tracking_uri=file:./mlruns")
    assert result.exit_code == 2, result.output
    if opt_in:
        assert "$MLFLOW_ALLOW_FILE_STORE has a value MLflow does not accept" in result.output
    else:
        assert "folder store file:./mlruns (mlflow.tracking_uri)" in result.output
        assert "MLFLOW_ALLOW_FILE_STORE=true" in result.output and "sqlite:///mlflow.db" in result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "mlruns").exists()


def test_sqlite_store_that_cannot_be_written_fails_before_any_work(mlflow_home, write_recipe, tmp_path):
    pytest.importorskip("sqlalchemy", reason="sqlalchemy not installed (pip install 'edgec[mlflow]')")
    (tmp_path / "afile").write_text("")
    result = _compress(write_recipe(), tmp_path / "run", "--set", "mlflow.tracking_uri=sqlite:///afile/m.db")
    assert result.exit_code == 2, result.output
    assert "MLflow's database file 'afile/m.db': 'afile' is a file" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MLflow's own SQLAlchemy calls, not ours
def test_run_is_logged_to_mlflows_default_store(mlflow_home, write_recipe, tmp_path):
    """What `pip install 'edgec[mlflow]'` then `--mlflow` does: no setup, ./mlflow.db."""
    for name in ("sqlalchemy", "alembic"):
        pytest.importorskip(name, reason=f"{name} not installed (pip install 'edgec[mlflow]')")
    if not mlflow_home.get_tracking_uri().startswith("sqlite:"):
        pytest.skip("this MLflow's default store is a folder (MLflow 2), not sqlite")
    result = _compress(write_recipe(), tmp_path / "run", "--mlflow")
    assert result.exit_code == 0, result.output
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("edgec").experiment_id])
    assert run.info.run_name == "run" and run.data.metrics["passed"] == 1.0
    assert "model.onnx" in {a.path for a in client.list_artifacts(run.info.run_id)}
