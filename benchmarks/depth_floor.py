"""Where channel pruning stops paying on a small CNN, and what removing residual blocks buys.

ResNet-20 shapes for digits at 32×32 (random weights: latency does not depend on them), narrowed
and/or made shallower by hand, exported and timed side by side with the full model in one process
(onnxruntime CPU, 1 thread, batch 1, interleaved in a fresh random order per round). Shows the two
floors behind `structure: block` in the prune pass: a conv is no cheaper below one SIMD channel
block (16 on AVX-512), and every node costs a fixed overhead, so past a point only fewer nodes help.

    PYTHONPATH=src python benchmarks/depth_floor.py [--runs 1500]

Rows: "x3 16/32/64" = 3 blocks per stage, stage widths 16/32/64; "inner" = the width inside each
block (conv1's output), which channel pruning can cut independently of the residual stream.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

VARIANTS = {  # name: (stage widths, blocks per stage, inner widths or None)
    "x3 16/32/64 (ResNet-20)": ((16, 32, 64), (3, 3, 3), None),
    "x3 16/32/64 inner 8/16/16": ((16, 32, 64), (3, 3, 3), (8, 16, 16)),
    "x3 16/16/32": ((16, 16, 32), (3, 3, 3), None),
    "x3 16/32/32 inner 16/16/16": ((16, 32, 32), (3, 3, 3), (16, 16, 16)),
    "x2 16/32/64": ((16, 32, 64), (2, 2, 2), None),
    "x2 16/16/32": ((16, 16, 32), (2, 2, 2), None),
    "1-2-2 16/32/64": ((16, 32, 64), (1, 2, 2), None),
    "1-2-2 16/32/32 inner 16/16/16": ((16, 32, 32), (1, 2, 2), (16, 16, 16)),
    "x1 16/32/64": ((16, 32, 64), (1, 1, 1), None),
    "x1 16/32/32": ((16, 32, 32), (1, 1, 1), None),
}


def build(widths, blocks, inner):
    import torch.nn as nn
    import torch.nn.functional as F

    from edgec.zoo_nets import BasicBlock

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, widths[0], 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            layers, cin = [], widths[0]
            for s, (w, n) in enumerate(zip(widths, blocks, strict=True)):
                for i in range(n):
                    b = BasicBlock(cin, w, (1 if s == 0 else 2) if i == 0 else 1)
                    if inner:  # narrow the inside of the block, keep the residual stream
                        b.conv1 = nn.Conv2d(cin, inner[s], 3, b.conv1.stride, 1, bias=False)
                        b.bn1 = nn.BatchNorm2d(inner[s])
                        b.conv2 = nn.Conv2d(inner[s], w, 3, 1, 1, bias=False)
                    layers.append(b)
                    cin = w
            self.body = nn.Sequential(*layers)
            self.fc = nn.Linear(cin, 10)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            return self.fc(F.adaptive_avg_pool2d(self.body(x), 1).flatten(1))

    return Net().eval()


def main() -> None:
    import numpy as np
    import torch

    from edgec.export import export_onnx
    from edgec.graph_stats import analyze_onnx
    from edgec.latency import make_session, measure_latency_interleaved
    from edgec.recipe import ExportConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1500)
    args = ap.parse_args()
    torch.manual_seed(0)
    shape = (1, 1, 32, 32)
    sessions, feeds, macs = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, spec) in enumerate(VARIANTS.items()):
            path = Path(tmp) / f"v{i}.onnx"
            export_onnx(build(*spec), shape, path, ExportConfig())
            macs[name] = analyze_onnx(path, shape).macs
            sessions[name] = make_session(path, 1)
            feeds[name] = {sessions[name].get_inputs()[0].name:
                           np.random.default_rng(0).random(shape, dtype=np.float32)}
        stats = measure_latency_interleaved(sessions, feeds, args.runs, 50)
    base = next(iter(stats.values())).p50
    print(f"onnxruntime CPU, 1 thread, batch 1, {args.runs} interleaved runs each")
    print(f"{'variant':<32} {'MMACs':>7} {'p50 ms':>8} {'speed×':>7}")
    for name, s in stats.items():
        print(f"{name:<32} {macs[name] / 1e6:>7.2f} {s.p50:>8.3f} {base / s.p50:>7.2f}")


if __name__ == "__main__":
    main()
