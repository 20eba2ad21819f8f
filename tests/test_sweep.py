"""Sweeps: grid expansion, override validation, Pareto front, resumption, failures, executors."""

import json

import pytest
from click.testing import CliRunner
from conftest import TINY_RECIPE

from edgec.cli import cli
from edgec.errors import RecipeError, UsageError
from edgec.pareto import best_index, canonical_axes, pareto_front
from edgec.sweep_config import as_overrides, expand, parse_grid_option


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_grid_option_values_are_typed():
    assert parse_grid_option("passes.0.amount=0.3,0.5") == ("passes.0.amount", [0.3, 0.5])
    assert parse_grid_option("passes.0.per_channel=true,false")[1] == [True, False]
    assert parse_grid_option("passes.0.mode=static,dynamic")[1] == ["static", "dynamic"]
    with pytest.raises(RecipeError, match=r"dotted\.path=value1"):
        parse_grid_option("passes.0.amount")


def test_product_and_zip():
    grid = {"a": [1, 2, 3], "b": ["x", "y", "z"]}
    product = expand(grid, "product")
    assert len(product) == 9 and product[0] == {"a": 1, "b": "x"} and product[1] == {"a": 1, "b": "y"}
    assert expand(grid, "zip") == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "z"}]
    with pytest.raises(RecipeError, match="one length"):
        expand({"a": [1, 2], "b": [1]}, "zip")
    with pytest.raises(RecipeError, match="nothing to vary"):
        expand({}, "product")


def test_identical_variants_are_refused():
    """They would run the same work twice; 1 and 1.0 are one number, 1 and true are not."""
    with pytest.raises(RecipeError, match=r"identical variants \(a=1.0, numbers 1 and 3\): grid "
                       r"path 'a' lists 1.0 twice"):
        expand({"a": [1, 2, 1.0]}, "product")
    with pytest.raises(RecipeError, match=r"a=1, b=\"x\", numbers 1 and 2\)"):
        expand({"a": [1, 1], "b": ["x", "x"]}, "zip")
    assert len(expand({"a": [1, True, None]}, "product")) == 3
    assert len(expand({"a": [1, 1], "b": ["x", "y"]}, "zip")) == 2


def test_overrides_round_trip_through_set():
    from edgec.recipe_yaml import parse_override

    for value in (0.5, True, "static", None, [1, 2], "0.5"):
        (text,) = as_overrides({"x.y": value})
        assert parse_override(text) == (["x", "y"], value)


P = [  # hand-made points: size (min), speedup (max), accuracy (max)
    {"size_kb": 100, "speedup": 1.0, "accuracy": 0.99},  # 0: best accuracy → front
    {"size_kb": 50, "speedup": 1.5, "accuracy": 0.98},  # 1: front
    {"size_kb": 60, "speedup": 1.4, "accuracy": 0.98},  # 2: dominated by 1
    {"size_kb": 50, "speedup": 1.5, "accuracy": 0.98},  # 3: equal to 1 → also front
    {"size_kb": 20, "speedup": None, "accuracy": 0.5},  # 4: unmeasured axis → never on front
    {"size_kb": 30, "speedup": 0.9, "accuracy": 0.90},  # 5: smallest measured → front
]


def test_pareto_front_on_constructed_points():
    axes = ["size_kb", "speedup", "accuracy"]
    assert pareto_front(P, axes) == [0, 1, 3, 5]
    assert pareto_front(P, ["size_kb"]) == [4]  # one axis: simply the minimum
    assert pareto_front(P, ["speedup", "accuracy"]) == [0, 1, 3]
    assert best_index(P, axes, [0, 1, 3, 5]) == 5  # smallest size
    assert best_index(P, ["accuracy", "size_kb"], [0, 1, 2]) == 0
    assert best_index(P, axes, []) is None


def test_axes_aliases_and_unknown_axis():
    assert canonical_axes(["size", "latency", "size_kb"]) == ["size_kb", "latency_ms"]
    with pytest.raises(UsageError, match="Unknown Pareto axis"):
        canonical_axes(["sizee"])


def test_invalid_variant_is_refused_before_any_work(write_recipe, tmp_path):
    recipe = write_recipe()
    result = run("sweep", recipe, "--grid", "passes.0.mode=static,bogus", "-o", tmp_path / "sw")
    assert result.exit_code == 2
    assert "variant 2 of 2" in result.output and "passes.0.mode=bogus" in result.output
    assert not (tmp_path / "sw").exists()


