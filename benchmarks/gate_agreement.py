"""Do repeated runs of the same speed gate agree on this (shared, noisy) machine?

Measures the quickstart's baseline and int8 model side by side ``--repeats`` times (fresh sessions,
at least ``--runs`` interleaved rounds spanning ``--seconds`` each, as a gated run does), and
decides min_speedup at limits from 0.8x to 1.2x the median measured speedup. For each limit it
prints how often the gate (bootstrap CI of the p1 ratio, latency_gate.py) said pass / fail /
inconclusive, how often the *gate outcome* (inconclusive counts as pass by default) was the
majority one, and the same for the previous gate (CI of the median per-round ratio) and a naive
gate comparing the p50 ratio with the limit. ``--spread`` spaces the repeats out in time: the
machine's slow spells last seconds, so back-to-back repeats sample only one or two of them.

    PYTHONPATH=src python benchmarks/gate_agreement.py [--repeats 20] [--runs 200] [--recipe R] \
        [--spread 600]
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
    from edgec.benchmark import GATE_MIN_SECONDS, BenchmarkConfig, bench_files, ratios
    from edgec.budgets import check_budgets
    from edgec.latency_gate import (
        MAX_BOOTSTRAP_ROUNDS,
        bootstrap_median_ci,
        decide_at_least,
        round_ratios,
        with_session_drift,
    )
    from edgec.recipe import BudgetsConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=GATE_MIN_SECONDS,
                    help="benchmark.min_seconds of each repeat (the gate's default)")
    ap.add_argument("--recipe", type=Path, default=Path("configs/quickstart.yaml"),
                    help="whose baseline and compressed model to gate (default: the quickstart's, "
                    "a 30-50 µs model, the noisiest case)")
    ap.add_argument("--spread", type=float, default=0.0,
                    help="spread the repeats over this many seconds (sleeping between them), so "
                    "they sample the machine's slower swings as CI runs hours apart would")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_path, comp_path = models(Path(tmp), args.recipe)
        config = BenchmarkConfig(threads=1, runs=args.runs, warmup=20, min_seconds=args.seconds)
        measured = []
        t0 = time.perf_counter()
        for i in range(args.repeats):
            if args.spread and i:
                time.sleep(max(0.0, t0 + args.spread * i / (args.repeats - 1) - time.perf_counter()))
            m = bench_files([base_path, comp_path], None, config)
            base, comp = m["baseline"], m["model"]
            measured.append((base, comp, ratios(base, comp)))
        seconds = time.perf_counter() - t0
    n = len(measured)

    def spread(key):
        v = [r[key] for _, _, r in measured]
        return f"{min(v):.3f}/{statistics.median(v):.3f}/{max(v):.3f}"

    true = statistics.median(r["speedup_p1"] for _, _, r in measured)
    rounds = statistics.median(b.latency_ms.runs for b, _, _ in measured)
    print(f"{n} repeats of >= {args.runs} rounds and >= {args.seconds:g} s (median {rounds:.0f} "
          f"rounds) over {seconds:.0f} s. Speedup min/median/max: p1 ratio (the gate's) "
          f"{spread('speedup_p1')}, paired median {spread('speedup_paired')}, p50 ratio "
          f"{spread('speedup_p50')}")
    print("How often a gate's outcome was the majority one, by limit (a multiple of the median "
          "p1 speedup); 'inconclusive' counts as pass unless fail-on-inconclusive:")
    print(f"{'limit':>14} | {'gate verdicts':<34} | {'gate':>7} | {'fail-on-inconcl.':>16} | "
          f"{'paired-median gate':>18} | {'naive p50':>9}")
    # the gate before this one: bootstrap CI of the median per-round ratio (on rounds thinned
    # evenly to the gate's bootstrap size: 2000 resamples of 100k rounds would not fit in memory)
    paired_cis = []
    for base, comp, _ in measured:
        ratios_ = round_ratios(base.latency_ms.samples, comp.latency_ms.samples)
        step = max(1, len(ratios_) // MAX_BOOTSTRAP_ROUNDS)
        paired_cis.append(with_session_drift(bootstrap_median_ci(ratios_[::step])))
    for factor in (0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2):
        limit = round(true * factor, 3)
        verdicts, outcome, strict, paired, naive = (Counter() for _ in range(5))
        for (base, comp, r), paired_ci in zip(measured, paired_cis, strict=True):
            (row,) = check_budgets(BudgetsConfig(min_speedup=limit), base, comp, r)
            verdicts[row.verdict] += 1
            outcome[row.passed] += 1
            strict[row.verdict == "pass"] += 1
            paired[decide_at_least(paired_ci, limit) != "fail"] += 1
            naive[r["speedup_p50"] >= limit] += 1
        vtext = ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
        print(f"{limit:>6} ({factor:.2f}x) | {vtext:<34} | {max(outcome.values()):>4}/{n} | "
              f"{max(strict.values()):>13}/{n} | {max(paired.values()):>15}/{n} | "
              f"{max(naive.values()):>6}/{n}")


if __name__ == "__main__":
    main()
