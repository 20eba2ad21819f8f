"""Which channel counts below one SIMD block are worth pruning to? (picks prune's rounding below round_to)

ResNet-20 for digits at 32×32 (random weights: latency does not depend on them) with its first
stage, 16 channels wide, narrowed to each width from 16 down to 2; stages 2 and 3 at 16 and 32, as
the prune guide's minimal recipe left them. Each variant is timed in fp32 and static int8 (QDQ,
uint8 activations, per-channel weights: the quantize pass's defaults) side by side with the
unpruned fp32 model, interleaved in one process (onnxruntime CPU, 1 thread, batch 1). A width is
worth pruning to when its speed beats every wider one.

    PYTHONPATH=src python benchmarks/sub_block_widths.py [--runs 300]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from depth_floor import build

WIDTHS = (16, 14, 12, 10, 9, 8, 7, 6, 5, 4, 3, 2)
SHAPE = (1, 1, 32, 32)


def quantize(src: Path, dst: Path) -> None:
    import numpy as np
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, name: str):
            rng = np.random.default_rng(0)
            self.batches = iter([{name: rng.random(SHAPE, dtype=np.float32)} for _ in range(16)])

        def get_next(self):
            return next(self.batches, None)

    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre))
    quantize_static(str(pre), str(dst), Reader(onnx.load(str(pre)).graph.input[0].name),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def main() -> None:
    import numpy as np
    import torch

    from edgec.export import export_onnx
    from edgec.graph_stats import analyze_onnx
    from edgec.latency import make_session, measure_latency_interleaved
    from edgec.recipe import ExportConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()
    torch.manual_seed(0)
    variants = {"full 16/32/64": (16, 32, 64), **{f"{w}/16/32": (w, 16, 32) for w in WIDTHS}}
    sessions, feeds, macs = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, widths) in enumerate(variants.items()):
            fp32, int8 = Path(tmp) / f"v{i}.onnx", Path(tmp) / f"v{i}.int8.onnx"
            export_onnx(build(widths, (3, 3, 3), None), SHAPE, fp32, ExportConfig())
            quantize(fp32, int8)
            for kind, path in (("fp32", fp32), ("int8", int8)):
                key = f"{name} {kind}"
                sessions[key] = make_session(path, 1)
                feeds[key] = {sessions[key].get_inputs()[0].name:
                              np.random.default_rng(0).random(SHAPE, dtype=np.float32)}
                macs[key] = analyze_onnx(fp32, SHAPE).macs
        stats = measure_latency_interleaved(sessions, feeds, args.runs, 50)
    base = stats["full 16/32/64 fp32"]
    print(f"onnxruntime CPU, 1 thread, batch 1, {args.runs} interleaved runs each; speed vs the "
          "unpruned fp32 model at p1 (the speed gate's quantile) and p50")
    print(f"{'variant':<20} {'MMACs':>7} {'p50 ms':>8} {'speed p1':>9} {'speed p50':>10}")
    for name, s in stats.items():
        print(f"{name:<20} {macs[name] / 1e6:>7.2f} {s.p50:>8.3f} {base.p1 / s.p1:>8.2f}× "
              f"{base.p50 / s.p50:>9.2f}×")


if __name__ == "__main__":
    main()