def test_a_grid_value_that_cannot_be_set_names_the_grid_not_set(write_recipe, tmp_path):
    """The user typed --grid (or wrote sweep.grid), never a --set, for a variant's own values."""
    recipe = write_recipe(TINY_RECIPE + "sweep: {grid: {passes.4.mode: [static]}}\n")
    result = run("sweep", recipe, "-o", tmp_path / "sw")
    assert result.exit_code == 2 and "sweep.grid 'passes.4.mode=\"static\"': 'passes.4' is not an " \
        "index" in result.output
    result = run("sweep", write_recipe(), "--grid", "passes.3.mode=static", "--set", "seed=1",
                 "-o", tmp_path / "sw")
    assert result.exit_code == 2 and "--grid 'passes.3.mode=\"static\"'" in result.output


def test_recipe_sweep_section_is_ignored_by_compress_validation(write_recipe):

    recipe = write_recipe(TINY_RECIPE + "sweep: {grid: {passes.0.per_channel: [true, false]}}\n")
    assert run("validate", recipe).exit_code == 0
    bad = write_recipe(TINY_RECIPE + "sweep: {grid: {a: [1]}, mode: diagonal}\n", "bad.yaml")
    assert run("validate", bad).exit_code == 2


SWEEP_RECIPE = TINY_RECIPE + """\
budgets: {max_size_kb: 1000}
sweep:
  grid:
    model.callable: ["tiny_models.py:tiny_cnn", "tiny_models.py:tiny_cnn", "tiny_models.py:raises"]
    passes.0.per_channel: [true, false, true]
  mode: zip
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """Two tiny good variants and one whose model raises, run in-process."""
    import shutil

    from conftest import FIXTURES

    folder = tmp_path_factory.mktemp("sweep")
    shutil.copy(FIXTURES / "tiny_models.py", folder / "tiny_models.py")
    (folder / "r.yaml").write_text(SWEEP_RECIPE)
    result = run("sweep", folder / "r.yaml", "-o", folder / "sw", "-q")
    return result, folder


def test_sweep_results_and_failed_variant(swept):
    result, folder = swept
    assert result.exit_code == 3, result.output  # one variant failed, the others finished
    doc = json.loads((folder / "sw" / "results.json").read_text())
    rows = {r["variant"]: r for r in doc["rows"]}
    assert [r["status"] for r in doc["rows"]] == ["ok", "ok", "failed"]
    assert "boom from the user's code" in rows["v002"]["error"]
    assert rows["v000"]["passes.0.per_channel"] is True and rows["v001"]["passes.0.per_channel"] is False
    for name in ("v000", "v001"):
        assert (folder / "sw" / "variants" / name / "model.onnx").is_file()
        assert rows[name]["passed"] and rows[name]["size_kb"] > 0 and rows[name]["accuracy"] is not None
    assert set(doc["pareto"]) <= {"v000", "v001"} and doc["pareto"]
    assert doc["best"] in doc["pareto"]
    assert (doc["planned"], doc["complete"]) == (3, True)
    assert rows["v002"]["run_dir"] == "variants/v002.partial"  # where its report says what failed
    assert (folder / "sw" / rows["v002"]["run_dir"] / "report.json").is_file()
    csv_lines = (folder / "sw" / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 4 and csv_lines[0].startswith("variant,")
    page = (folder / "sw" / "index.html").read_text()
    assert "data:image/png;base64," in page and "v002" in page
    assert (folder / "sw" / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_variants_measure_their_shared_baseline_once(swept):
    """Size, MACs, predictions and op profile of the common baseline: one entry, the same numbers."""
    _, folder = swept
    measured = folder / "sw" / "cache" / "measured"
    assert len(list(measured.glob("static-*.json"))) == len(list(measured.glob("profile-*.json"))) == 1
    reports = [json.loads((folder / "sw" / "variants" / n / "report.json").read_text())
               for n in ("v000", "v001")]
    base = [{k: v for k, v in r["baseline"].items() if k not in ("latency_ms", "path")} for r in reports]
    assert base[0] == base[1] and base[0]["accuracy"] is not None
    assert reports[0]["op_profile"]["models"]["baseline"] == reports[1]["op_profile"]["models"]["baseline"]
    assert reports[0]["baseline"]["latency_ms"] != reports[1]["baseline"]["latency_ms"]  # timed each


def test_sweep_resumes_finished_variants(swept):
    _, folder = swept
    report = folder / "sw" / "variants" / "v000" / "report.json"
    before = report.stat().st_mtime_ns
    result = run("sweep", folder / "r.yaml", "-o", folder / "sw", "-q", "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["reused"] == 2 and doc["failed"] == 1  # the failed one was tried again
    assert report.stat().st_mtime_ns == before


def test_variants_keep_their_names_when_the_grid_changes(swept, tmp_path):
    """A variant's folder belongs to its grid values: a reordered grid reuses both finished
    variants under their names, a new value gets a name no folder has, and the variant the grid
    no longer lists is kept on disk (and said so), not overwritten by another."""
    folder = _copy_sweep(swept, tmp_path)
    recipe = folder / "r2.yaml"
    recipe.write_text(SWEEP_RECIPE.replace('"tiny_models.py:raises"', '"tiny_models.py:tiny_cnn"')
                      .replace('["tiny_models.py:tiny_cnn", "tiny_models.py:tiny_cnn", ',
                               '["tiny_models.py:tiny_resnet", "tiny_models.py:tiny_cnn", '))
    v000 = folder / "sw" / "variants" / "v000" / "report.json"
    before = v000.stat().st_mtime_ns
    result = run("sweep", recipe, "-o", folder / "sw")
    assert result.exit_code == 0, result.output
    assert "1 earlier variant(s) in this folder are not in this grid (v002)" in result.output
    doc = json.loads((folder / "sw" / "results.json").read_text())
    assert [r["variant"] for r in doc["rows"]] == ["v003", "v001", "v000"] and doc["reused"] == 2
    assert doc["rows"][0]["model.callable"] == "tiny_models.py:tiny_resnet"
    assert v000.stat().st_mtime_ns == before
    assert (folder / "sw" / "variants" / "v002.partial" / "report.json").is_file()


def test_results_csv_writes_list_values_as_json(tmp_path):
    import csv

    from edgec.sweep_report import write_results
    from edgec.sweep_results import SweepResult

    rows = [{"variant": "v000", "passes.0.exclude_ops": ["Conv", "Gemm"], "x": {"a": 1},
             "flag": True, "status": "ok"}]
    write_results(SweepResult(tmp_path, rows, ["size_kb"]), final=False)
    (row,) = csv.DictReader((tmp_path / "results.csv").open())
    assert json.loads(row["passes.0.exclude_ops"]) == ["Conv", "Gemm"]
    assert json.loads(row["x"]) == {"a": 1} and row["flag"] == "True"


def _rows_without_timing(doc):
    keep = ("variant", "status", "size_kb", "size_gzip_kb", "params", "macs", "accuracy")
    return [{k: r[k] for k in keep} for r in doc["rows"]]


GRID = ("--grid", "model.callable=tiny_models.py:tiny_cnn,tiny_models.py:tiny_cnn",
        "--grid", "passes.0.per_channel=true,false", "--mode", "zip")


def test_jobs_that_take_cores_from_each_other_are_pointed_out():
    from edgec.sweep import _oversubscribed

    assert _oversubscribed(2, 1, 2) is None and _oversubscribed(1, 4, 2) is None
    assert _oversubscribed(1, 1, 1) is None and _oversubscribed(2, 2, 4) is None
    assert "3 jobs on 2 CPUs" in _oversubscribed(3, 1, 2)
    note = _oversubscribed(2, 2, 2)
    assert "2 jobs x benchmark.threads 2 = 4 timing threads on 2 CPUs" in note and "--jobs 1" in note
    assert "--jobs 2 gives" in _oversubscribed(4, 3, 8)


def test_more_jobs_than_cpus_are_pointed_out(write_recipe, tmp_path, monkeypatch):
    from edgec import sweep_exec

    monkeypatch.setattr("os.cpu_count", lambda: 1)
    monkeypatch.setattr(sweep_exec, "start_early", lambda *a, **k: None)
    monkeypatch.setattr(sweep_exec, "run_local",  # in this process: no workers to start
                        lambda tasks, *a, **k: (sweep_exec.run_variant(t) for t in tasks))
    result = run("sweep", write_recipe(), "--grid", "passes.0.per_channel=true,false", "-o",
                 tmp_path / "sw", "--jobs", 3)
    assert result.exit_code == 0, result.output
    assert "2 jobs on 1 CPU: they share the cores, so the sweep is no faster than with --jobs 1" \
        in result.output


@pytest.mark.slow
def test_parallel_jobs_match_in_process(swept, tmp_path):
    """jobs=2 in spawned worker processes gives the in-process results (latency aside)."""
    _, folder = swept
    local = json.loads((folder / "sw" / "results.json").read_text())
    result = run("sweep", folder / "r.yaml", *GRID, "-o", tmp_path / "jobs2", "-q", "--jobs", 2,
                 "--json")
    assert result.exit_code == 0, result.output
    assert _rows_without_timing(json.loads(result.stdout)) == _rows_without_timing(local)[:2]


@pytest.mark.slow
def test_ray_executor_matches_in_process(swept, tmp_path):
    """A local 2-CPU Ray instance gives the in-process results (latency aside)."""
    pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'edgec[ray]')")
    _, folder = swept
    local = json.loads((folder / "sw" / "results.json").read_text())
    result = run("sweep", folder / "r.yaml", *GRID, "-o", tmp_path / "ray", "-q", "--jobs", 2,
                 "--ray", "--json")
    assert result.exit_code == 0, result.output
    assert _rows_without_timing(json.loads(result.stdout)) == _rows_without_timing(local)[:2]


def test_address_needs_ray_executor(write_recipe, tmp_path):
    result = run("sweep", write_recipe(), "--grid", "seed=1,2", "-o", tmp_path / "s",
                 "--address", "ray://x:10001")
    assert result.exit_code == 2 and "--executor ray" in result.output


def test_tables_are_rewritten_without_redrawing_the_plot(swept, tmp_path):
    """After each variant only the tables are rewritten; the plot and page are drawn at the end."""
    from edgec.sweep_report import write_results
    from edgec.sweep_results import SweepResult

    _, folder = swept
    doc = json.loads((folder / "sw" / "results.json").read_text())
    result = SweepResult(tmp_path, doc["rows"], doc["axes"], front=[0], best=0)
    write_results(result, final=False)
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == doc["rows"]
    assert not (tmp_path / "pareto.png").exists() and not (tmp_path / "index.html").exists()
    write_results(result)
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_fork_server_settling_only_happens_in_a_fork_server():
    """In the server, Ctrl-C is ignored from its first import on (a Ctrl-C during its imports
    printed its traceback under the sweep's own message) and it leaves without teardown; a
    worker gets Ctrl-C back and freezes what it inherited; elsewhere importing does nothing."""
    import subprocess
    import sys

    def run(code):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    interrupt = "import os, signal; os.kill(os.getpid(), signal.SIGINT); print('alive', flush=True); "
    ordinary = run(f"import sys, edgec.sweep_forkserver; {interrupt}sys.exit(3)")
    assert ordinary.returncode != 0 and "KeyboardInterrupt" in ordinary.stderr
    assert "alive" not in ordinary.stdout
    # a `python -c` sweep script has the server's command line and imports the module (for the
    # pool's initializer) after multiprocessing.forkserver: settled, it exited 0 on a missed budget
    script = run(f"import sys, multiprocessing.forkserver, edgec.sweep_forkserver; {interrupt}"
                 "sys.exit(3)")
    assert script.returncode != 0 and "KeyboardInterrupt" in script.stderr
    server = run("import sys, multiprocessing.forkserver as fs\n"  # imported by the server's main
                 "def main():\n    import edgec.sweep_forkserver\n"
                 f"fs.main = main\nmain()\n{interrupt}sys.exit(3)")
    assert server.stdout.strip() == "alive" and server.returncode == 0  # left by os._exit(0)
    assert server.stderr == ""
    worker = run("import gc, signal, sys, multiprocessing.forkserver, edgec.sweep_forkserver as f; "
                 "f.worker_started(); print(gc.get_freeze_count() > 0, flush=True); "
                 "signal.raise_signal(signal.SIGINT)")
    assert worker.stdout.strip() == "True" and "KeyboardInterrupt" in worker.stderr


def test_a_worker_leaves_when_its_sweep_does():
    """A worker watches the sweep's process: once it is gone (killed, so it could not stop its
    workers), the worker is stopped as the sweep would stop it (SIGTERM)."""
    import signal
    import subprocess
    import sys

    sweep = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    worker = subprocess.Popen([sys.executable, "-c", "import time, edgec.sweep_forkserver as f; "
                               f"f.worker_started({sweep.pid}); time.sleep(60)"])
    try:
        sweep.kill()
        sweep.wait()
        assert worker.wait(timeout=20) == -signal.SIGTERM
    finally:
        worker.kill()


def test_a_real_fork_server_ignores_ctrl_c_from_its_first_import(tmp_path):
    """The preload's own view: a module imported after edgec.sweep_forkserver finds Ctrl-C
    ignored (the server's own "ignore" comes only after all its imports)."""
    import os
    import subprocess
    import sys

    (tmp_path / "probe_sigint.py").write_text(
        "import os, signal\n"  # written whole, then renamed: never read half written
        "open('probe.tmp', 'w').write(str(signal.getsignal(signal.SIGINT)))\n"
        "os.replace('probe.tmp', os.environ['PROBE_OUT'])\n")
    (tmp_path / "start.py").write_text(
        "import multiprocessing, os, time\n"
        "from multiprocessing import forkserver\n"
        "ctx = multiprocessing.get_context('forkserver')\n"
        "ctx.set_forkserver_preload(['edgec.sweep_forkserver', 'probe_sigint'])\n"
        "forkserver.ensure_running()\n"
        "for _ in range(200):\n"
        "    if os.path.exists(os.environ['PROBE_OUT']): break\n"
        "    time.sleep(0.05)\n")
    out = tmp_path / "sigint.txt"
    # cwd: the server finds the probe there (it ignores its parent's sys.path)
    subprocess.run([sys.executable, "start.py"], check=True, timeout=60, cwd=tmp_path,
                   env={**os.environ, "PROBE_OUT": str(out)})
    assert out.read_text() == "1"  # signal.SIG_IGN


def test_fork_server_starts_before_planning_only_for_local_parallel_sweeps():
    """`edgec sweep --jobs 2` starts the workers' fork server first, so its imports overlap the
    planning; other executors and one job never start it."""
    import subprocess
    import sys

    code = ("import json, sys; from multiprocessing import forkserver; "
            "from edgec.sweep_exec import start_early; "
            "start_early(json.loads(sys.argv[1]), sys.argv[2]); "
            "print(forkserver._forkserver._forkserver_pid is not None)")
    for jobs, executor, started in [(2, "local", True), (1, "local", False), (2, "ray", False),
                                    (None, "local", False)]:
        done = subprocess.run([sys.executable, "-c", code, json.dumps(jobs), executor],
                              capture_output=True, text=True)
        assert done.stdout.strip() == str(started), (jobs, executor, done.stderr)


def test_recipe_jobs_are_read_before_planning(tmp_path):
    """A recipe's sweep.jobs starts the fork server early too (read raw, validated later)."""
    from edgec.sweep_exec import recipe_jobs

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {source: zoo, name: digits_cnn}\nsweep: {jobs: 2}\n")
    assert recipe_jobs(recipe) == 2
    assert recipe_jobs(recipe, ("sweep.jobs=3",)) == 3
    assert recipe_jobs(recipe, ("sweep.jobs=true",)) is None  # invalid: planning says why
    (tmp_path / "bad.yaml").write_text("sweep: [")
    assert recipe_jobs(tmp_path / "bad.yaml") is None and recipe_jobs(tmp_path / "none.yaml") is None


def test_table_names_the_budgets_a_variant_missed(tmp_path):
    import io

    from edgec.sweep_report import finish_sweep
    from edgec.sweep_results import SweepResult

    rows = [{"variant": f"v00{i}", "passes.0.mode": mode, "status": "ok", "passed": passed,
             "budgets_missed": missed, "size_kb": 100.0, "speedup": speed, "accuracy": 0.99,
             "pareto": True, "best": passed}
            for i, (mode, passed, missed, speed) in enumerate(
                [("static", True, "", 1.2), ("dynamic", False, "min_speedup", 0.3)])]
    (tmp_path / "results.json").write_text("{}")
    out = io.StringIO()
    code = finish_sweep(SweepResult(tmp_path, rows, ["size_kb"], front=[0, 1], best=0), False, out)
    text = out.getvalue()
    assert code == 0  # a variant meets the budgets: the sweep found what it looked for
    assert "yes" in text and "min_speedup" in text and "False" not in text


def test_table_shows_the_fronts_own_axes(tmp_path):
    """--axes latency_ms,macs: the table shows those (first), then the usual size, speed-up and
    accuracy columns."""
    import io

    from edgec.sweep_report import finish_sweep
    from edgec.sweep_results import SweepResult

    rows = [{"variant": "v000", "passes.0.mode": "static", "status": "ok", "passed": True,
             "budgets_missed": "", "size_kb": 100.0, "speedup": 1.3, "accuracy": 0.99,
             "latency_ms": 0.0456, "macs": 2379008, "pareto": True, "best": True}]
    (tmp_path / "results.json").write_text("{}")
    out = io.StringIO()
    finish_sweep(SweepResult(tmp_path, rows, ["latency_ms", "macs"], front=[0], best=0), False, out)
    header = next(line for line in out.getvalue().splitlines() if "variant" in line)
    names = [c.strip() for c in header.strip("┃ ").split("┃")]
    assert names == ["variant", "mode", "latency_ms", "macs", "size_kb", "speedup", "accuracy",
                     "passed", "pareto"]
    assert "2,379,008" in out.getvalue()


def _copy_sweep(swept, tmp_path):
    import shutil

    _, folder = swept
    shutil.copytree(folder, tmp_path / "s")
    return tmp_path / "s"


def test_an_edited_recipe_runs_its_variants_again(swept, tmp_path):
    """Reuse compares the variant's whole recipe, not only its grid values; the sweep section
    (how many variants, which axes) is not part of what a variant does."""
    folder = _copy_sweep(swept, tmp_path)
    recipe = folder / "r.yaml"
    recipe.write_text(SWEEP_RECIPE + "  axes: [size_kb, accuracy]\n")
    doc = json.loads(run("sweep", recipe, "-o", folder / "sw", "-q", "--json").stdout)
    assert doc["reused"] == 2 and doc["axes"] == ["size_kb", "accuracy"]
    (folder / "sw" / "variants" / "v000.json").unlink()  # Ctrl-C after the run, before its meta
    doc = json.loads(run("sweep", recipe, "-o", folder / "sw", "-q", "--json").stdout)
    assert doc["reused"] == 2
    recipe.write_text(SWEEP_RECIPE.replace("max_size_kb: 1000", "max_size_kb: 0.001"))
    result = run("sweep", recipe, "-o", folder / "sw", "-q", "--json")
    doc = json.loads(result.stdout)
    assert doc["reused"] == 0 and not any(r["passed"] for r in doc["rows"])
    assert all(r["budgets_missed"] == "max_size_kb" for r in doc["rows"] if r["status"] == "ok")


def test_interrupted_sweep_says_how_to_continue(swept, tmp_path, monkeypatch):
    import edgec.sweep_exec as sweep_exec

    folder = _copy_sweep(swept, tmp_path)
    real, calls = sweep_exec.run_variant, []

    def interrupted_after_one(task):
        calls.append(task["name"])
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(sweep_exec, "run_variant", interrupted_after_one)
    result = run("sweep", folder / "r.yaml", "-o", tmp_path / "new", "-q")
    assert result.exit_code == 130
    assert "1 of 3 variants finished" in result.output and "--resume" not in result.output
    doc = json.loads((tmp_path / "new" / "results.json").read_text())
    assert (doc["variants"], doc["planned"], doc["complete"]) == (1, 3, False)


def _outcome(passed: bool, size_kb: float, accuracy: float) -> dict:
    report = {"status": "ok", "passed": passed, "ratios": {},
              "compressed": {"size_bytes": size_kb * 1024, "accuracy": accuracy},
              "budgets": [{"name": "max_accuracy_drop", "passed": passed}]}
    return {"status": "ok", "error": None, "report": report}


def test_best_is_on_the_front_of_the_passing_variants(tmp_path):
    """A variant that misses a budget may dominate the only passing one: that one is still best."""
    from edgec.sweep_results import SweepResult, tabulate

    variants = [{"name": n, "values": {"x": i}} for i, n in enumerate(("v000", "v001", "v002"))]
    finished = {"v000": _outcome(True, 100, 0.95), "v001": _outcome(False, 50, 0.97),
                "v002": _outcome(True, 120, 0.90)}  # v002: dominated by v000, which passes
    result = SweepResult(tmp_path, [], ["size_kb", "accuracy"], planned=3)
    tabulate(result, variants, finished, 1.0)
    assert result.front == [1] and result.best == 0
    assert json.loads((tmp_path / "results.json").read_text())["best"] == "v000"
    (tmp_path / "pareto.png").write_bytes(b"an earlier run's plot")
    tabulate(SweepResult(tmp_path, [], ["size_kb"], planned=3), variants, finished, 1.0)
    assert not (tmp_path / "pareto.png").exists()  # one axis: no plot, and no stale one


@pytest.mark.parametrize("args, message", [
    (("--grid", "passes.0.per_channel=true", "--grid", "passes.0.per_channel=false"), "given twice"),
    (("--grid", "passes.0.per_channel=true,,false"), "an empty value"),
    (("--grid", "seed=1,2", "--ray", "--executor", "local"), "contradict"),
    (("--grid", "seed=1,2", "--address", "ray://x:10001"), "--executor ray"),
    (("--grid", "seed=1,2", "--axes", ","), "No Pareto axes"),
])
def test_contradictory_or_empty_options_are_refused_before_any_work(write_recipe, tmp_path, args,
                                                                     message):
    result = run("sweep", write_recipe(), "-o", tmp_path / "s", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "s").exists()


def test_sweep_folder_must_be_a_sweeps(write_recipe, tmp_path):
    recipe = write_recipe()
    (tmp_path / "afile").write_text("")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "results.csv").write_text("my own results")
    for out, message in ((tmp_path / "afile", "is a file"), (tmp_path / "afile" / "sub", "not a folder"),
                         (tmp_path / "mine", "not of a sweep")):
        result = run("sweep", recipe, "--grid", "seed=1,2", "-o", out)
        assert result.exit_code == 2 and message in result.output, result.output
    assert (tmp_path / "mine" / "results.csv").read_text() == "my own results"


