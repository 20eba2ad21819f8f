"""A 12-variant sweep: wall time of `edgec sweep --jobs 2` vs `--jobs 1`, and Ray vs local.

Variants: quantize mode static|dynamic × per_channel true|false × calibration samples 64|128|256.
Each sweep is the real command in a fresh process, timed from start to exit as a user sees it
(imports, worker start-up, the final table and plot included). Prints wall times, the
jobs-2/jobs-1 ratio, and whether the executors' results tables agree (latency columns aside:
those are measured, not computed). The zoo model is trained once first.

    PYTHONPATH=src python benchmarks/sweep_scaling.py [--ray] [--runs 100] [--repeats 5] [--recipe R.yaml]
        [--no-bytecode]

The sweeps run a copy of edgec compiled to bytecode once, first, as pip installs it. A source
checkout run with PYTHONDONTWRITEBYTECODE=1 (this machine's default) compiles every edgec module
again in every process (the sweep, its fork server, each worker; all 114 modules: 0.2 s, against
0.08 s compiled), which an installed edgec never does. --no-bytecode measures that.

What bounds the ratio: a quickstart variant runs in 0.15-0.3 s, and the rest of a sweep (Python
start, planning, the table and plot: 1.1-1.2 s of 4 s with --jobs 1) is serial; the script prints
the Amdahl bound from the jobs-1 runs' own split, a median timeline read from the files each sweep
wrote (first variant started and done, last done, plot written, exit), and (on Linux) the
machine's busy and idle core-seconds during each configuration, from /proc/stat: a --jobs 2
quickstart sweep keeps both cores ~90% busy, since running in parallel is also more work (the
fork server's imports, each worker's first recipe), and the script prints the ratio that work
alone bounds, spread perfectly over the cores (run it on an otherwise idle machine: /proc/stat
counts every process). Heavier variants (--recipe
configs/resnet-digits.yaml: 0.59x on 2 cores) show the scaling of the variants themselves.
Measured numbers: docs/guide-sweep.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRID = ("passes.0.mode=static,dynamic", "passes.0.per_channel=true,false",
        "passes.0.samples=64,128,256")
SAME = ("variant", "status", "size_kb", "size_gzip_kb", "params", "macs", "accuracy")


def sweep(recipe: Path, folder: Path, jobs: int, executor: str, runs: int,
          env: dict) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "edgec", "sweep", str(recipe), "-o", str(folder), "--jobs", str(jobs),
           "--executor", executor, "--set", f"benchmark.runs={runs}", "--quiet"]
    for g in GRID:
        cmd += ["--grid", g]
    cpu0 = cpu_seconds()
    t0, started = time.perf_counter(), time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    TIMELINE[(jobs, executor)].append(timeline(folder, started, seconds))
    cpu1 = cpu_seconds()
    if cpu0 and cpu1:  # the whole machine's: a sweep's fork server and workers are not our children
        CPU[(jobs, executor)].append((cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]))
    if done.returncode not in (0, 1):  # 1: a budget missed in some variant, still a full table
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, json.loads((folder / "results.json").read_text())


CPU: dict[tuple[int, str], list[tuple[float, float]]] = defaultdict(list)
TIMELINE: dict[tuple[int, str], list[tuple[float, ...]]] = defaultdict(list)
MOMENTS = ("first variant starts", "first done", "last done", "plot written", "exit")


def timeline(folder: Path, started: float, seconds: float) -> tuple[float, ...]:
    """MOMENTS, in seconds after the command started, from the files the sweep wrote (a variant's
    .edgec-run marks its start, its report.json its end): where a sweep's serial time goes."""
    def at(paths) -> list[float]:
        return [p.stat().st_mtime - started for p in paths]

    starts = at(folder.glob("variants/*/.edgec-run"))
    ends = at(folder.glob("variants/*/report.json"))
    plot = at([folder / "pareto.png"] if (folder / "pareto.png").exists() else [])
    return (min(starts, default=float("nan")), min(ends, default=float("nan")),
            max(ends, default=float("nan")), max(plot, default=float("nan")), seconds)


