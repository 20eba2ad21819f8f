"""End to end through the CLI on a tiny model: exit codes, artifacts, report contract."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgec.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One real compression of the tiny CNN, shared by the tests that read its outputs."""
    import shutil

    from conftest import FIXTURES, TINY_RECIPE

    folder = tmp_path_factory.mktemp("cli")
    shutil.copy(FIXTURES / "tiny_models.py", folder / "tiny_models.py")
    recipe = folder / "r.yaml"
    recipe.write_text(TINY_RECIPE)
    out = folder / "run"
    result = run("compress", recipe, "-o", out, "--json", "-q")
    return result, out, recipe


def test_compress_succeeds_and_writes_artifacts(finished_run):
    result, out, _ = finished_run
    assert result.exit_code == 0, result.output
    for name in ("model.onnx", "baseline.onnx", "recipe.yaml", "report.json", "report.md"):
        assert (out / name).is_file(), name
    assert not any(p.name.startswith(".") for p in out.parent.iterdir() if p.name != ".pytest_cache")


def test_report_json_contract(finished_run):
    result, out, _ = finished_run
    report = json.loads((out / "report.json").read_text())
    assert json.loads(result.output) == report  # --json prints exactly the stored report
    assert report["schema"] == "edgec.report/1"
    assert report["status"] == "ok" and report["passed"] is True
    for key in ("python", "torch", "onnx", "onnxruntime", "cpu", "cpu_flags", "threads"):
        assert key in report["environment"], key
    for side in ("baseline", "compressed"):
        metrics = report[side]
        for key in ("size_bytes", "size_gzip_bytes", "params", "nonzero_params", "macs", "flops",
                    "latency_ms", "accuracy", "agreement"):
            assert key in metrics, (side, key)
        assert metrics["flops"] == 2 * metrics["macs"]
        assert {"p50", "p90", "p99", "mean"} <= set(metrics["latency_ms"])
        assert Path(metrics["path"]).is_file() and Path(metrics["path"]).parent == out
    assert report["baseline"]["agreement"] == 1.0
    for key in ("size", "size_gzip", "flops", "speedup_p50", "accuracy_drop"):
        assert key in report["ratios"], key
    (quant,) = report["passes"]
    assert quant["type"] == "quantize" and quant["seconds"] >= 0
    assert {"params_before", "params_after", "notes"} <= set(quant)
    assert report["export"]["parity"]["baseline"]["max_abs_diff"] < 1e-3
    # int8 weights: the conv/linear weights are stored as int8 and the file shrinks (this tiny
    # model's file is dominated by graph overhead, so the ratio is modest)
    assert "int8" in report["compressed"]["weight_dtypes"]
    assert report["ratios"]["size"] > 1.05


def test_report_markdown_is_readable(finished_run):
    _, out, _ = finished_run
    text = (out / "report.md").read_text()
    assert "| metric | baseline | compressed | change |" in text
    assert "## Environment" in text and "quantize" in text


def test_existing_run_is_not_overwritten(finished_run):
    _, out, recipe = finished_run
    before = (out / "report.json").read_text()
    result = run("compress", recipe, "-o", out, "-q")
    assert result.exit_code == 2
    assert "--force" in result.output
    assert (out / "report.json").read_text() == before


def test_missed_budget_exits_1_and_names_it(write_recipe, tmp_path):
    recipe = write_recipe(
        "version: 1\n"
        "model: {source: python, callable: 'tiny_models.py:tiny_cnn', input_shape: [1, 1, 8, 8]}\n"
        "data: {source: digits}\n"
        "benchmark: {runs: 5, warmup: 1}\n"
        "budgets: {max_size_kb: 0.5, max_params: 1000000}\n"
    )
    out = tmp_path / "budget-run"
    result = run("compress", recipe, "-o", out, "-q")
    assert result.exit_code == 1, result.output
    assert "max_size_kb" in result.output and "FAIL" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is False and report["status"] == "ok"
    rows = {b["name"]: b for b in report["budgets"]}
    assert rows["max_size_kb"]["passed"] is False and rows["max_params"]["passed"] is True


