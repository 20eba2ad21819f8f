"""What the ecosystem features cost and show: plugin discovery at start-up, report.html, and the
operator time profile of a real model (resnet20_digits, fp32 vs static int8).

    PYTHONPATH=src python benchmarks/ecosystem_overhead.py [--repeats 7] [--runs 100]

1. Start-up: `import edgec.recipe` (which scans entry points and loads plugins) in a fresh
   interpreter, with no plugin vs with examples/plugin installed in a temporary folder; median of
   --repeats, as wall time (the machine may be shared: compare the two rows, not the absolutes).
2. One compress run of configs/resnet-digits.yaml: time of the profile stage vs the benchmark
   stage (from the progress log timestamps), and report.html's size.
3. The top operators by share of latency in that run's profile, baseline vs compressed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def startup(extra_path: str | None, repeats: int) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (extra_path, str(ROOT / "src")) if p)}
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import edgec.recipe"], env=env, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--runs", type=int, default=100, help="benchmark and profile runs")
    parser.add_argument("--recipe", type=Path, default=ROOT / "configs" / "resnet-digits.yaml")
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()

    if not args.skip_startup:
        print_startup(args.repeats)
    profile_table(args.recipe.resolve(), args.runs)


def print_startup(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "examples" / "plugin", Path(tmp) / "src",
                        ignore=shutil.ignore_patterns("build", "*.egg-info"))
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", f"{tmp}/site", f"{tmp}/src"], check=True)
        bare, with_plugin = startup(None, repeats), startup(f"{tmp}/site", repeats)
    print("## start-up: python -c 'import edgec.recipe' (median wall s)\n")
    print("| plugins | seconds |\n|---|---|")
    print(f"| none | {bare:.3f} |\n| examples/plugin (3 entry points) | {with_plugin:.3f} |\n")


def profile_table(recipe_path: Path, runs: int) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from edgec.api import compress
    from edgec.profile_ops import profile_run, top_ops
    from edgec.recipe import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"benchmark.runs={runs}", f"report.profile.runs={runs}"]
        report = compress(recipe_path, overrides, output=f"{tmp}/run")
        html = (Path(tmp) / "run" / "report.html").stat().st_size
        recipe = load_recipe(recipe_path, overrides)
        from edgec.data import load_data

        data = load_data(recipe.data, tuple(recipe.model.input_shape), recipe_path.parent)
        t0 = time.perf_counter()
        profile_run({"baseline": Path(tmp) / "run" / "baseline.onnx",
                     "compressed": Path(tmp) / "run" / "model.onnx"}, data.eval.x,
                    tuple(recipe.model.input_shape), 1, 1, recipe.report.profile)
        profile_s = time.perf_counter() - t0
    print(f"## {recipe_path.name}, {runs} runs\n")
    print(f"report.html: {html / 1024:.1f} KiB; whole run {report.seconds:.1f} s; profiling both "
          f"models again separately: {profile_s:.2f} s; speed-up p50 "
          f"{report.ratios['speedup_p50']:.2f}x\n")
    for name in ("baseline", "compressed"):
        p = report.op_profile["models"][name]
        print(f"### {name}: median {p['run_us']:.0f} µs/run with the profiler on\n")
        print("| operator | share | µs/run | calls/run |\n|---|---|---|---|")
        for o in top_ops(p, 6):
            print(f"| {o['op_type']} | {o['share']:.1%} | {o['us_per_run']:.1f} | {o['calls_per_run']:g} |")
        print()


if __name__ == "__main__":
    main()
