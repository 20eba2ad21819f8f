"""Static int8 calibrated on teacher-synthesized inputs vs on real digits (same model, same settings).

    PYTHONPATH=src python benchmarks/distill_calibration.py [--synthetic run/distill-synthetic.npz]

Without --synthetic, 256 inputs are synthesized from the model first (DeepInversion). Accuracy is
measured with onnxruntime on the real eval split.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    import numpy as np

    from edgec.data import Split, digits_splits
    from edgec.export import export_onnx
    from edgec.latency import make_session
    from edgec.passes.base import PassContext
    from edgec.passes.distill_datafree import SynthesisConfig, synthesize
    from edgec.passes.quantize import Quantize, QuantizeConfig
    from edgec.progress import Progress
    from edgec.recipe import ExportConfig
    from edgec.zoo import load_zoo_model, zoo_entry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits_cnn", choices=["digits_cnn", "resnet20_digits"])
    ap.add_argument("--synthetic", type=Path, help="npz with x (from a data-free distill run)")
    ap.add_argument("--samples", type=int, default=256)
    args = ap.parse_args()

    entry = zoo_entry(args.model)
    data = digits_splits(entry.resize)
    model = load_zoo_model(args.model)
    if args.synthetic:
        synthetic_x = np.load(args.synthetic)["x"]
    else:
        made = synthesize(model, entry.input_shape, 10, SynthesisConfig(images=args.samples),
                          0, Progress())
        synthetic_x = made.x

    def accuracy(path: Path) -> float:
        session = make_session(path, threads=1)
        name = session.get_inputs()[0].name
        preds = np.concatenate([session.run(None, {name: data.eval.x[i:i + 256]})[0].argmax(1)
                                for i in range(0, len(data.eval), 256)])
        return float((preds == data.eval.y).mean())

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(model, entry.input_shape, fp32, ExportConfig())
        rows.append(("fp32", accuracy(fp32)))
        for label, calib in (("int8, real calibration", data.calib.x),
                             ("int8, synthetic calibration", synthetic_x)):
            splits = data.__class__(data.train, Split(calib.astype(np.float32)), data.eval, 10)
            ctx = PassContext(data=splits, baseline=model, input_shape=entry.input_shape, seed=0,
                              run_dir=Path(tmp), recipe_dir=Path(tmp), progress=Progress())
            dst = Path(tmp) / f"{len(rows)}.onnx"
            Quantize(QuantizeConfig(mode="static", samples=args.samples)).apply(fp32, dst, ctx)
            rows.append((label, accuracy(dst)))
    print(f"\n{args.model}, {args.samples} calibration samples, eval split {len(data.eval)} digits\n")
    print("| model | eval accuracy | drop vs fp32 |")
    print("|---|---:|---:|")
    for label, acc in rows:
        print(f"| {label} | {acc:.2%} | {(rows[0][1] - acc) * 100:+.2f} pt |")


if __name__ == "__main__":
    main()
