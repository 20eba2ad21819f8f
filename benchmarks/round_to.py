"""Does onnxruntime run odd channel counts slower per MAC than multiples of 8? (picks prune's round_to)

Builds small conv stacks whose every layer has ``c`` channels — 3×3 convs at 16×16 (CIFAR-ResNet
stage), 1×1 convs at 28×28, and a MobileNet-style 1×1 → depthwise 3×3 → 1×1 block — for channel
counts around 32 and 64, exports each to ONNX and times all of them round-robin in one process
(1 thread, batch 1), so drift hits every row alike. A row's cost is p50 latency per MAC: if a
multiple of 8 is cheaper per MAC than its odd neighbours, pruning to odd counts wastes part of the
MACs it removes, and round_to=8 is the better default.

    PYTHONPATH=src python benchmarks/round_to.py [--runs 60]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

CHANNELS = (16, 17, 24, 25, 29, 31, 32, 33, 40, 48, 56, 57, 60, 61, 63, 64, 72, 80, 96, 112, 128)


def build(kind: str, c: int):
    import torch.nn as nn

    if kind == "conv3x3@16":
        layers = [nn.Conv2d(c, c, 3, padding=1) for _ in range(4)]
        return nn.Sequential(*[m for conv in layers for m in (conv, nn.ReLU())]), (1, c, 16, 16)
    if kind == "conv1x1@28":
        layers = [nn.Conv2d(c, c, 1) for _ in range(4)]
        return nn.Sequential(*[m for conv in layers for m in (conv, nn.ReLU())]), (1, c, 28, 28)
    # MobileNet block: expand 1x1, depthwise 3x3, project 1x1 (expanded width = c * 4)
    e = c * 4
    return nn.Sequential(
        nn.Conv2d(16, e, 1), nn.ReLU(), nn.Conv2d(e, e, 3, padding=1, groups=e), nn.ReLU(),
        nn.Conv2d(e, 16, 1),
    ), (1, 16, 28, 28)


def export(model, shape, path: Path) -> int:
    import torch
    import torch_pruning as tp

    model.eval()
    x = torch.randn(*shape)
    torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=False)
    macs, _ = tp.utils.count_ops_and_params(model, x)
    return int(macs)


def time_round_robin(paths: dict, shapes: dict, runs: int) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sessions, feeds = {}, {}
    rng = np.random.default_rng(0)
    for key, path in paths.items():
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feeds[key] = {sess.get_inputs()[0].name: rng.standard_normal(shapes[key]).astype(np.float32)}
        for _ in range(5):  # warm-up: first runs allocate arenas and pick kernels
            sess.run(None, feeds[key])
        sessions[key] = sess
    times = {key: [] for key in paths}
    for _ in range(runs):
        for key, sess in sessions.items():
            start = time.perf_counter()
            sess.run(None, feeds[key])
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(t) * 1e3 for key, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("conv3x3@16", "conv1x1@28", "mobilenet-block@28"):
            paths, shapes, macs = {}, {}, {}
            for c in CHANNELS:
                model, shape = build(kind, c)
                paths[c], shapes[c] = Path(tmp) / f"{kind}-{c}.onnx", shape
                macs[c] = export(model, shape, paths[c])
            p50 = time_round_robin(paths, shapes, args.runs)
            ref = p50[64] / macs[64]
            print(f"\n{kind}  (cost = p50 per MAC, relative to c=64)")
            print(f"{'c':>4} {'mult8':>5} {'MACs':>11} {'p50 ms':>8} {'cost':>6}")
            for c in CHANNELS:
                print(f"{c:>4} {'yes' if c % 8 == 0 else '':>5} {macs[c]:>11,} {p50[c]:>8.3f} "
                      f"{p50[c] / macs[c] / ref:>6.2f}")


if __name__ == "__main__":
    main()