def test_grid_values_may_hold_commas_in_brackets_and_quotes():
    assert parse_grid_option("passes.0.exclude_ops=[Conv,Gemm],[]") == \
        ("passes.0.exclude_ops", [["Conv", "Gemm"], []])
    assert parse_grid_option("a='x,y',z")[1] == ["x,y", "z"]
    with pytest.raises(RecipeError, match="unbalanced"):
        parse_grid_option("a=[1,2")


def test_a_grid_path_with_the_recipes_own_value_reuses_the_finished_variants(swept, tmp_path):
    """Adding --grid passes.0.samples=32 (the recipe's own value) changes no variant's recipe:
    the variants keep their names and folders, and none runs again but the failed one."""
    folder = _copy_sweep(swept, tmp_path)
    v000 = folder / "sw" / "variants" / "v000" / "report.json"
    before = v000.stat().st_mtime_ns
    result = run("sweep", folder / "r.yaml", "-o", folder / "sw", "--grid",
                 "passes.0.samples=32,32,32")
    assert result.exit_code == 3, result.output  # v002's model raises, as before
    assert "3 variants, 2 reused, 1 to run" in result.output and "earlier variant" not in result.output
    doc = json.loads((folder / "sw" / "results.json").read_text())
    assert [r["variant"] for r in doc["rows"]] == ["v000", "v001", "v002"]
    assert v000.stat().st_mtime_ns == before
    assert sorted(p.name for p in (folder / "sw" / "variants").iterdir() if p.is_dir()) == \
        ["v000", "v001", "v002.partial"]


