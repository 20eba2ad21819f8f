"""A 12-variant sweep of the quickstart: wall time with --jobs 1 vs --jobs 2, and Ray vs local.

Variants: quantize mode static|dynamic × per_channel true|false × calibration samples 64|128|256.
Prints wall times, the jobs-2/jobs-1 ratio, and whether the executors' results tables agree
(latency columns aside: those are measured, not computed). The zoo model is trained once first.

    PYTHONPATH=src python benchmarks/sweep_scaling.py [--ray] [--runs 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

GRID = ("passes.0.mode=static,dynamic", "passes.0.per_channel=true,false",
        "passes.0.samples=64,128,256")
SAME = ("variant", "status", "size_kb", "size_gzip_kb", "params", "macs", "accuracy")


def sweep(folder: Path, jobs: int, executor: str, runs: int):
    from edgec.sweep import plan, run_sweep

    recipe = Path("configs/quickstart.yaml")
    variants, _ = plan(recipe, GRID, "product", (f"benchmark.runs={runs}",))
    t0 = time.perf_counter()
    result = run_sweep(recipe, variants, folder, ["size_kb", "speedup", "accuracy"], jobs=jobs,
                       executor=executor)
    return time.perf_counter() - t0, result


def main() -> None:
    from edgec.zoo import load_zoo_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--ray", action="store_true")
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    load_zoo_model("digits_cnn")
    configs = [(1, "local"), (2, "local")] + ([(2, "ray")] if args.ray else [])
    with tempfile.TemporaryDirectory() as tmp:
        out = {}
        for jobs, executor in configs:
            seconds, result = sweep(Path(tmp) / f"{executor}{jobs}", jobs, executor, args.runs)
            out[(jobs, executor)] = (seconds, result)
            print(f"{executor:>5} jobs={jobs}: {len(result.rows)} variants, "
                  f"{len(result.failed)} failed, {seconds:.0f} s wall", flush=True)
    base_s, base = out[(1, "local")]
    table = [{k: r[k] for k in SAME} for r in base.rows]
    for (jobs, executor), (seconds, result) in out.items():
        same = [{k: r[k] for k in SAME} for r in result.rows] == table
        print(f"{executor:>5} jobs={jobs}: {seconds / base_s:.2f}x the jobs=1 wall time; "
              f"results table (latency aside) identical to local jobs=1: {same}; "
              f"front {[result.rows[i]['variant'] for i in result.front]}")
    print("\nvariant results (local, jobs=1):")
    cols = ["variant", "passes.0.mode", "passes.0.per_channel", "passes.0.samples", "size_kb",
            "speedup", "accuracy", "pareto", "best"]
    print(" | ".join(cols))
    for r in base.rows:
        print(" | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols))


if __name__ == "__main__":
    main()