def cpu_seconds() -> tuple[float, float] | None:
    """(busy, idle) core-seconds of the whole machine since boot, from /proc/stat; None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / hz, idle / hz


def sweep_env(tmp: str, bytecode: bool) -> dict:
    """The sweeps' environment: a copy of this checkout's edgec compiled to bytecode, as pip
    installs it (``bytecode``); else this checkout, compiled again by every process."""
    if not bytecode:
        return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    # a copy, not PYTHONPYCACHEPREFIX: a prefix holds the only bytecode Python then reads, and
    # torch, onnx and matplotlib would be compiled again in every process instead of edgec
    shutil.copytree(ROOT / "src" / "edgec", Path(tmp) / "src" / "edgec",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(tmp) / "src" / "edgec")],
                   check=True, stdout=subprocess.DEVNULL)
    return {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}


def main() -> None:
    from edgec.recipe import load_recipe
    from edgec.zoo import load_zoo_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--ray", action="store_true")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--recipe", type=Path, default=ROOT / "configs" / "quickstart.yaml")
    ap.add_argument("--repeats", type=int, default=1,
                    help="Rounds of every configuration, interleaved; ratios are medians of rounds.")
    ap.add_argument("--no-bytecode", dest="bytecode", action="store_false",
                    help="Every process compiles edgec's modules again (a source checkout with "
                    "PYTHONDONTWRITEBYTECODE=1), instead of reading them compiled, as installed.")
    args = ap.parse_args()
    load_zoo_model(load_recipe(args.recipe).model.name)  # trained once, outside the timings
    configs = [(1, "local"), (2, "local")] + ([(2, "ray")] if args.ray else [])
    out: dict = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        env = sweep_env(tmp, args.bytecode)
        for rnd in range(args.repeats):  # interleaved, so a slow spell of the machine hits all
            for jobs, executor in configs:
                folder = Path(tmp) / f"{executor}{jobs}-{rnd}"
                seconds, result = sweep(args.recipe, folder, jobs, executor, args.runs, env)
                out[(jobs, executor)].append((seconds, result))
                print(f"round {rnd + 1}: {executor:>5} jobs={jobs}: {result['variants']} variants, "
                      f"{result['failed']} failed, {seconds:.1f} s wall", flush=True)
    base = out[(1, "local")][0][1]
    table = [{k: r[k] for k in SAME} for r in base["rows"]]
    print(f"\n{args.recipe.name}, benchmark.runs={args.runs}, {os.cpu_count()} CPUs, "
          f"{args.repeats} round(s), "
          f"{'edgec compiled once, as installed' if args.bytecode else 'edgec compiled by every process'}")
    for (jobs, executor), rounds in out.items():
        ratios = [s / b for (s, _), (b, _) in zip(rounds, out[(1, "local")], strict=True)]
        walls = sorted(s for s, _ in rounds)
        same = all([{k: r[k] for k in SAME} for r in res["rows"]] == table for _, res in rounds)
        print(f"{executor:>5} jobs={jobs}: median {statistics.median(walls):.1f} s wall, "
              f"{statistics.median(ratios):.2f}x the jobs=1 wall time (rounds: "
              f"{', '.join(f'{r:.2f}' for r in ratios)}); results table (latency aside) identical "
              f"to local jobs=1: {same}; front {rounds[0][1]['pareto']}")
        moments = [statistics.median(m) for m in zip(*TIMELINE[(jobs, executor)], strict=True)]
        print("      median timeline (s after start): " + ", ".join(
            f"{name} {t:.2f}" for name, t in zip(MOMENTS, moments, strict=True)))
        if CPU[(jobs, executor)]:
            busy, idle = (statistics.median(c) for c in zip(*CPU[(jobs, executor)], strict=True))
            print(f"      machine CPU: median {busy:.1f} core-s busy, {idle:.1f} idle "
                  f"({busy / (busy + idle):.0%} of {os.cpu_count()} cores busy)")
            if jobs > 1:  # however well scheduled, this much work needs busy/cores seconds
                floor = busy / min(jobs, os.cpu_count() or 1) / statistics.median(
                    s for s, _ in out[(1, "local")])
                print(f"      its work alone, spread perfectly over {min(jobs, os.cpu_count() or 1)}"
                      f" cores, needs {floor:.2f}x the jobs=1 wall time")
    # Amdahl: what is not a variant (imports, planning, the table and plot) stays serial however
    # many jobs run; perfect 2-way sharing of the variants' own seconds gives this ratio at best
    # (optimistic: the first variant's shared stage is serial too, the others wait for it).
    bounds = []
    for seconds, res in out[(1, "local")]:
        variants = sum(r["seconds"] or 0 for r in res["rows"])
        bounds.append((seconds - variants / 2) / seconds)
        print(f"jobs=1 round: {seconds:.1f} s wall, of which variants {variants:.1f} s, the rest "
              f"(imports, planning, tables, plot) {seconds - variants:.1f} s")
    print(f"best possible jobs=2 ratio with those serial parts (Amdahl): median "
          f"{statistics.median(bounds):.2f}x")
    print("\nvariant results (local, jobs=1, round 1):")
    cols = ["variant", "passes.0.mode", "passes.0.per_channel", "passes.0.samples", "size_kb",
            "speedup", "accuracy", "pareto", "best"]
    print(" | ".join(cols))
    for r in base["rows"]:
        print(" | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols))


if __name__ == "__main__":
    main()