def test_an_interrupted_variant_runs_again_under_its_own_name(swept, tmp_path):
    """Ctrl-C leaves a variant's unfinished folder with the recipe it started with, and no values
    file: the next run finds it by that recipe, runs it into its own name and leaves no orphan."""
    import shutil

    folder = _copy_sweep(swept, tmp_path)
    variants = folder / "sw" / "variants"
    (variants / "v001.json").unlink()
    shutil.move(variants / "v001", variants / "v001.partial")
    (variants / "v001.partial" / "report.json").unlink()  # stopped before its report: recipe.yaml
    result = run("sweep", folder / "r.yaml", "-o", folder / "sw", "-q", "--json")
    doc = json.loads(result.stdout)
    assert [r["variant"] for r in doc["rows"]] == ["v000", "v001", "v002"] and doc["reused"] == 1
    assert doc["rows"][1]["status"] == "ok" and (variants / "v001" / "report.json").is_file()
    assert not (variants / "v001.partial").exists()


def test_names_follow_unfinished_runs_and_free_empty_ones(write_recipe, tmp_path):
    """An unfinished folder names the variant of its recipe (report.json, else recipe.yaml); one
    stopped before it wrote either holds nothing, and its name goes to the next new variant."""
    import yaml

    from edgec.sweep import plan
    from edgec.sweep_folder import name_variants

    variants, _ = plan(write_recipe(), ("seed=1,2,3",), None)
    root = tmp_path / "variants"
    for name in ("v000.partial", "v001.partial", "v002.partial", "v007"):
        (root / name).mkdir(parents=True)
        (root / name / ".edgec-run").write_text("")
    recipe = [v["recipe"].model_dump(mode="json") for v in variants]
    (root / "v000.partial" / "report.json").write_text(json.dumps({"status": "interrupted",
                                                                   "recipe": recipe[1]}))
    (root / "v001.partial" / "recipe.yaml").write_text(yaml.safe_dump(recipe[0]))
    (root / "v007" / "recipe.yaml").write_text(yaml.safe_dump({**recipe[0], "seed": 9}))
    left_out = name_variants(tmp_path, variants)
    assert [v["name"] for v in variants] == ["v001", "v000", "v002"]
    assert left_out == ["v007"]  # a run of another recipe: kept, and said so


