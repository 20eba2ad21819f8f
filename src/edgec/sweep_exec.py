"""Running sweep variants: in this process, in local worker processes, or on Ray.

Every executor runs the same top-level function, ``run_variant`` (picklable, so it travels to a
spawned process or a Ray worker), and yields finished rows as they complete so the sweep can save
results after each one. A variant that fails becomes a row with its error; it never stops the rest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from edgec.errors import EdgecError, UsageError, exit_call, spelling


def run_variant(task: dict) -> dict:
    """Compress one variant into its run folder; returns {name, status, report|None, error}."""
    from edgec.api import compress

    _limit_torch_threads(task["torch_threads"])  # jobs share the cores instead of fighting
    out = Path(task["run_dir"])
    try:
        with spelling("sweep"):  # "re-run the sweep", not the --resume a variant has no use for
            compress(task["recipe"], task["overrides"], out, force=True,
                     stage_cache=task.get("stage_cache"))
        status, error = "ok", None
    except EdgecError as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc.message}"
    except Exception as exc:  # a bug in a pass or user code: record it, keep the sweep going
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    except SystemExit as exc:  # user code outside the run (which names it): ends no other variant
        status, error = "failed", f"SystemExit: code this variant ran called {exit_call(exc)}"
    report = _read_report(out / "report.json")
    if report is not None and report.get("status") != "ok" and status == "ok":
        status, error = "failed", "the run did not complete"
    return {"name": task["name"], "status": status, "error": error, "report": report}


def _limit_torch_threads(threads: int) -> None:
    """Now if torch is loaded, else when a variant first imports it (torch reads OMP_NUM_THREADS
    then; onnxruntime's own thread pools do not): a variant that reuses a kept export never does."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)


def _read_report(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def torch_threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def run_local(tasks: list[dict], jobs: int, meanwhile: Callable[[], None] | None = None,
              torch: bool = True) -> Iterator[dict]:
    """Sequentially in-process for one job; else in ``jobs`` worker processes (``torch``: whether
    their fork server preloads it). ``meanwhile`` runs in a thread here while the workers start:
    this process would otherwise idle, blocked until the fork server has imported onnxruntime
    and edgec (and torch: seconds), and the thread then competes less with the workers.

    A worker that dies (the out-of-memory killer, a `kill`) breaks its pool: the variants it
    was running with are run again afterwards, each alone, so only the one that kills even a
    worker of its own is recorded as failed, and the others are not lost."""
    if jobs == 1 or len(tasks) == 1:
        for task in tasks:
            yield run_variant(task)
        return
    import multiprocessing
    import threading

    side = None
    if meanwhile is not None:
        side = threading.Thread(target=_warm_up, args=(meanwhile,), name="edgec-meanwhile",
                                daemon=True)
        side.start()
    context = _worker_context(multiprocessing, torch)
    try:
        waiting, suspects = list(tasks), []
        while waiting:
            before = len(waiting)
            waiting, lost = yield from _pool_round(waiting, jobs, context)
            if not lost and len(waiting) == before:
                raise EdgecError("The sweep's worker processes die as soon as they start, before "
                                 "running any variant.", hint="Check the machine's free memory, "
                                 "or run with --jobs 1 to see the error in this process.")
            suspects += lost
        for task in suspects:
            _, lost = yield from _pool_round([task], 1, context)
            if lost:
                yield died(task)
    finally:
        if side is not None:
            side.join()


def _pool_round(tasks: list[dict], jobs: int, context) -> Iterator[dict]:
    """Run ``tasks`` in a new pool until done or a worker dies; yields outcomes, returns
    (tasks not started, tasks lost with the pool). Never more than ``jobs`` are submitted: the
    pool would queue one more, which Ctrl-C then still ran, and which a dead worker's pool loses
    without saying whether it had started."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from edgec.sweep_forkserver import worker_started

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=worker_started,
                               initargs=(os.getpid(),))
    waiting, running, lost = list(tasks), {}, []

    def submit() -> None:
        while waiting and len(running) < jobs:
            try:  # blocks until the workers exist
                future = pool.submit(_run_in_worker, waiting[0])
            except BrokenProcessPool:  # a worker died meanwhile: the waits below say which
                return
            running[future] = waiting.pop(0)

    try:
        submit()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            outcomes = []
            for fut in done:
                task = running.pop(fut)
                try:
                    outcomes.append(fut.result())
                except BrokenProcessPool:
                    lost.append(task)
            if lost:  # the rest of this pool's work dies with it
                lost += running.values()
                running.clear()
            else:  # before the caller's bookkeeping (tables after each variant): no worker idles
                submit()
            yield from outcomes
    except BaseException:  # Ctrl-C, SIGTERM, a crash here: the workers must not run on
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return waiting, lost


def _run_in_worker(task: dict) -> dict:
    """run_variant in a pool's worker, which an interrupted variant (Ctrl-C, SIGTERM: from the
    sweep stopping its workers, from the worker's watch on the sweep, or a `kill`) ends too. Back in
    the pool it waited for work again, forever if the sweep had gone (under `timeout`, which
    signals the whole group, the other worker died holding the queue's lock). A sweep still
    running sees a worker that died: the variant runs again, alone."""
    import contextlib
    import sys

    try:
        return run_variant(task)
    except KeyboardInterrupt:  # the run has written its report ("interrupted")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(130)


def _stop_workers(pool) -> None:
    """Terminate the pool's workers (their runs stop as on Ctrl-C and keep what they did), then
    kill any that hangs. Orphaned workers ran their variant to the end, holding the terminal's
    stdout. ``_processes`` is private, but Python 3.11 has no public way (3.14 adds one)."""
    import contextlib

    processes = list((getattr(pool, "_processes", None) or {}).values())
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)  # a worker that stopped its run then leaves
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


def died(task: dict, why: str = "the worker process running this variant died, also when it "
         "ran alone (killed from outside, most often by the out-of-memory killer)") -> dict:
    """The row of a variant whose worker died (``why``, as this executor knows it)."""
    return {"name": task["name"], "status": "failed", "report": None,
            "error": f"WorkerDied: {why}. Run it with `edgec compress` to see more, or free memory."}


def _warm_up(work: Callable[[], None]) -> None:
    import contextlib

    with contextlib.suppress(Exception):  # a warm-up: the real work redoes it, and errors there
        work()


# What every variant imports; preloaded once in the fork server (see _worker_context). torch only
# when a variant needs it: a sweep of a zoo model with only ONNX passes reuses a kept export and
# never imports it (export_cache.py), and its fork server was then ready in 1 s instead of 3.4 s.
_TORCH_PRELOAD = ["torch", "torch.onnx"]
# Besides the libraries, the modules a variant's run imports lazily (0.11 s, which each worker's
# first variant paid again): yaml, numpy.random, and edgec's run-time modules.
_PRELOAD = ["onnx", "onnxruntime", "onnxruntime.quantization",
            "onnxruntime.quantization.shape_inference", "yaml", "numpy.random", "edgec.api",
            "edgec.recipe", "edgec.pipeline", "edgec.benchmark", "edgec.passes", "edgec.latency",
            "edgec.graph_stats", "edgec.measure_memo", "edgec.stage_cache", "edgec.export_cache",
            "edgec.resume", "edgec.device", "edgec.targets", "edgec.memory", "edgec.budgets",
            "edgec.regression", "edgec.report_text", "edgec.doctor", "edgec.html_charts", "numpy.ma",
            "edgec.memory_probe", "edgec.digits_source"]


def _worker_context(multiprocessing, torch: bool = True):
    """Never plain fork: the parent may hold torch/OpenMP thread pools that fork would copy broken.
    Where available, a fork server (a fresh single-threaded process) imports onnxruntime, edgec
    and (``torch``) torch once and forks the workers from it: importing them took 5 s per process
    here, longer than a quickstart variant's whole run, so spawned workers made --jobs 2 no
    faster than 1."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # sweep_forkserver first: it settles the server before the imports (a Ctrl-C during them)
        ctx.set_forkserver_preload(["edgec.sweep_forkserver",
                                    *(_TORCH_PRELOAD if torch else []), *_PRELOAD])
        return ctx
    return multiprocessing.get_context("spawn")


def recipe_jobs(recipe: Path, overrides: tuple[str, ...] = ()) -> int | None:
    """The recipe's ``sweep.jobs`` from its raw YAML (validated later, with the rest), so that a
    sweep whose recipe asks for parallel jobs starts its fork server as early as --jobs would."""
    from edgec.recipe_yaml import peek_recipe

    sweep = (peek_recipe(str(recipe), tuple(overrides)) or {}).get("sweep")
    jobs = sweep.get("jobs") if isinstance(sweep, dict) else None
    return jobs if isinstance(jobs, int) and not isinstance(jobs, bool) else None


def start_early(jobs: int | None, executor: str, torch: bool = True) -> None:
    """Start the local workers' fork server now, before the sweep is planned: its seconds of
    imports then overlap the planning (validating every variant took 0.3-0.5 s here) instead of
    following it. Harmless if the plan fails: the server leaves when this process does."""
    import multiprocessing

    if executor != "local" or not jobs or jobs < 2:
        return
    ctx = _worker_context(multiprocessing, torch)
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def choose_executor(kind: str | None, use_ray: bool, address: str | None) -> str:
    """The executor the options name ('local' unless told), refusing contradictions before any
    work: --ray with --executor local, or a Ray --address for local workers."""
    if use_ray and kind == "local":
        raise UsageError("--ray and --executor local contradict each other; give one of them.")
    kind = "ray" if use_ray else kind or "local"
    if address and kind != "ray":
        raise UsageError("--address is for --executor ray (a Ray cluster address).")
    if kind == "ray":  # Ray installed, the address answers: not after the folder is made
        from edgec.sweep_ray import check_ray

        check_ray(address)
    return kind


def executor(kind: str, jobs: int, address: str | None, meanwhile: Callable[[], None] | None = None,
             torch: bool = True) -> Callable[[list[dict]], Iterator[dict]]:
    if kind == "ray":
        from edgec.sweep_ray import run_ray

        return lambda tasks: run_ray(tasks, jobs, address)
    if address:
        raise UsageError("--address is for --executor ray (a Ray cluster address).")
    return lambda tasks: run_local(tasks, jobs, meanwhile, torch)
