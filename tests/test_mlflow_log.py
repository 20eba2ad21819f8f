"""MLflow logging: params/metrics/artifacts against a local file store (skipped without mlflow),
and a clean exit 2 before any work when mlflow is asked for but not installed."""

import json

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
