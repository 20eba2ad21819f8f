"""report.html and the operator profile: content of a real run's page, rendering in headless
Chromium (skipped when no chromium binary is installed), and the profile aggregation."""

import json
import shutil
import subprocess

import pytest

from edgec.api import compress
from edgec.errors import ModelLoadError
from edgec.html_charts import Series, bar_chart
from edgec.profile_ops import OVERHEAD, summarize_events, top_ops

RECIPE = {
    "version": 1,
    "model": {"source": "python", "callable": "tiny_models.py:tiny_cnn", "input_shape": [1, 1, 8, 8]},
    "data": {"source": "digits"},
    "passes": [{"type": "prune", "amount": 0.5}, {"type": "quantize", "mode": "static", "samples": 32}],
    "benchmark": {"threads": 1, "runs": 10, "warmup": 2},
    "budgets": {"max_size_kb": 1000, "max_params": 10},
    "report": {"profile": {"runs": 10, "warmup": 2}},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import FIXTURES

    folder = tmp_path_factory.mktemp("html")
    shutil.copy(FIXTURES / "tiny_models.py", folder / "tiny_models.py")
    recipe = folder / "r.yaml"
    recipe.write_text(json.dumps(RECIPE))  # JSON is YAML
    report = compress(recipe, output=folder / "run")
    return report, folder / "run"


def test_html_has_every_section_and_verdict(run):
    report, out = run
    html = (out / "report.html").read_text()
    assert not report.passed  # max_params: 10 is missed on purpose
    assert "budget missed" in html and "<title>" in html
    for section in ("summary", "budgets", "passes", "layers", "profile", "environment"):
        assert f"id='{section}'" in html, section
    assert "<span class='PASS'>PASS</span>" in html and "<span class='FAIL'>FAIL</span>" in html
    assert "max_params" in html and "ONNX size" in html and "latency p50" in html
    for chart in ("Parameters per layer", "Output channels per layer", "Non-zero weights",
                  "Weight precision", "baseline: share of latency", "compressed: share of latency"):
        assert chart in html, chart
    assert html.count("<svg") == 6
    assert "/3/Conv" in html and "16 → 8" in html  # pruned channels, layer matched by node name
    # the prune note's torch counts are labelled, and the Passes table says how it counts
    assert "torch module, BatchNorm not folded" in html and "where BatchNorm is folded" in html
    assert "3 compute layers" in html and "with integer weights" in html and "QLinearConv" in html


def test_html_is_self_contained(run):
    html = (run[1] / "report.html").read_text().lower()
    for needle in ("<script", "<link", "src=", "http://", "https://", "@import", "url("):
        assert needle not in html, needle


def test_op_profile_in_report_json(run):
    _, out = run
    profile = json.loads((out / "report.json").read_text())["op_profile"]
    assert profile["threads"] == 1 and set(profile["models"]) == {"baseline", "compressed"}
    for name, p in profile["models"].items():
        assert p["runs"] == 10 and p["run_us"] > 0
        assert all(0 <= o["share"] <= 1 for o in p["ops"]), name
        assert OVERHEAD in {o["op_type"] for o in p["ops"]}
    ops = {o["op_type"] for o in profile["models"]["compressed"]["ops"]}
    assert "QLinearConv" in ops and "Conv" in {o["op_type"] for o in profile["models"]["baseline"]["ops"]}


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="no chromium binary (Debian: apt-get install chromium)")
def test_html_renders_in_headless_chromium(run, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    result = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1000,1600", f"--screenshot={shot}", (run[1] / "report.html").as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert shot.is_file(), result.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1000, 1600)
    colors = image.getcolors(maxcolors=1 << 20)
    dark = sum(n for n, (r, g, b) in colors if r + g + b < 200)  # text
    red = sum(n for n, (r, g, b) in colors if (r, g, b) == (0xC6, 0x28, 0x28))  # "budget missed"
    blue = sum(n for n, (r, g, b) in colors if (r, g, b) == (0x2F, 0x6F, 0xDF))  # compressed bars
    assert dark > 2000 and red > 200 and blue > 200, (dark, red, blue)


def test_report_html_and_profile_can_be_turned_off(recipe_dir):
    recipe = {**RECIPE, "passes": [], "budgets": {},
              "report": {"html": False, "profile": {"enabled": False}}}
    (recipe_dir / "r.yaml").write_text(json.dumps(recipe))
    report = compress(recipe_dir / "r.yaml", output=recipe_dir / "run")
    assert report.op_profile is None and not (recipe_dir / "run" / "report.html").exists()


def test_failed_run_still_writes_html(recipe_dir):
    recipe = {**RECIPE, "model": {**RECIPE["model"], "callable": "tiny_models.py:raises"}}
    (recipe_dir / "r.yaml").write_text(json.dumps(recipe))
    with pytest.raises(ModelLoadError):
        compress(recipe_dir / "r.yaml", output=recipe_dir / "run")
    html = (recipe_dir / "run.partial" / "report.html").read_text()  # failed runs stay partial
    assert "run FAILED" in html and "boom from the user&#x27;s code" in html
    assert "did not reach the export" in html


def _event(cat, name, ts, dur, op=None):
    return {"cat": cat, "name": name, "ts": ts, "dur": dur, "args": {"op_name": op} if op else {}}


def test_summarize_events_skips_warmup_and_takes_medians():
    events = []
    for run, (conv, relu) in enumerate([(500, 500), (60, 20), (40, 20), (50, 20), (900, 20)]):
        t = run * 10_000
        events += [_event("Session", "model_run", t, 100 + conv + relu),
                   _event("Node", "c_kernel_time", t + 10, conv, "Conv"),
                   _event("Node", "c_fence_before", t + 5, 0, "Conv"),
                   _event("Node", "r_kernel_time", t + 20 + conv, relu, "Relu")]
    profile = summarize_events(events, warmup=1)
    ops = {o.op_type: o for o in profile.ops}
    assert profile.runs == 4 and profile.run_us == 100 + 55 + 20  # medians of the runs after warmup
    assert ops["Conv"].us_per_run == 55 and ops["Relu"].us_per_run == 20
    assert ops[OVERHEAD].us_per_run == 100 and ops["Conv"].calls_per_run == 1
    assert profile.ops[0].op_type == OVERHEAD and ops["Conv"].share == round(55 / 175, 4)
    assert summarize_events([], warmup=0).runs == 0


def test_top_ops_sums_the_rest():
    profile = {"ops": [{"op_type": f"op{i}", "us_per_run": 10 - i, "share": 0.1, "calls_per_run": 1}
                       for i in range(5)]}
    rows = top_ops(profile, 2)
    assert [r["op_type"] for r in rows] == ["op0", "op1", "(other)"]
    assert rows[-1]["us_per_run"] == 8 + 7 + 6 and rows[-1]["share"] == 0.3


def test_chart_escapes_labels():
    svg = bar_chart("t<x>", ["<script>alert(1)</script>", "b"], [Series("baseline", [1.0, 0.0])])
    assert "<script>" not in svg and "&lt;script&gt;" in svg and svg.count("<rect") == 3
