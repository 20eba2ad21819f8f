"""CI outputs: JUnit XML per budget, job summary Markdown, check-budgets, --against; exit codes."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgec.budgets import BudgetRow
from edgec.ci_outputs import junit_xml, summary_markdown, write_ci_outputs
from edgec.cli import cli
from edgec.errors import OutputError
from edgec.report import Report


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _report(**kw):
    rows = [BudgetRow("max_size_kb", 200, 102.9, True, "KiB"),
            BudgetRow("min_speedup", 1.5, 1.49, True, "x", "inconclusive", 1.4, 1.6, "CI"),
            BudgetRow("max_accuracy_drop", 0.01, 0.02, False, "")]
    return Report(recipe={}, environment={}, budgets=rows, started="2026-01-01T00:00:00", **kw)


def test_junit_one_case_per_budget_with_failures_and_skips():
    root = ET.fromstring(junit_xml(_report()))
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["max_size_kb", "min_speedup", "max_accuracy_drop"]
    assert root.get("tests") == "3" and root.get("failures") == "1" and root.get("skipped") == "1"
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {"max_accuracy_drop"}
    assert "limit <= 0.01" in cases[2].find("failure").get("message")
    assert cases[1].find("skipped") is not None  # inconclusive stays visible


def test_junit_failed_run_is_an_error_case():
    report = Report(recipe={}, environment={}, status="failed",
                    error={"step": "export", "type": "ExportError", "message": "bad <op> & co"})
    root = ET.fromstring(junit_xml(report))
    (case,) = root.findall("./testsuite/testcase")
    assert case.get("name") == "run" and "bad <op> & co" in case.find("error").get("message")
    assert root.get("errors") == "1"


def test_summary_markdown_names_missed_budget():
    text = summary_markdown(_report())
    assert text.startswith("### ❌") and "max_accuracy_drop" in text.splitlines()[0]
    assert "| min_speedup | 1.5 | 1.49 x (CI 1.4–1.6) | PASS (inconclusive) |" in text


def test_step_summary_is_appended(tmp_path, monkeypatch):
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    write_ci_outputs(_report(), tmp_path / "sub" / "j.xml", None)
    text = step.read_text()
    assert text.startswith("earlier step\n") and "### ❌ edgec" in text
    assert (tmp_path / "sub" / "j.xml").is_file()


def test_summary_md_naming_the_step_summary_is_appended_once(tmp_path, monkeypatch):
    """--summary-md "$GITHUB_STEP_SUMMARY": written once, appended (the other steps' summaries
    kept), not overwritten and then appended a second time."""
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    monkeypatch.chdir(tmp_path)
    written = write_ci_outputs(_report(), None, Path("step.md"))  # same file, another spelling
    text = step.read_text()
    assert text.startswith("earlier step\n") and text.count("### ❌ edgec") == 1
    assert written == [step]


def test_junit_naming_the_step_summary_is_refused(gated_run, tmp_path, monkeypatch):
    _, folder = gated_run
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 1000\n")
    result = run("check-budgets", folder / "run" / "model.onnx", "--budgets", budgets,
                 "--junit", step)
    assert result.exit_code == 2 and "is the job summary ($GITHUB_STEP_SUMMARY)" in result.output
    assert step.read_text().startswith("earlier step\n") and "<testsuites" not in step.read_text()


def test_compress_writes_junit_and_exits_1(gated_run):
    result, folder = gated_run
    assert result.exit_code == 1, result.output
    root = ET.fromstring((folder / "junit.xml").read_text())
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"max_size_kb", "max_params"}
    assert cases["max_size_kb"].find("failure") is not None
    assert cases["max_params"].find("failure") is None
    assert "max_size_kb" in (folder / "summary.md").read_text()


def test_compress_failure_still_writes_junit(write_recipe, tmp_path):
    recipe = write_recipe("""\
        version: 1
        model: {source: python, callable: "tiny_models.py:raises", input_shape: [1, 1, 8, 8]}
        data: {source: digits}
        """)
    result = run("compress", recipe, "-o", tmp_path / "run", "-q", "--junit", tmp_path / "j.xml")
    assert result.exit_code == 3
    case = ET.fromstring((tmp_path / "j.xml").read_text()).find("./testsuite/testcase")
    assert case.get("name") == "run" and case.find("error") is not None
    assert "boom" in case.find("error").get("message")
    assert "at load model" in case.find("error").get("message")  # the step report.json names


def test_invalid_recipe_writes_junit_error(write_recipe, tmp_path):
    recipe = write_recipe("version: 1\nmodel: {source: nowhere}\n")
    result = run("compress", recipe, "-o", tmp_path / "run", "--junit", tmp_path / "j.xml")
    assert result.exit_code == 2
    case = ET.fromstring((tmp_path / "j.xml").read_text()).find("./testsuite/testcase")
    assert case.find("error").get("type") == "RecipeError"


def test_check_budgets_exit_codes(gated_run, tmp_path):
    _, folder = gated_run
    model, base = folder / "run" / "model.onnx", folder / "run" / "baseline.onnx"
    ok = tmp_path / "ok.yaml"
    ok.write_text("max_size_kb: 1000\nmax_params: 1000000\n")
    assert run("check-budgets", model, "--budgets", ok, "--runs", 5).exit_code == 0
    result = run("check-budgets", model, "--budgets", ok, "--runs", 5, "--set", "max_size_kb=0.5",
                 "--junit", tmp_path / "j.xml", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["budgets"][0]["passed"] is False
    assert ET.fromstring((tmp_path / "j.xml").read_text()).get("failures") == "1"
    rel = tmp_path / "rel.yaml"
    rel.write_text("budgets: {min_size_reduction: 1.01}\n")  # a recipe-style file works too
    result = run("check-budgets", model, "--budgets", rel, "--runs", 5)
    assert result.exit_code == 2 and "--baseline" in result.output
    assert run("check-budgets", model, "--budgets", rel, "--baseline", base, "--runs", 5).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_size_kbb: 3\n")
    result = run("check-budgets", model, "--budgets", bad)
    assert result.exit_code == 2 and "max_size_kbb" in result.output
    result = run("check-budgets", model, "--budgets", tmp_path)
    assert result.exit_code == 2 and "is a folder" in result.output


def test_check_budgets_measures_memory_budgets(gated_run, tmp_path):
    """max_flash_kb / max_ram_kb / max_peak_activation_kb are estimated as compress does, not
    'not measured' (which failed every such gate)."""
    _, folder = gated_run
    model = folder / "run" / "model.onnx"
    budgets = tmp_path / "mem.yaml"
    budgets.write_text("max_flash_kb: 1000\nmax_ram_kb: 1000\nmax_peak_activation_kb: 1000\n")
    result = run("check-budgets", model, "--budgets", budgets, "--runs", 3, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {r["name"]: r for r in report["budgets"]}
    assert rows["max_flash_kb"]["actual"] == pytest.approx(model.stat().st_size / 1024)
    assert 0 < rows["max_peak_activation_kb"]["actual"] < rows["max_ram_kb"]["actual"]
    assert report["device"]["memory"]["compressed"]["ram_kb"] == rows["max_ram_kb"]["actual"]
    result = run("check-budgets", model, "--budgets", budgets, "--runs", 3,
                 "--set", "max_peak_activation_kb=0.001")
    assert result.exit_code == 1 and "max_peak_activation_kb" in result.output


def test_check_budgets_reads_budgets_from_a_pipe(gated_run, tmp_path):
    """--budgets <(echo ...) or /dev/stdin in a CI script: a pipe, not a regular file."""
    import os
    import threading

    _, folder = gated_run
    fifo = tmp_path / "budgets.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=("max_size_kb: 0.5\n",), daemon=True)
    writer.start()
    result = run("check-budgets", folder / "run" / "model.onnx", "--budgets", fifo, "--runs", 3)
    writer.join(timeout=10)  # daemon: never blocks the suite if the pipe was not read
    assert result.exit_code == 1 and "max_size_kb" in result.output


def test_against_a_stored_report(gated_run, tmp_path):
    """check-budgets --against: size growth gated, a different CPU flags latency inconclusive."""
    _, folder = gated_run
    stored = json.loads((folder / "run" / "report.json").read_text())
    stored["compressed"]["size_bytes"] = int(stored["compressed"]["size_bytes"] * 0.8)
    stored["environment"]["cpu"] = "Some Other CPU"
    stored["ratios"]["speedup_paired"] = 1.0
    (tmp_path / "main.json").write_text(json.dumps(stored))
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_growth: 0.05\nmax_latency_growth: 0.5\n")
    args = ("check-budgets", folder / "run" / "model.onnx", "--budgets", budgets, "--baseline",
            folder / "run" / "baseline.onnx", "--runs", 5, "--min-seconds", 0, "--against",
            tmp_path / "main.json", "--json")
    result = run(*args)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    rows = {r["name"]: r for r in report["budgets"]}
    assert rows["max_size_growth"]["passed"] is False
    assert rows["max_size_growth"]["actual"] == pytest.approx(0.25, abs=0.01)
    assert rows["max_latency_growth"]["verdict"] == "inconclusive"
    assert rows["max_latency_growth"]["passed"] is True
    assert report["against"]["cross_cpu"] is True and "cpu" in report["against"]["environment_diff"]
    result = run(*args, "--fail-on-inconclusive")
    rows = {r["name"]: r for r in json.loads(result.stdout)["budgets"]}
    assert rows["max_latency_growth"]["passed"] is False


def test_against_rejects_a_non_report(tmp_path, write_recipe):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    result = run("compress", write_recipe(), "-o", tmp_path / "run", "--against", tmp_path / "x.json")
    assert result.exit_code == 2 and "edgec report" in result.output
    assert not (tmp_path / "run").exists()


def test_ci_examples_are_valid():
    from pathlib import Path

    import yaml

    from edgec.budget_check import load_budgets

    folder = Path(__file__).parents[1] / "examples" / "ci"
    gh = yaml.safe_load((folder / "github-actions.yml").read_text())
    steps = " ".join(s.get("run", "") for s in gh["jobs"]["budgets"]["steps"])
    assert "edgec compress" in steps and "--junit" in steps and "check-budgets" in steps
    assert "--against main-report/report.json" in steps  # the regression gate the header promises
    uploads = [s for s in gh["jobs"]["budgets"]["steps"] if s.get("with", {}).get("name") ==
               "edgec-report-main"]
    triggers = gh.get(True, gh.get("on"))  # YAML 1.1 reads the key `on:` as True
    assert len(uploads) == 2 and "push" in triggers and "pull_request" in triggers
    gl = yaml.safe_load((folder / "gitlab-ci.yml").read_text())
    assert gl["edgec-budgets"]["artifacts"]["reports"]["junit"]
    assert "--against main-report.json" in " ".join(gl["edgec-budgets"]["script"])
    assert load_budgets(folder / "budgets.yaml").max_size_kb == 200
    # a user's repository has no configs/ or examples/ci/ of edgec's: the steps read the paths
    # from variables set once at the top, which name files of this repository as shipped
    root = folder.parents[1]
    for paths, script in ((gh["env"], steps), (gl["edgec-budgets"]["variables"],
                                               " ".join(gl["edgec-budgets"]["script"]))):
        assert set(paths) == {"EDGEC_RECIPE", "EDGEC_BUDGETS"}
        assert all((root / p).is_file() for p in paths.values())
        assert '"$EDGEC_RECIPE"' in script and '"$EDGEC_BUDGETS"' in script
        assert "configs/" not in script and "examples/" not in script


def test_report_markdown_shows_interval_and_inconclusive():
    from edgec.report_text import to_markdown

    text = to_markdown(_report())
    assert "| min_speedup | 1.5 | 1.49 x (CI 1.4–1.6) | PASS (inconclusive) |" in text


def test_ci_output_paths_are_checked_before_any_work(write_recipe, tmp_path):
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir").mkdir()
    same = tmp_path / "ci.out"
    for args, message in ((("--junit", tmp_path / "adir"), "is a folder"),
                          (("--summary-md", tmp_path / "afile" / "s.md"),
                           "afile' is a file, not a folder"),
                          (("--junit", same, "--summary-md", same), "both name")):
        result = run("compress", write_recipe(), "-o", tmp_path / "run", *args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert "finished" not in result.output and "warning" not in result.output  # nothing ran
        assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()
    # the clash is --summary-md's: the JUnit file is written, and tells CI why nothing ran
    assert "both name" in ET.fromstring(same.read_text()).find(".//error").get("message")
    assert not list(tmp_path.rglob(".*tmp*"))  # no stray temp file either


def test_a_refused_junit_path_still_gets_the_summary(write_recipe, tmp_path):
    (tmp_path / "afile").write_text("")
    result = run("compress", write_recipe(), "-o", tmp_path / "run", "--junit",
                 tmp_path / "afile" / "j.xml", "--summary-md", tmp_path / "s.md")
    assert result.exit_code == 2 and "is a file, not a folder" in result.output, result.output
    assert "finished" not in result.output and "warning" not in result.output
    assert "--junit" in (tmp_path / "s.md").read_text()  # CI's page says why


def test_an_unwritable_step_summary_does_not_change_the_verdict(gated_run, tmp_path, monkeypatch):
    _, folder = gated_run
    ok = tmp_path / "ok.yaml"
    ok.write_text("max_size_kb: 1000\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "missing" / "summary.md"))
    result = run("check-budgets", folder / "run" / "model.onnx", "--budgets", ok, "--runs", 3)
    assert result.exit_code == 0 and "GITHUB_STEP_SUMMARY" in result.output


def test_check_budgets_refuses_gates_it_cannot_decide(gated_run, tmp_path):
    _, folder = gated_run
    model, base = folder / "run" / "model.onnx", folder / "run" / "baseline.onnx"
    stored = folder / "run" / "report.json"
    budgets = tmp_path / "b.yaml"
    cases = [("max_size_growth: 0.1\n", (), "without --against nothing would be checked"),
             ("max_accuracy_loss: 0.01\n", ("--against", stored), "labelled evaluation data"),
             ("max_latency_growth: 0.1\n", ("--against", stored), "--baseline")]
    for text, extra, message in cases:
        budgets.write_text(text)
        result = run("check-budgets", model, "--budgets", budgets, *extra, "--junit",
                     tmp_path / "j.xml")
        assert result.exit_code == 2 and message in result.output, result.output
        case = ET.fromstring((tmp_path / "j.xml").read_text()).find("./testsuite/testcase")
        assert case.find("error") is not None  # CI sees why, as with compress
    budgets.write_text("max_latency_growth: 0.5\n")
    result = run("check-budgets", model, "--budgets", budgets, "--against", folder / "run",
                 "--baseline", base, "--runs", 5, "--min-seconds", 0)  # a run folder works too
    assert result.exit_code in (0, 1) and "max_latency_growth" in result.output


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["compressed"].update(size_bytes="big"), "compressed.size_bytes is 'big'"),
    (lambda r: r["compressed"].update(size_bytes=0), "compressed.size_bytes is 0"),
    (lambda r: r["compressed"].update(accuracy=[1]), "compressed.accuracy"),
    (lambda r: r.update(ratios={"speedup_p1": "fast"}), "ratios.speedup_p1"),
    (lambda r: r.update(environment="x"), "'environment' is 'x', not a mapping"),
    (lambda r: r.update(baseline=5), "'baseline' is 5, not a mapping"),
    (lambda r: r.update(recipe=[]), "'recipe' is [], not a mapping"),
    (lambda r: r["recipe"].update(model="m"), "recipe.model is 'm'"),
    (lambda r: r["compressed"].update(accuracy=float("nan")), "compressed.accuracy is nan"),
    (lambda r: r["compressed"].update(accuracy=1.5), "between 0 and 1"),
    (lambda r: r["compressed"].update(size_bytes=float("inf")), "size_bytes is inf, not a finite"),
    (lambda r: r["ratios"].update(speedup_p1=float("inf")), "ratios.speedup_p1 is inf"),
    # a JSON integer too large for a float crashed the check itself (OverflowError, exit 3)
    (lambda r: r["compressed"].update(size_bytes=10**400), "compressed.size_bytes is 10000"),
    (lambda r: r["ratios"].update(speedup_p1=10**400), "ratios.speedup_p1 is 10000"),
    (lambda r: r["baseline"]["latency_ms"].update(runs=10**400), "baseline.latency_ms.runs is 1000"),
    (lambda r: r["compressed"]["latency_ms"].update(mean=-1), "compressed.latency_ms.mean is -1"),
    (lambda r: r["compressed"].update(size_bytes=0.5), "not a finite positive whole number"),
])
def test_against_refuses_an_edited_report_before_any_work(gated_run, tmp_path, write_recipe, edit,
                                                           message):
    _, folder = gated_run
    stored = json.loads((folder / "run" / "report.json").read_text())
    edit(stored)
    (tmp_path / "main.json").write_text(json.dumps(stored))
    result = run("compress", write_recipe(), "-o", tmp_path / "run", "--against",
                 tmp_path / "main.json")
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("command", ["compress", "check-budgets"])
def test_a_path_nothing_can_be_written_to_is_refused_before_any_work(command, gated_run,
                                                                      write_recipe, tmp_path):
    """os.access says yes to root whatever the file system says: /proc (like a read-only mount)
    refuses the write anyway. Both commands refuse it as a usage error before any work, instead
    of exiting 3 at the end with a message about a report.json check-budgets never writes."""
    _, folder = gated_run
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 1000\n")
    args = (["compress", write_recipe(), "-o", tmp_path / "run"] if command == "compress" else
            ["check-budgets", folder / "run" / "model.onnx", "--budgets", budgets, "--runs", 3])
    result = run(*args, "--junit", "/proc/edgec-ci/j.xml", "--summary-md", tmp_path / "s.md")
    assert result.exit_code == 2, result.output
    assert "Cannot write --junit '/proc/edgec-ci/j.xml'" in result.output
    assert "report.json" not in result.output and ".tmp-" not in result.output
    assert "budget" not in result.output.lower()  # nothing was measured
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.partial").exists()
    assert "--junit" in (tmp_path / "s.md").read_text()  # CI's page still says why


def test_a_pipe_or_device_is_refused_not_replaced(gated_run, tmp_path):
    """The atomic write renames a temporary file over the path: over /dev/null it replaced the
    device with a regular file (as root, where CI containers run). A FIFO stands in for it here,
    so that this test cannot damage the machine when the check is missing."""
    import os
    import stat

    _, folder = gated_run
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 1000\n")
    fifo = tmp_path / "junit.fifo"
    os.mkfifo(fifo)
    result = run("check-budgets", folder / "run" / "model.onnx", "--budgets", budgets,
                 "--junit", fifo)
    assert result.exit_code == 2 and f"'{fifo}' is not a regular file" in result.output
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_ci_file_lost_after_the_work_keeps_the_verdict(gated_run, tmp_path, monkeypatch):
    """A disk that fills up during the measurement: the verdict is printed first, then the
    error names --junit and its path (not the temporary file, not a report.json) and exits 3."""
    import edgec.report

    _, folder = gated_run
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 0.001\n")
    written = edgec.report.write_text_atomic

    def full_disk(path, text):
        if path.suffix == ".xml":
            raise OSError(28, "No space left on device", str(path.with_name(".j.xml.tmp-1")))
        written(path, text)

    monkeypatch.setattr(edgec.report, "write_text_atomic", full_disk)
    result = run("check-budgets", folder / "run" / "model.onnx", "--budgets", budgets, "--runs", 3,
                 "--junit", tmp_path / "j.xml", "--summary-md", tmp_path / "s.md")
    assert result.exit_code == 3, result.output
    assert f"Cannot write --junit '{tmp_path / 'j.xml'}': No space left on device." in result.output
    assert "report.json" not in result.output and ".tmp-" not in result.output
    assert "verdict above stands (budget missed)" in result.output
    assert result.output.index("budget missed: max_size_kb") < result.output.index("error:")
    # compress did write a report.json: its message may point there
    report = Report(recipe={}, environment={}, run_dir=str(tmp_path / "runs" / "x"))
    with pytest.raises(OutputError, match=r"'.*runs/x/report.json' holds its results"):
        write_ci_outputs(report, tmp_path / "j.xml", None)


def test_against_refuses_an_out_of_range_report_in_check_budgets_too(gated_run, tmp_path):
    """The latency timings were read only after the whole run (the snapshot check), where 10**400
    crashed it; and an integer of 5000 digits is more than json.loads reads (a ValueError)."""
    _, folder = gated_run
    stored = json.loads((folder / "run" / "report.json").read_text())
    stored["baseline"]["latency_ms"]["runs"] = 10**400
    (tmp_path / "main.json").write_text(json.dumps(stored))
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 1000\nmax_latency_growth: 0.5\n")
    args = ("check-budgets", folder / "run" / "model.onnx", "--budgets", budgets, "--baseline",
            folder / "run" / "baseline.onnx", "--runs", 3, "--min-seconds", 0, "--against")
    result = run(*args, tmp_path / "main.json")
    assert result.exit_code == 2 and "baseline.latency_ms.runs is 1000" in result.output
    assert "max_size_kb" not in result.output and "internal error" not in result.output
    (tmp_path / "huge.json").write_text('{"schema": "edgec.report/1", "n": 1' + "0" * 5000 + "}")
    result = run(*args, tmp_path / "huge.json")
    assert result.exit_code == 2 and "is not a readable JSON report" in result.output


def test_against_reads_a_pipe_and_names_a_device(gated_run, tmp_path):
    """--against <(curl ...) is a pipe, /dev/null a device: both exist, and were said not to."""
    import os
    import threading

    _, folder = gated_run
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 1000\nmax_size_growth: 0.05\n")
    args = ("check-budgets", folder / "run" / "model.onnx", "--budgets", budgets, "--runs", 3,
            "--json", "--against")
    result = run(*args, "/dev/null")
    assert result.exit_code == 2 and "'/dev/null' is not a regular file" in result.output
    assert "does not exist" not in result.output
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    text = (folder / "run" / "report.json").read_text()
    writer = threading.Thread(target=fifo.write_text, args=(text,), daemon=True)
    writer.start()
    result = run(*args, fifo)
    writer.join(timeout=10)  # daemon: never blocks the suite if the pipe was not read
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)["budgets"]}
    assert rows["max_size_growth"]["verdict"] == "pass" and rows["max_size_growth"]["actual"] == 0


def test_a_plausible_edit_is_used_as_the_readme_says(gated_run, tmp_path):
    """load_against checks shape and range, not tampering; the README says no more than that."""
    from edgec.regression import load_against

    _, folder = gated_run
    stored = json.loads((folder / "run" / "report.json").read_text())
    stored["compressed"]["size_bytes"] = 50000
    (tmp_path / "main.json").write_text(json.dumps(stored))
    assert load_against(tmp_path / "main.json")["compressed"]["size_bytes"] == 50000
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert "unedited" not in readme and "not checked for tampering" in readme


def test_ci_files_escape_what_xml_does_not_allow(tmp_path):
    """A control character (a file name, an ANSI colour in a message) was written raw into the
    JUnit file, which no XML parser then read."""
    bad = "bad\x01<&>\x1b[31m.json\udcff"
    report = Report(recipe={}, environment={}, status="failed",
                    error={"step": "setup", "type": "UsageError", "message": f"--against '{bad}'"},
                    budgets=[BudgetRow("max_size_kb", 1, 2, False, "KiB", note=f"x\x07{bad}")])
    root = ET.fromstring(junit_xml(report, suite="edgec check-budgets m\x1b.onnx"))
    message = root.find(".//error").get("message")
    assert "bad\\x01<&>\\x1b[31m.json\\udcff" in message  # visible, not dropped
    assert "x\\x07bad" in root.find(".//failure").text
    assert root.get("name") == "edgec check-budgets m\\x1b.onnx"
    summary = summary_markdown(report)
    assert "\x1b" not in summary and "\x01" not in summary and "\\x01" in summary
    write_ci_outputs(report, tmp_path / "j.xml", tmp_path / "s.md")  # a lone surrogate: UTF-8 ok
    ET.parse(tmp_path / "j.xml")


def test_a_failure_without_report_json_names_its_step_in_the_junit(tmp_path):
    """A disk too full for report.json: the JUnit file takes the step from the error itself
    (run_failure sets run_step), not 'setup'."""
    from edgec.ci_outputs import write_failed_ci_outputs

    exc = OutputError("No space left on device.")
    exc.run_folder, exc.run_step = tmp_path / "run.partial", "reuse export"
    write_failed_ci_outputs(exc, None, tmp_path / "j.xml", None)
    (case,) = ET.parse(tmp_path / "j.xml").getroot().findall("./testsuite/testcase")
    assert "reuse export" in case.find("error").get("message") + (case.find("error").text or "")
