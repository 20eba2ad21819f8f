"""Do repeated runs of the same speed gate agree on this (shared, noisy) machine?

Measures the quickstart's baseline and int8 model side by side ``--repeats`` times (fresh sessions,
``--runs`` interleaved rounds each), and decides min_speedup at limits from 0.8x to 1.2x the
median measured speedup ("true"). For each limit it prints how often the noise-aware
gate (bootstrap CI on per-round ratios, budgets.py) said pass / fail / inconclusive, how often the
*gate outcome* (inconclusive counts as pass by default) was the majority one, and the same for a
naive gate comparing the p50 ratio with the limit.

    PYTHONPATH=src python benchmarks/gate_agreement.py [--repeats 20] [--runs 200] [--recipe R]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path


def models(folder: Path, recipe: Path) -> tuple[Path, Path]:
    from edgec.api import compress

    run = folder / "run"
    compress(recipe, ["benchmark.runs=20"], run)
    return run / "baseline.onnx", run / "model.onnx"


def main() -> None:
    from edgec.benchmark import BenchmarkConfig, bench_files, ratios
    from edgec.budgets import check_budgets
    from edgec.recipe import BudgetsConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--recipe", type=Path, default=Path("configs/quickstart.yaml"),
                    help="whose baseline and compressed model to gate (default: the quickstart's, "
                    "a 40-70 µs model, the noisiest case)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_path, comp_path = models(Path(tmp), args.recipe)
        config = BenchmarkConfig(threads=1, runs=args.runs, warmup=20)
        measured = []
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            m = bench_files([base_path, comp_path], None, config)
            base, comp = m["baseline"], m["model"]
            measured.append((base, comp, ratios(base, comp)))
        seconds = time.perf_counter() - t0
    p50s = [r["speedup_p50"] for _, _, r in measured]
    paired = [r["speedup_paired"] for _, _, r in measured]
    true = statistics.median(paired)
    print(f"{args.repeats} repeats x {args.runs} interleaved rounds in {seconds:.0f} s; "
          f"speedup p50-ratio min/median/max {min(p50s):.3f}/{statistics.median(p50s):.3f}/"
          f"{max(p50s):.3f}, paired {min(paired):.3f}/{true:.3f}/{max(paired):.3f}")
    print(f"{'limit':>14} | {'CI gate verdicts':<34} | {'CI gate agree':>13} | "
          f"{'CI gate, fail-on-inconcl.':>25} | {'naive p50 gate agree':>20}")
    for factor in (0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2):
        limit = round(true * factor, 3)
        verdicts, outcome, strict, naive = Counter(), Counter(), Counter(), Counter()
        for base, comp, r in measured:
            (row,) = check_budgets(BudgetsConfig(min_speedup=limit), base, comp, r)
            verdicts[row.verdict] += 1
            outcome[row.passed] += 1
            strict[row.verdict == "pass"] += 1
            naive[r["speedup_p50"] >= limit] += 1
        n = len(measured)
        vtext = ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
        print(f"{limit:>6} ({factor:.2f}x) | {vtext:<34} | {max(outcome.values()):>6}/{n:<6} | "
              f"{max(strict.values()):>18}/{n:<6} | {max(naive.values()):>13}/{n:<6}")


if __name__ == "__main__":
    main()
