"""`edgec compare`: several runs' report.json side by side, printed and written."""

import csv
import io
import json

from click.testing import CliRunner

from edgec.cli import cli
from edgec.compare import GATED_SPEEDUP, compare_table


def fake_run(folder, *, size_kb, speedup, accuracy, passed=True, status="ok", passes=("quantize",),
             speedup_p50=None):
    folder.mkdir(parents=True)
    compressed = {"size_bytes": size_kb * 1024, "size_gzip_bytes": size_kb * 512, "params": 1000,
                  "macs": 5000, "latency_ms": {"p50": 0.5}, "accuracy": accuracy}
    report = {
        "schema": "edgec.report/1", "status": status, "passed": passed,
        "compressed": compressed if status == "ok" else None,
        "ratios": {"size": 4.0, "speedup_p1": speedup, "speedup_p50": speedup_p50 or speedup,
                   "accuracy_drop": 0.0125} if status == "ok" else {},
        "passes": [{"type": p, "label": p} for p in passes],
        "budgets": [{"name": "max_size_kb", "passed": passed}],
    }
    (folder / "report.json").write_text(json.dumps(report))
    return folder


def test_table_has_one_column_per_run(tmp_path):
    a = fake_run(tmp_path / "a", size_kb=10, speedup=1.5, accuracy=0.95)
    b = fake_run(tmp_path / "b", size_kb=20, speedup=0.8, accuracy=None, passed=False,
                 passes=("prune", "quantize"))
    c = fake_run(tmp_path / "c", size_kb=0, speedup=None, accuracy=None, status="failed", passed=False)
    compared = compare_table([a, b, c])
    assert compared.header == ["metric", "a", "b", "c"]
    table = {r[0]: r[1:] for r in compared.rows}
    assert table["size (KiB)"][:2] == ["10.0", "20.0"] and table["size (KiB)"][2] == "n/a"
    assert table["speedup p1, gated (vs own baseline)"] == ["1.50x", "0.80x", "n/a"]
    assert table["accuracy"] == ["95.00%", "n/a", "n/a"]
    assert table["accuracy drop (points)"][0] == "1.25"
    assert table["status"] == ["ok, passed", "ok, budget missed", "failed"]
    assert table["passes"][1] == "prune → quantize"
    # the failed run set a budget too, but checked none: not "none set"
    assert table["budgets met"] == ["1/1", "0/1", "not checked: the run failed"]