def test_results_line_lists_only_the_files_written(write_recipe, tmp_path):
    recipe = write_recipe(
        "version: 1\n"
        "model: {source: python, callable: 'tiny_models.py:tiny_cnn', input_shape: [1, 1, 8, 8]}\n"
        "benchmark: {runs: 5, warmup: 1}\nreport: {profile: {enabled: false}}\n"
    )
    out = tmp_path / "no-html"
    result = run("compress", recipe, "-o", out, "-q", "--set", "report.html=false")
    assert result.exit_code == 0, result.output
    assert not (out / "report.html").exists()
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "results in" in said and "(report.json, report.md, model.onnx)" in said
    assert "report.html" not in said


def test_runtime_failure_exits_3_and_leaves_failed_report(write_recipe, tmp_path):
    recipe = write_recipe(
        "version: 1\n"
        "model: {source: python, callable: 'tiny_models.py:raises', input_shape: [1, 1, 8, 8]}\n"
    )
    out = tmp_path / "failed-run"
    result = run("compress", recipe, "-o", out, "-q")
    assert result.exit_code == 3, result.output
    assert "boom from the user's code" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()  # a failed run never sits where a complete one would
    report = json.loads((out.with_name("failed-run.partial") / "report.json").read_text())
    assert report["status"] == "failed" and report["passed"] is False
    assert report["error"]["step"] == "load model"


def test_missing_recipe_exits_2(tmp_path):
    result = run("compress", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_validate_ok(write_recipe):
    result = run("validate", write_recipe())
    assert result.exit_code == 0
    assert "valid" in result.output and "quantize" in result.output


def test_inspect_and_bench(finished_run):
    _, out, _ = finished_run
    result = run("inspect", out / "baseline.onnx", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["macs"] > 0 and stats["flops"] == 2 * stats["macs"]
    assert stats["layers"]
    result = run("bench", out / "baseline.onnx", "--vs", out / "model.onnx", "--runs", "5", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert len(metrics) == 2
    assert all(m["accuracy"] is None for m in metrics.values())  # random inputs: no labels
    table = run("bench", out / "baseline.onnx", "--vs", out / "model.onnx", "--runs", "5").output
    size_row = next(line for line in table.splitlines() if "size vs baseline " in line)
    assert "reference" in size_row and "x smaller" in size_row  # int8 is smaller, said in words
    assert re.search(r"speed vs baseline .*reference.*x (faster|slower)", table)


def test_inspect_corrupt_onnx_exits_cleanly(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file at all")
    result = run("inspect", bad)
    assert result.exit_code in (2, 3)
    assert "bad.onnx" in result.output and "Traceback" not in result.output


def test_python_api_returns_report(write_recipe, tmp_path):
    import edgec

    report = edgec.compress(write_recipe(), overrides=["passes.0.mode=dynamic"],
                            output=tmp_path / "api-run")
    assert report.status == "ok"
    assert report.passes[0].details.get("mode") == "dynamic"
    assert (tmp_path / "api-run" / "model.onnx").is_file()


def test_passes_table_keeps_text_in_square_brackets(monkeypatch):
    """rich read '[str, float (>= 0, < 1)]' and '[min, max]' as markup and dropped them: the
    table said 'mapping' where --json says 'mapping[str, float (>= 0, < 1)]'."""
    monkeypatch.setenv("COLUMNS", "400")  # one line per field: no folding inside a type
    result = CliRunner().invoke(cli, ["passes"])
    assert result.exit_code == 0, result.output
    assert "mapping[str, float (>= 0, < 1)]" in result.output  # prune layers
    assert "list[str]" in result.output and "evenly over [min, max]" in result.output


@pytest.mark.parametrize("command,listed,absent", [
    ("compress", ["0 ", "1 ", "2 ", "3 ", "130 "], ["141 "]),
    ("inspect", ["0 ", "2 ", "3 ", "141 "], ["1 ", "130 "]),
    ("validate", ["0 ", "2 "], ["1 ", "3 ", "130 "]),
    ("compare", ["0 ", "2 "], ["1 ", "3 ", "130 "]),
    ("sensitivity", ["0 ", "2 ", "3 ", "130 ", "141 "], ["1 "]),  # `| head` on its table
])
def test_help_lists_only_the_exit_codes_a_command_gives(command, listed, absent):
    text = run(command, "--help").output
    codes = text[text.index("Exit codes:"):]
    lines = [line.strip() for line in codes.splitlines()[1:] if line.strip()]
    assert all(any(line.startswith(c) for line in lines) for c in listed), lines
    assert not any(line.startswith(c) for c in absent for line in lines), lines
