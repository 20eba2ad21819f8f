"""Measure onnxruntime static-int8 settings on this host, to choose edgec's quantize defaults.

Two models, both trained briefly on scikit-learn's bundled digits so accuracy means something:
a small CNN on 8×8 inputs (like the quickstart's) and a CIFAR-style ResNet-20 on digits resized to
32×32 (like the benchmark reference). Each is exported to fp32 ONNX, then quantized with
onnxruntime's defaults (what a user does by hand) and with every candidate setting
({QDQ, QOperator} × {U8S8, S8S8} × {reduce_range off/on}, per-channel, with and without
``quant_pre_process``). Latency is timed in the same process interleaved with the fp32 model
(A B B A …, 1 thread, batch 1), so every row carries its own fp32 reference and the speed-up is a
ratio, not an absolute time on a shared machine.

    PYTHONPATH=src python benchmarks/quant_settings.py [--runs 400] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = 0


def digits_splits(size: int):
    """Fixed seeded splits: train (first 256 of it also calibrate) and a held-out eval set."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - 0.5) / 0.5
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(SEED))
    n_eval = 360
    tr, ev = perm[n_eval:], perm[:n_eval]
    return x[tr], y[tr], x[ev], y[ev]


def train(model, x, y, epochs: int, lr: float):
    import torch

    torch.manual_seed(SEED)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * ((len(x) + 63) // 64))
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def export(model, shape, path: Path) -> None:
    import torch

    torch.onnx.export(model, torch.randn(*shape), str(path), input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False)


class Reader:
    """Calibration reader: one sample per call, batch 1 (the exported graph's batch)."""

    def __init__(self, name: str, x: np.ndarray):
        self.name, self.x, self.i = name, x, 0

    def get_next(self):
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {self.name: self.x[self.i - 1:self.i]}

    def rewind(self):
        self.i = 0


def session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def interleaved_p50(ref, cand, x: np.ndarray, runs: int, warmup: int = 50) -> tuple[float, float]:
    """p50 ms of (ref, cand), timed alternately so machine drift hits both equally."""
    feed_r = {ref.get_inputs()[0].name: x}
    feed_c = {cand.get_inputs()[0].name: x}
    for _ in range(warmup):
        ref.run(None, feed_r)
        cand.run(None, feed_c)
    tr, tc = [], []
    clock = time.perf_counter_ns
    for i in range(runs):
        pair = ((ref, feed_r, tr), (cand, feed_c, tc))
        for s, feed, out in (pair if i % 2 == 0 else pair[::-1]):
            t0 = clock()
            s.run(None, feed)
            out.append(clock() - t0)
    return statistics.median(tr) / 1e6, statistics.median(tc) / 1e6


def predict(sess, x: np.ndarray) -> np.ndarray:
    name = sess.get_inputs()[0].name
    return np.array([sess.run(None, {name: x[i:i + 1]})[0].argmax() for i in range(len(x))])


def quantize_variants(fp32: Path, pre: Path, calib: np.ndarray, work: Path, quick: bool):
    """Yield (label, path) for every setting measured."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    def reader():
        return Reader("input", calib)

    out = work / "ort_default_static.onnx"
    quantize_static(str(fp32), str(out), reader())
    yield "ORT default quantize_static (QDQ S8S8, per-tensor)", out
    out = work / "ort_default_dynamic.onnx"
    quantize_dynamic(str(fp32), str(out))
    yield "ORT default quantize_dynamic (ConvInteger)", out

    fmts = {"QDQ": QuantFormat.QDQ, "QOp": QuantFormat.QOperator}
    acts = {"U8S8": QuantType.QUInt8, "S8S8": QuantType.QInt8}
    pres = [("pre", pre)] if quick else [("pre", pre), ("raw", fp32)]
    for pre_label, src in pres:
        for fname, fmt in fmts.items():
            for aname, act in acts.items():
                for rr in (False, True):
                    label = f"{fname} {aname} pc rr={'on' if rr else 'off'} {pre_label}"
                    out = work / (label.replace(" ", "_").replace("=", "") + ".onnx")
                    quantize_static(str(src), str(out), reader(), quant_format=fmt,
                                    per_channel=True, reduce_range=rr, activation_type=act,
                                    weight_type=QuantType.QInt8)
                    yield label, out
    for aname, act in acts.items():  # ORT's docs: per-tensor is fastest; check what it costs
        label = f"QDQ {aname} per-tensor rr=off pre"
        out = work / (label.replace(" ", "_").replace("=", "") + ".onnx")
        quantize_static(str(pre), str(out), reader(), quant_format=QuantFormat.QDQ,
                        per_channel=False, activation_type=act, weight_type=QuantType.QInt8)
        yield label, out

    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    out = work / "fp16.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True), str(out))
    yield "fp16 (float32 I/O)", out


def edgec_default(fp32: Path, calib: np.ndarray, work: Path) -> tuple[str, Path]:
    """The edgec quantize pass with its defaults, as a recipe would run it."""
    from types import SimpleNamespace

    from edgec.passes.base import PassContext
    from edgec.passes.quantize import Quantize, QuantizeConfig
    from edgec.progress import Progress

    data = SimpleNamespace(calib=SimpleNamespace(x=calib, y=None))
    ctx = PassContext(data=data, baseline=None, input_shape=tuple(calib[:1].shape), seed=SEED,
                      run_dir=work, recipe_dir=work, progress=Progress(enabled=False))
    p = Quantize(QuantizeConfig(type="quantize", samples=len(calib)))
    out = work / "edgec_default.onnx"
    p.apply(fp32, out, ctx)
    d = p.details
    return (f"edgec default ({d['format']} {d['activation_type']}/{d['weight_type']} "
            f"rr={d['reduce_range']})", out)


def measure(name: str, model, shape, x_tr, y_tr, x_ev, y_ev, runs: int, quick: bool) -> list[str]:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calib = x_tr[:256].numpy()
    x_eval, y_eval = x_ev.numpy(), y_ev.numpy()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fp32, pre = work / "fp32.onnx", work / "fp32_pre.onnx"
        export(model, shape, fp32)
        quant_pre_process(str(fp32), str(pre))
        ref = session(fp32)
        ref_pred = predict(ref, x_eval)
        ref_acc = float((ref_pred == y_eval).mean())
        fp32_kb = fp32.stat().st_size / 1024
        sample = x_eval[:1]
        rows.append(f"| {name} | fp32 (reference) | {fp32_kb:.1f} | 1.00× | – | – | – | "
                    f"{ref_acc:.4f} | – | – |")
        variants = list(quantize_variants(fp32, pre, calib, work, quick))
        variants.insert(2, edgec_default(fp32, calib, work))
        for label, path in variants:
            cand = session(path)
            p_ref, p_cand = interleaved_p50(ref, cand, sample, runs)
            pred = predict(cand, x_eval)
            acc = float((pred == y_eval).mean())
            agree = float((pred == ref_pred).mean())
            kb = path.stat().st_size / 1024
            rows.append(
                f"| {name} | {label} | {kb:.1f} | {fp32_kb / kb:.2f}× | {p_cand:.4f} | "
                f"{p_ref:.4f} | **{p_ref / p_cand:.2f}×** | {acc:.4f} | "
                f"{100 * (ref_acc - acc):+.2f} | {agree:.4f} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="timed runs per model (≥ 300)")
    parser.add_argument("--quick", action="store_true", help="skip the no-pre-process rows")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # ORT's "consider pre-processing" warning on every call
    import torch

    from edgec.cpu import cpu_flags, cpu_name
    from edgec.zoo_nets import digits_cnn, resnet20

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    print(f"cpu: {cpu_name()} ({platform.machine()}); flags: "
          f"{' '.join(sorted(cpu_flags()))}; onnxruntime threads: 1, batch 1, "
          f"{args.runs} interleaved runs per row\n")
    header = ("| model | setting | size KB | size ratio | p50 ms | fp32 p50 ms | speed-up | "
              "accuracy | drop (pts) | agreement |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    t0 = time.time()
    x_tr, y_tr, x_ev, y_ev = digits_splits(8)
    cnn = train(digits_cnn(), x_tr, y_tr, epochs=15, lr=3e-3)
    print(f"digits CNN trained in {time.time() - t0:.0f}s", file=sys.stderr)
    rows += measure("digits CNN", cnn, (1, 1, 8, 8), x_tr, y_tr, x_ev, y_ev, args.runs, args.quick)
    t0 = time.time()
    x_tr, y_tr, x_ev, y_ev = digits_splits(32)
    resnet = train(resnet20(), x_tr, y_tr, epochs=6, lr=3e-3)
    print(f"ResNet-20 trained in {time.time() - t0:.0f}s", file=sys.stderr)
    rows += measure("ResNet-20", resnet, (1, 1, 32, 32), x_tr, y_tr, x_ev, y_ev, args.runs,
                    args.quick)
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