def test_cli_prints_and_writes_each_format(tmp_path):
    a = fake_run(tmp_path / "x" / "run", size_kb=10, speedup=1.5, accuracy=0.9)
    b = fake_run(tmp_path / "y" / "run", size_kb=5, speedup=2.0, accuracy=0.8)
    for name in ("cmp.md", "cmp.csv", "cmp.json"):
        out = tmp_path / name
        result = CliRunner().invoke(cli, ["compare", str(a), str(b), "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert "speedup p1, gated" in result.output and "1.50x" in result.output
        assert "2.00x" in result.output
    assert "| speedup p1, gated (vs own baseline) | 1.50x | 2.00x |" in (tmp_path / "cmp.md").read_text()
    assert (tmp_path / "cmp.csv").read_text().startswith("metric,")
    data = json.loads((tmp_path / "cmp.json").read_text())
    assert data["runs"] == [str(a), str(b)]  # same folder names: full paths keep them apart
    # machine outputs carry numbers in the row's unit, not the printed "5.0", "2.00x", "80.00%"
    rows = {k: v[str(b)] for k, v in data["rows"].items()}
    assert rows["size (KiB)"] == 5.0 and rows["params"] == 1000 and rows["MACs (batch 1)"] == 5000
    assert rows["speedup p1, gated (vs own baseline)"] == 2.0 and rows["size reduction"] == 4.0
    assert rows["accuracy"] == 80.0 and rows["accuracy drop (points)"] == 1.25
    assert rows["status"] == "ok, passed" and rows["budgets met"] == "1/1"
    csv_rows = {r[0]: r[1:] for r in csv.reader(io.StringIO((tmp_path / "cmp.csv").read_text()))}
    assert csv_rows["params"] == ["1000", "1000"] and csv_rows["accuracy"] == ["90.0", "80.0"]


def test_cli_rejects_what_is_not_a_run(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["compare", str(tmp_path / "empty"), "-o", str(tmp_path / "c.md")])
    assert result.exit_code == 2 and "not an edgec run folder" in result.output
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "report.json").write_text('{"schema": "other"}')
    result = CliRunner().invoke(cli, ["compare", str(tmp_path / "bad"), "-o", str(tmp_path / "c.md")])
    assert result.exit_code == 2 and "not an edgec report" in result.output
    (tmp_path / "notes.txt").write_text("plain text, not JSON")
    result = CliRunner().invoke(cli, ["compare", str(tmp_path / "notes.txt"), "-o", str(tmp_path / "c.md")])
    assert result.exit_code == 2 and "notes.txt' is not an edgec report" in result.output
    assert "Expecting value" not in result.output
    good = fake_run(tmp_path / "good", size_kb=1, speedup=1.0, accuracy=None)
    result = CliRunner().invoke(cli, ["compare", str(good), "-o", str(tmp_path / "c.txt")])
    assert result.exit_code == 2 and ".md, .csv or .json" in result.output
    assert CliRunner().invoke(cli, ["compare"]).exit_code == 2


def test_output_folders_are_created_and_a_file_parent_is_refused(tmp_path):
    run = fake_run(tmp_path / "run", size_kb=1, speedup=1.0, accuracy=None)
    out = tmp_path / "missing" / "folder" / "out.md"
    result = CliRunner().invoke(cli, ["compare", str(run), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("| metric |")
    (tmp_path / "afile").write_text("")
    (tmp_path / "dir.md").mkdir()
    for bad, message in ((tmp_path / "afile" / "out.md", "afile' is a file, not a folder"),
                         (tmp_path / "dir.md", "is a folder; give a file path")):
        result = CliRunner().invoke(cli, ["compare", str(run), "-o", str(bad)])
        assert result.exit_code == 2 and message in result.output, result.output


def test_skipped_budgets_are_not_counted_as_met(tmp_path):
    """A regression gate without --against is SKIPPED (passed=True in report.json): not met."""
    run = fake_run(tmp_path / "run", size_kb=1, speedup=1.0, accuracy=None)
    report = json.loads((run / "report.json").read_text())
    skipped = {"name": "max_size_growth", "passed": True, "verdict": "skipped"}
    report["budgets"].append(skipped)
    (run / "report.json").write_text(json.dumps(report))
    only = fake_run(tmp_path / "only", size_kb=1, speedup=1.0, accuracy=None)
    report["budgets"] = [skipped]
    (only / "report.json").write_text(json.dumps(report))
    table = {r[0]: r[1:] for r in compare_table([run, only]).rows}
    assert table["budgets met"] == ["1/1, 1 skipped", "none checked, 1 skipped"]


def test_the_speedup_shown_is_the_one_the_speed_gates_decide_on(tmp_path):
    """min_speedup and max_latency_growth decide on ratios.speedup_p1 (latency_gate): compare
    showed the p50 ratio under a plain 'speedup' label, which can pass where the gate fails."""
    run = fake_run(tmp_path / "run", size_kb=1, speedup=1.18, speedup_p50=1.31, accuracy=None)
    table = {r[0]: r[1:] for r in compare_table([run]).rows}
    assert table["speedup p1, gated (vs own baseline)"] == ["1.18x"]
    assert table["speedup p50 (informative, not gated)"] == ["1.31x"]
    assert not [k for k in table if "speedup" in k and "p50" in k and "not gated" not in k]
    report = json.loads((run / "report.json").read_text())  # written before speedup_p1 existed
    del report["ratios"]["speedup_p1"]
    (run / "report.json").write_text(json.dumps(report))
    table = {r[0]: r[1:] for r in compare_table([run]).rows}
    assert table["speedup p1, gated (vs own baseline)"] == ["1.31x (p50: report has no p1)"]
    # in the files too: a bare 1.31 there would pass for the p1 the gates decide on
    values = {r[0]: r[1:] for r in compare_table([run]).values}
    assert values[GATED_SPEEDUP] == ["1.31x (p50: report has no p1)"]


def test_names_in_square_brackets_print_whole(tmp_path):
    """Run folders and pass labels are text: rich dropped '[int8]' as markup and refused '[/x]'."""
    a = fake_run(tmp_path / "exp[int8]", size_kb=1, speedup=1.0, accuracy=None,
                 passes=("prune[/x]",))
    result = CliRunner().invoke(cli, ["compare", str(a), "-o", str(tmp_path / "c.md")])
    assert result.exit_code == 0, result.output
    assert "exp[int8]" in result.output and "prune[/x]" in result.output


def test_a_run_given_twice_is_refused(tmp_path):
    """compare run1 run1 -o cc.json listed both runs but kept one column of rows."""
    run = fake_run(tmp_path / "run1", size_kb=1, speedup=1.0, accuracy=None)
    for args in ([str(run), str(run)], [str(run), str(run / "report.json")]):
        result = CliRunner().invoke(cli, ["compare", *args, "-o", str(tmp_path / "cc.json")])
        assert result.exit_code == 2 and "it would be one column" in result.output, result.output
    assert not (tmp_path / "cc.json").exists()


def test_a_sweeps_variant_folders_compare_and_its_values_files_are_pointed_at(tmp_path):
    """`edgec compare sweep/variants/*` met the sweep's v000.json files ("not an edgec report");
    `variants/*/` is the way, and a variant whose worker died left a folder without a report."""
    variants = tmp_path / "sw" / "variants"
    fake_run(variants / "v000", size_kb=10, speedup=1.5, accuracy=0.9)
    (variants / "v000.json").write_text(json.dumps(
        {"name": "v000", "values": {"seed": 1}, "overrides": ["seed=1"], "status": "ok", "error": None}))
    result = CliRunner().invoke(cli, ["compare", str(variants / "v000"), str(variants / "v000.json")])
    assert result.exit_code == 2
    assert f"holds the grid values of sweep variant v000, not a report: its run is the folder " \
           f"'{variants / 'v000'}'" in " ".join(result.output.split())
    assert f"edgec compare {variants}/*/" in result.output
    (variants / "v001.partial").mkdir()
    (variants / "v001.partial" / ".edgec-run").write_text("written by edgec\n")
    table = {r[0]: r[1:] for r in compare_table([variants / "v000", variants / "v001.partial"]).rows}
    assert table["status"] == ["ok, passed", "unfinished (no report.json)"]
    assert table["size (KiB)"][1] == table["passes"][1] == "n/a"
    assert table["budgets met"][1] == "not checked: the run is unfinished"
    (tmp_path / "other.partial").mkdir()  # no marker: not a run of edgec's
    result = CliRunner().invoke(cli, ["compare", str(tmp_path / "other.partial")])
    assert result.exit_code == 2 and "not an edgec run folder" in result.output
