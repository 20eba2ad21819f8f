"""Structured pruning of torchvision architectures: does each prune, keep its output, export, and run faster?

Random weights (nothing is downloaded), so this checks mechanics and speed, not accuracy. Each
model is pruned by edgec's prune pass, both versions are exported to ONNX (opset 17) and timed by
onnxruntime in the same process, interleaved (A B A B …, 1 thread, batch 1, 1×3×224×224).

    PYTHONPATH=src python benchmarks/prune_torchvision.py [--amount 0.5] [--runs 40] [--global]
    PYTHONPATH=src python benchmarks/prune_torchvision.py --structure block [--amount 0.5]

With --structure block the pass removes that fraction of each net's identity-shortcut residual
blocks (ranked by influence on random inputs: mechanics, not a meaningful ranking); nets without
such blocks (SqueezeNet, ShuffleNetV2) are refused, and the refusal is printed.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_1", "shufflenet_v2_x1_0")
SHAPE = (1, 3, 224, 224)


def prune(model, amount: float, global_ranking: bool, round_to, structure: str = "channel"):
    from edgec.data import DataSplits, Split
    from edgec.passes.base import PassContext
    from edgec.passes.prune import PruneConfig, PrunePass
    from edgec.progress import Progress

    x = np.zeros((1, *SHAPE[1:]), np.float32)
    inputs = np.random.default_rng(0).standard_normal((8, *SHAPE[1:])).astype(np.float32)
    data = DataSplits(train=Split(inputs), calib=Split(x), eval=Split(x), num_classes=None)
    ctx = PassContext(data=data, baseline=model, input_shape=SHAPE, seed=0, run_dir=Path("."),
                      recipe_dir=Path("."), progress=Progress())
    fields = ({"structure": "block"} if structure == "block"
              else {"global": global_ranking, "round_to": round_to})
    cfg = PruneConfig.model_validate({"type": "prune", "amount": amount, **fields})
    p = PrunePass(cfg)
    pruned = p.apply(copy.deepcopy(model), ctx)
    return pruned, p


def export(model, path: Path) -> None:
    import torch

    torch.onnx.export(model.eval(), (torch.randn(*SHAPE),), str(path), opset_version=17, dynamo=False)


def latency(paths: list[Path], runs: int) -> list[float]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sessions = [ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for p in paths]
    feed = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    name = sessions[0].get_inputs()[0].name
    for s in sessions:
        for _ in range(3):
            s.run(None, {name: feed})
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(runs):
        for s, t in zip(sessions, times, strict=True):
            start = time.perf_counter()
            s.run(None, {name: feed})
            t.append(time.perf_counter() - start)
    return [statistics.median(t) * 1e3 for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amount", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--global", dest="global_ranking", action="store_true")
    parser.add_argument("--round-to", default="auto",
                        help="comma-separated values, timed side by side (e.g. auto,8,1)")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--structure", choices=("channel", "block"), default="channel")
    args = parser.parse_args()
    import onnxruntime as ort
    import torch
    import torchvision

    from edgec.errors import PassError

    variants = [v if v == "auto" else int(v) for v in args.round_to.split(",")]
    if args.structure == "block":
        variants = ["-"]  # round_to does not apply to blocks
    print(f"amount {args.amount}, global {args.global_ranking}; onnxruntime p50 at batch 1, 1 thread, "
          f"{args.runs} interleaved runs (baseline and every variant of a model in one loop)")
    print(f"{'model':<20} {'round_to':>8} {'params':>16} {'MACs':>15} {'MACs×':>6} {'p50 ms':>14} "
          f"{'speed×':>6} {'out':>10} {'rel diff':>8} {'prune s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            torch.manual_seed(0)
            model = getattr(torchvision.models, name)(weights=None).eval()
            base_path = Path(tmp) / f"{name}.onnx"
            export(model, base_path)
            rows, paths = [], [base_path]
            for round_to in variants:
                start = time.perf_counter()
                try:
                    pruned, p = prune(model, args.amount, args.global_ranking, round_to,
                                      args.structure)
                except PassError as exc:
                    print(f"{name:<20} refused: {exc.message}")
                    continue
                seconds = time.perf_counter() - start
                path = Path(tmp) / f"{name}-{round_to}.onnx"
                export(pruned, path)
                x = torch.randn(*SHAPE)
                with torch.no_grad():
                    want = pruned(x).numpy()
                sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
                rel = float(np.abs(want - got).max() / (np.abs(want).max() + 1e-30))
                rows.append((round_to, p, tuple(want.shape), rel, seconds))
                paths.append(path)
            if not rows:
                continue
            times = latency(paths, args.runs)
            for (round_to, p, shape, rel, seconds), ms in zip(rows, times[1:], strict=True):
                d = p.details
                print(f"{name:<20} {round_to!s:>8} "
                      f"{d['params_before'] / 1e6:>6.2f}M→{d['params_after'] / 1e6:>5.2f}M "
                      f"{d['macs_before'] / 1e6:>6.0f}M→{d['macs_after'] / 1e6:>5.0f}M "
                      f"{d['macs_before'] / d['macs_after']:>6.2f} {times[0]:>6.2f}→{ms:>5.2f} "
                      f"{times[0] / ms:>6.2f} {shape!s:>10} {rel:>8.1e} {seconds:>7.1f}")
            traced = [n for n in p.notes if "cannot trace" in n]
            if traced:
                print(f"{'':<20} note: {traced[0]}")


if __name__ == "__main__":
    main()
