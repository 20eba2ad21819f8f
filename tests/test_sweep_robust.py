"""Sweeps under trouble: a worker killed, Ctrl-C and SIGTERM with parallel jobs, two sweeps in one
folder, a recipe complete only with its grid, variants that measure no accuracy."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import TINY_RECIPE

from edgec.errors import RecipeError, UsageError

TROUBLE = '''\
import os, signal, sys, time

def dies():  # what the out-of-memory killer does to a worker
    os.kill(os.getpid(), signal.SIGKILL)

def sleeps():
    time.sleep(120)

def exits():
    sys.exit("giving up")

def dies_noted():  # notes each attempt beside this file, then dies
    with open(os.path.join(os.path.dirname(__file__), "attempts.txt"), "a") as f:
        f.write("attempt\\n")
    dies()
'''


def _sweep(folder, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "edgec", "sweep", str(folder / "r.yaml"),
                             "-o", str(folder / "sw"), "-q", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _recipe(folder, callables):
    (folder / "trouble.py").write_text(TROUBLE)
    # Zipped with distinct seeds: a sweep refuses identical variants, and these tests repeat a
    # callable on purpose.
    seeds = list(range(len(callables)))
    (folder / "r.yaml").write_text(TINY_RECIPE + "sweep:\n  mode: zip\n  grid:\n"
                                   + f"    model.callable: {json.dumps(callables)}\n"
                                   + f"    seed: {json.dumps(seeds)}\n")


def _one_bad_of_three(recipe_dir, bad, *options) -> dict:
    """Sweep good, ``bad``, good with --json (exit 3 expected): the rows by variant name, after
    checking that only the middle one failed and that stdout held nothing but the JSON."""
    good = "tiny_models.py:tiny_cnn"
    _recipe(recipe_dir, [good, bad, good])
    proc = _sweep(recipe_dir, *options, "--json")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    doc = json.loads(out)
    rows = {r["variant"]: r for r in doc["rows"]}
    assert [rows[v]["status"] for v in ("v000", "v001", "v002")] == ["ok", "failed", "ok"], err
    assert doc["complete"] is True
    return rows


@pytest.mark.slow
def test_a_killed_worker_fails_its_variant_only(recipe_dir):
    """The variant whose worker dies is recorded as failed; the others, lost with the broken pool,
    run again and succeed."""
    rows = _one_bad_of_three(recipe_dir, "trouble.py:dies", "--jobs", 2)
    assert rows["v001"]["error"].startswith("WorkerDied: ") and "memory" in rows["v001"]["error"]


def test_a_variant_that_calls_sys_exit_fails_alone(recipe_dir):
    """sys.exit() in one variant's model code fails that variant (exit 3, with the table and the
    JSON): it ended the whole sweep with exit 1 ("no variant meets the budgets"), the variants
    after it unrun and stdout empty under --json."""
    from click.testing import CliRunner

    from edgec.cli import cli

    good = "tiny_models.py:tiny_cnn"
    _recipe(recipe_dir, [good, "trouble.py:exits", good])
    result = CliRunner().invoke(cli, ["sweep", str(recipe_dir / "r.yaml"), "-o",
                                      str(recipe_dir / "sw"), "-q", "--json"])
    assert result.exit_code == 3, result.output
    rows = {r["variant"]: r for r in json.loads(result.stdout)["rows"]}
    assert [rows[v]["status"] for v in ("v000", "v001", "v002")] == ["ok", "failed", "ok"]
    assert rows["v001"]["error"] == ("ModelLoadError: model.callable 'trouble.py:exits' called "
                                     "sys.exit('giving up') (exit code 1) instead of returning a "
                                     "model.")


def test_sys_exit_outside_a_variants_run_fails_that_variant(monkeypatch, tmp_path):
    """Code a variant runs before its run starts (a plugin loaded by the API) is caught too."""
    import sys

    import edgec.api
    from edgec.sweep_exec import run_variant

    monkeypatch.setattr(edgec.api, "compress", lambda *a, **k: sys.exit(5))
    outcome = run_variant({"name": "v000", "recipe": "r.yaml", "overrides": [],
                           "run_dir": str(tmp_path / "v000"), "torch_threads": 1})
    assert outcome["status"] == "failed"
    assert outcome["error"] == "SystemExit: code this variant ran called sys.exit(5) (exit code 5)"


@pytest.mark.slow
def test_a_parallel_variant_that_calls_sys_exit_fails_alone(recipe_dir):
    """In a worker too: the variant beside it was lost with the sweep."""
    rows = _one_bad_of_three(recipe_dir, "trouble.py:exits", "--jobs", 2)
    assert "sys.exit('giving up')" in rows["v001"]["error"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_a_parallel_sweep_stops_its_workers(recipe_dir, sig):
    """SIGTERM (a CI job cancelled) and Ctrl-C stop the running variants and start no queued one;
    no worker lives on holding the output (communicate would then hang)."""
    _recipe(recipe_dir, ["trouble.py:sleeps"] * 3)
    proc = _sweep(recipe_dir, "--jobs", 2, "--summary-md", recipe_dir / "summary.md")
    variants = recipe_dir / "sw" / "variants"
    deadline = time.monotonic() + 120
    while not all((variants / f"v00{i}.partial" / ".lock").exists() for i in (0, 1)):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "No variant had finished" in err
    summary = (recipe_dir / "summary.md").read_text()  # a CI job's page says so too
    assert summary.startswith("### ⚠️ edgec sweep: interrupted") and "No variant had finished" in summary
    assert not (variants / "v002.partial").exists() and not (variants / "v002").exists()
    for i in (0, 1):  # each worker stopped its run as on Ctrl-C: the report says so
        report = json.loads((variants / f"v00{i}.partial" / "report.json").read_text())
        assert report["status"] == "interrupted", report["status"]


NEEDS_RAY = "Ray is an optional extra (pip install 'edgec[ray]')"


@pytest.mark.slow
def test_a_ray_worker_that_dies_fails_its_variant_only(recipe_dir):
    """On Ray as with local workers: the variant whose worker dies is a failed row, run once (Ray
    retried it three times, then the sweep ended as an internal error with no table), and stdout
    holds only the JSON (Ray printed "(raylet) A worker died …" there)."""
    pytest.importorskip("ray", reason=NEEDS_RAY)
    rows = _one_bad_of_three(recipe_dir, "trouble.py:dies_noted", "--ray", "--jobs", 2)
    assert rows["v001"]["error"].startswith("WorkerDied: ")
    assert (recipe_dir / "attempts.txt").read_text().count("attempt") == 1


@pytest.mark.slow
def test_sigterm_stops_a_ray_sweep_as_ctrl_c(recipe_dir):
    """ray.init installs its own SIGTERM handler (exit 15 via sys.exit; 1 here with a crash dump);
    the sweep keeps its own: exit 130, and it says what was kept."""
    pytest.importorskip("ray", reason=NEEDS_RAY)
    _recipe(recipe_dir, ["trouble.py:sleeps"] * 2)
    proc = _sweep(recipe_dir, "--ray", "--jobs", 2, start_new_session=True)
    variants = recipe_dir / "sw" / "variants"
    deadline = time.monotonic() + 120
    while not (variants / "v000.partial").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "No variant had finished" in err


def test_what_ray_reports_for_a_variant_becomes_its_failed_row():
    """Ray's memory monitor, a crashed worker and any other Ray error name the variant's row."""
    errors = pytest.importorskip("ray.exceptions", reason=NEEDS_RAY)
    from edgec.sweep_ray import _lost

    task = {"name": "v001"}
    oom = _lost(task, errors.OutOfMemoryError("Task was killed: low memory.\nMore"), errors)
    assert oom["status"] == "failed" and oom["error"].startswith("WorkerDied: Ray's memory monitor")
    assert _lost(task, errors.WorkerCrashedError(), errors)["error"].startswith(
        "WorkerDied: the worker process running this variant died")
    other = _lost(task, errors.TaskCancelledError(), errors)
    assert other["name"] == "v001" and other["error"] == "TaskCancelledError"


@pytest.mark.parametrize("address, message", [
    ("127.0.0.1:1", "--address 127.0.0.1:1: nothing answers there (Connection refused)."),
    ("http://head:8265", "--address 'http://head:8265' is not a Ray cluster address."),
    ("head", "--address 'head' is not a Ray cluster address."),
    ("ray://head:port", "--address 'ray://head:port' is not a Ray cluster address."),
])
def test_a_ray_address_that_cannot_work_is_refused_before_any_work(write_recipe, tmp_path,
                                                                    address, message):
    """Ray retried an unreachable address for 13 minutes (Ctrl-C took 25 s), the sweep folder
    already made: now exit 2 at once, naming the address and what Ray wants."""
    import importlib.util

    from click.testing import CliRunner

    from edgec.cli import cli

    if importlib.util.find_spec("ray") is None:
        pytest.skip(NEEDS_RAY)
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["sweep", str(write_recipe()), "--grid", "seed=1,2", "-o",
                                      str(tmp_path / "sw"), "--ray", "--address", address])
    assert result.exit_code == 2, result.output
    assert message in result.output and "host:port" in result.output
    assert time.monotonic() - start < 10 and not (tmp_path / "sw").exists()


def _session_left(sid: int) -> list[str]:
    """The live processes of session ``sid`` (by /proc): what a stopped sweep left behind."""
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                state, _ppid, _pgid, session = f.read().rsplit(")", 1)[1].split()[:4]
            with open(f"/proc/{pid}/cmdline") as f:
                cmd = f.read().replace("\0", " ")[:120]
        except OSError:  # gone meanwhile
            continue
        if int(session) == sid and state != "Z":
            left.append(f"{pid} {cmd}")
    return left


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
@pytest.mark.parametrize("to, sig", [("sweep", signal.SIGTERM), ("group", signal.SIGTERM),
                                     ("sweep", signal.SIGKILL)])
def test_a_stopped_sweep_leaves_no_process_behind(recipe_dir, to, sig):
    """Whatever stops a parallel sweep, its fork server, workers and resource tracker leave with
    it: SIGTERM to the sweep alone (CI cancelling it), to its whole group (`timeout`, which left
    a worker waiting for work forever, with the server and tracker that wait for it), or SIGKILL,
    which gives the sweep no chance to stop them."""
    _recipe(recipe_dir, ["trouble.py:sleeps"] * 3)
    proc = _sweep(recipe_dir, "--jobs", 2, start_new_session=True)
    variants = recipe_dir / "sw" / "variants"
    deadline = time.monotonic() + 120
    while not all((variants / f"v00{i}.partial" / ".lock").exists() for i in (0, 1)):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    if to == "group":
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGTERM else -sig), err
    deadline = time.monotonic() + 15  # a worker's run stops as on Ctrl-C, then it exits
    while _session_left(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _session_left(proc.pid) == []


def test_two_sweeps_never_share_a_folder(write_recipe, tmp_path):
    from click.testing import CliRunner

    from edgec.cli import cli
    from edgec.rundir import exclusive_lock

    folder = tmp_path / "sw"
    (folder / "variants").mkdir(parents=True)
    held = exclusive_lock(folder / ".lock", "busy")  # another sweep, running
    try:
        result = CliRunner().invoke(cli, ["sweep", str(write_recipe()), "--grid", "seed=1,2",
                                          "-o", str(folder)])
    finally:
        held.close()
    assert result.exit_code == 2
    assert "Another edgec sweep is writing" in result.output
    assert os.listdir(folder / "variants") == []


def test_a_recipe_complete_only_with_its_grid_is_planned(write_recipe):
    from edgec.sweep import plan

    recipe = write_recipe(TINY_RECIPE.replace("mode: static", "mode: pick-one"))
    variants, _ = plan(recipe, ("passes.0.mode=static,dynamic",), None)
    assert [v["recipe"].passes[0].mode for v in variants] == ["static", "dynamic"]
    broken = write_recipe(TINY_RECIPE + "sweep: {mode: sideways}\n", name="b.yaml")
    with pytest.raises(RecipeError, match="sideways"):
        plan(broken, ("seed=1,2",), None)


def _outcome(name, size, speedup, status="ok"):
    report = {"status": "ok", "passed": True, "budgets": [],
              "compressed": {"size_bytes": size * 1024, "accuracy": None},
              "ratios": {"speedup_p1": speedup}}
    return {"name": name, "status": status, "error": None, "report": report}


def test_an_axis_no_variant_measured_is_left_out_of_the_front(tmp_path):
    """Without labelled data no variant has an accuracy: the front is over the other axes (it was
    empty), and the results say which axis was left out."""
    from edgec.sweep_results import SweepResult, tabulate

    variants = [{"name": f"v00{i}", "values": {"seed": i}} for i in range(3)]
    finished = {"v000": _outcome("v000", 100, 1.0), "v001": _outcome("v001", 50, 1.5),
                "v002": _outcome("v002", 80, 1.2)}
    result = SweepResult(tmp_path, [], ["size_kb", "speedup", "accuracy"], planned=3)
    tabulate(result, variants, finished, 1.0, final=False)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["unmeasured_axes"] == ["accuracy"] and doc["pareto"] == ["v001"]
    assert doc["best"] == "v001" and doc["complete"] is False  # not final: still running
    tabulate(result, variants, finished, 1.0)
    assert json.loads((tmp_path / "results.json").read_text())["complete"] is True
    assert "leaves it out" in (tmp_path / "index.html").read_text()


def test_a_failed_variant_points_at_its_unfinished_folder(tmp_path):
    """A variant that ran again and failed: its row names the failed run, not the older finished
    folder of the same name."""
    from edgec.sweep_results import result_row

    (tmp_path / "variants" / "v000").mkdir(parents=True)
    variant = {"name": "v000", "values": {}}
    assert result_row(variant, _outcome("v000", 1, 1.0), tmp_path)["run_dir"] == "variants/v000"
    (tmp_path / "variants" / "v000.partial").mkdir()
    failed = {"name": "v000", "status": "failed", "error": "PassError: x", "report": None}
    assert result_row(variant, failed, tmp_path)["run_dir"] == "variants/v000.partial"


@pytest.mark.parametrize("overrides, named", [
    ("seed=1", "the string 'seed=1'"), ({"seed": 1}, "a dict"), ([("seed", 1)], "holding tuple"),
])
def test_api_overrides_must_be_a_list_of_strings(write_recipe, overrides, named):
    from edgec.api import resolve_recipe

    with pytest.raises(UsageError, match=r"list of 'dotted\.path=value' strings") as info:
        resolve_recipe(write_recipe(), overrides)
    assert named in str(info.value)
    assert resolve_recipe(write_recipe(), ["seed=3"])[0].seed == 3


def test_a_variant_that_cannot_write_is_told_to_rerun_the_sweep(write_recipe, tmp_path, monkeypatch):
    """A variant's advice names what its user typed, a sweep: neither --resume nor resume=True,
    which a sweep's variants have no use for (the next run of the sweep runs it again)."""
    import errno

    from edgec import pipeline
    from edgec.sweep_exec import run_variant

    def disk_full(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "v000"))

    monkeypatch.setattr(pipeline._Run, "_write_resolved_recipe", disk_full)
    outcome = run_variant({"name": "v000", "recipe": str(write_recipe()), "overrides": [],
                           "run_dir": str(tmp_path / "v000"), "torch_threads": 1})
    assert outcome["status"] == "failed" and "No space left on device" in outcome["error"]
    assert "re-run with the same `edgec sweep` command" in outcome["error"]
    assert "resume" not in outcome["error"].replace("edgec sweep", "")