SYNTHETIC = TINY_RECIPE.replace("{source: digits}", "{source: synthetic}").replace(
    "mode: static, samples: 32", "mode: dynamic")


@pytest.mark.parametrize("args, message", [
    (("--axes", "accuracy"), "--axes accuracy: no variant can measure accuracy"),
    (("--axes", "accuracy,size"), "Put a measurable axis first (--axes size_kb)"),
    (("--set", "sweep.axes=[accuracy, speedup]"), "sweep.axes: [accuracy, speedup]: no variant"),
])
def test_a_first_axis_no_variant_can_measure_is_refused_before_any_work(write_recipe, tmp_path,
                                                                        args, message):
    """Synthetic data has no labels: a sweep that picks its best by accuracy ran to the end,
    exit 0, and found none."""
    result = run("sweep", write_recipe(SYNTHETIC), "--grid", "seed=1,2", "-o", tmp_path / "s", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "the recipe's data is synthetic" in result.output and not (tmp_path / "s").exists()


def test_a_later_axis_no_variant_can_measure_is_named_before_the_sweep_runs(write_recipe):
    from edgec.sweep import plan

    said = []
    _, config = plan(write_recipe(SYNTHETIC), ("seed=1,2",), None, log=said.append)
    assert config.axes == ["size_kb", "speedup", "accuracy"]  # the end's note names it again
    assert said == ["  accuracy is left out of the Pareto front over sweep.axes: [size_kb, speedup, "
                    "accuracy] (the recipe's data is synthetic: random inputs without labels)"]
    said.clear()
    plan(write_recipe(SYNTHETIC), ("seed=1,2",), None, axes=["size", "latency"], log=said.append)
    assert said == []
    plan(write_recipe(SYNTHETIC), ("data.source=digits,synthetic",),
         None, axes=["accuracy"], log=said.append)
    assert said == []  # one variant has labels: measured where it can be


def test_grid_values_are_shown_as_grid_takes_them():
    from edgec.sweep import _label
    from edgec.sweep_config import grid_text

    assert [grid_text(v) for v in ("static", True, None, 0.5, [1, 2], "0.5", "a,b", "")] == \
        ["static", "true", "null", "0.5", "[1, 2]", '"0.5"', '"a,b"', '""']
    assert _label({"passes.0": {"type": "quantize", "mode": "dynamic"}, "x.per_channel": False}) \
        == 'passes.0={"type": "quantize", "mode": "dynamic"}, x.per_channel=false'
    for value in ("static", True, None, 0.5, [1, 2], "0.5", "a,b", {"type": "quantize"}):
        assert parse_grid_option(f"p={grid_text(value)}") == ("p", [value])
