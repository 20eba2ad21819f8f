"""A sweep in a CI job: its Markdown summary (--summary-md, $GITHUB_STEP_SUMMARY)."""

from click.testing import CliRunner

from edgec.cli import cli
from edgec.sweep_report import summary_markdown
from edgec.sweep_results import SweepResult


def run(*args, **env):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env or None)


def _row(name, status="ok", passed=True, best=False, mode="static"):
    return {"variant": name, "passes.0.mode": mode, "status": status, "passed": passed,
            "budgets_missed": "" if passed else "max_size_kb", "size_kb": 100.0, "speedup": 1.2,
            "accuracy": 0.99, "pareto": True, "best": best, "error": None}


def test_a_sweep_summary_says_the_verdict_and_shows_the_table(tmp_path):
    rows = [_row("v000", best=True, mode="a|b"), _row("v001", passed=False)]
    text = summary_markdown(SweepResult(tmp_path, rows, ["size_kb"], front=[0], best=0), 0)
    assert text.startswith("### ✅ edgec sweep: 2 variant(s), best v000")
    assert "| variant | mode | size_kb | speedup | accuracy | passed | pareto |" in text
    assert "| **v000** | a\\|b | 100 |" in text and "no: max_size_kb" in text
    assert text.count("| no: max_size_kb | yes |") == 1  # pareto reads like passed, not True
    failed = [_row("v000"), _row("v001", status="failed")]
    assert "### ❌ edgec sweep: 1 of 2 variant(s) failed (v001)" in summary_markdown(
        SweepResult(tmp_path, failed, ["size_kb"], front=[0]), 3)
    missed = [_row("v000", passed=False)]
    assert "### ❌ edgec sweep: no variant meets the recipe's budgets" in summary_markdown(
        SweepResult(tmp_path, missed, ["size_kb"], front=[0]), 1)


def test_sweep_writes_its_summary_once_into_the_job_summary(write_recipe, tmp_path):
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    result = run("sweep", write_recipe(), "--grid", "passes.0.per_channel=true,false", "-o",
                 tmp_path / "sw", "-q", "--summary-md", step, GITHUB_STEP_SUMMARY=str(step))
    assert result.exit_code == 0, result.output
    text = step.read_text()
    assert text.startswith("earlier step\n") and text.count("edgec sweep: 2 variant(s)") == 1
    assert "| v000 | true |" in text or "| **v000** | true |" in text  # as --grid takes it


def test_a_summary_path_that_cannot_be_written_is_refused_before_any_work(write_recipe, tmp_path):
    step = tmp_path / "step.md"
    result = run("sweep", write_recipe(), "--grid", "passes.0.per_channel=true,false", "-o",
                 tmp_path / "sw", "--summary-md", tmp_path, GITHUB_STEP_SUMMARY=str(step))
    assert result.exit_code == 2 and "is a folder; give a file path" in result.output
    assert not (tmp_path / "sw").exists()
    assert step.read_text().startswith("### ❌ edgec sweep: invalid, nothing ran\n\n--summary-md")


def test_an_invalid_sweep_says_why_in_its_summary(write_recipe, tmp_path):
    summary = tmp_path / "summary.md"
    result = run("sweep", write_recipe(), "--grid", "passes.0.mode=static,bogus", "-o",
                 tmp_path / "sw", "--summary-md", summary)
    assert result.exit_code == 2
    text = summary.read_text()
    assert text.startswith("### ❌ edgec sweep: invalid, nothing ran") and "variant 2 of 2" in text


def test_a_large_sweeps_plot_names_only_its_front(tmp_path, monkeypatch):
    """40 labels hid the points they named: past 30 points only the front (and the best) get one."""
    import matplotlib.axes

    from edgec.sweep_plot import plot_png

    rows = [dict(_row(f"v{i:03d}", best=i == 5), size_kb=100.0 + i, speedup=2.0 - i / 100,
                 accuracy=0.99) for i in range(40)]
    named = []
    real = matplotlib.axes.Axes.annotate
    monkeypatch.setattr(matplotlib.axes.Axes, "annotate",
                        lambda self, text, *a, **k: named.append(text) or real(self, text, *a, **k))
    result = SweepResult(tmp_path, rows, ["size_kb", "speedup"], front=[0, 1], best=5)
    assert plot_png(result).startswith(b"\x89PNG")
    assert sorted(set(named)) == ["v000, v001", "v005 ★"]  # v000 and v001 nearly coincide
    named.clear()
    plot_png(SweepResult(tmp_path, rows[:10], ["size_kb", "speedup"], front=[0], best=5))
    assert len(named) == 10


def test_without_budgets_the_summary_does_not_claim_variants_pass_them(tmp_path):
    """A recipe with no budgets: every variant "passes", so the best is the front's first
    however poor; the table drops the column and the verdict says so."""
    result = SweepResult(tmp_path, [_row("v000", best=True)], ["size_kb"], front=[0], best=0,
                         budgeted=False)
    text = summary_markdown(result, 0)
    assert "| variant | mode | size_kb | speedup | accuracy | pareto |" in text
    assert "best (on the front; the recipe sets no budgets to meet): v000" in text


def test_grid_values_read_as_grid_takes_them_and_a_whole_pass_by_its_path(tmp_path):
    """--grid 'passes.0={type: quantize, …}' showed a column "0" of Python dicts, and True."""
    from edgec.sweep_report import to_html

    rows = [{**_row("v000", best=True), "passes.0": {"type": "quantize", "mode": "dynamic"},
             "passes.1.per_channel": True, "run_dir": "variants/v000"}]
    del rows[0]["passes.0.mode"]
    result = SweepResult(tmp_path, rows, ["size_kb"], front=[0], best=0)
    text = summary_markdown(result, 0)
    assert "| variant | passes.0 | per_channel | size_kb |" in text
    assert '| **v000** | {"type": "quantize", "mode": "dynamic"} | true | 100 |' in text
    page = to_html(result, None)
    assert "<td>{&quot;type&quot;: &quot;quantize&quot;, &quot;mode&quot;: &quot;dynamic&quot;}</td>" \
        "<td>true</td>" in page and "'type'" not in page and "True" not in page


def test_the_plot_names_coincident_variants_once_and_the_best_in_its_title(tmp_path, monkeypatch):
    """Variants on one point (per_channel or samples that change nothing measurable) printed
    their names over each other, and the starred best among them."""
    import matplotlib.axes
    import matplotlib.figure

    from edgec.sweep_plot import plot_png

    points = [(98.38, 0.14), (98.38, 0.14), (98.33, 0.141), (99.76, 1.46), (99.76, 1.463),
              (102.8, 1.44)]
    rows = [dict(_row(f"v{i:03d}", best=i == 2), size_kb=x, speedup=y)
            for i, (x, y) in enumerate(points)]
    named, titles = [], []
    real_annotate, real_title = matplotlib.axes.Axes.annotate, matplotlib.figure.Figure.suptitle
    monkeypatch.setattr(matplotlib.axes.Axes, "annotate", lambda self, text, *a, **k:
                        named.append(text) or real_annotate(self, text, *a, **k))
    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle", lambda self, text, *a, **k:
                        titles.append(text) or real_title(self, text, *a, **k))
    result = SweepResult(tmp_path, rows, ["size_kb", "speedup"], front=[2, 4], best=2)
    assert plot_png(result).startswith(b"\x89PNG")
    assert named == ["v000, v001, v002 ★", "v003, v004", "v005"]
    assert "best: v002 ★" in titles[0]
