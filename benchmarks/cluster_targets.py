"""Weight clustering (``type: cluster``) on the zoo references: accuracy, raw and gzip'd size.

For each cluster count: k-means only, and k-means + centroid fine-tuning; each exported as float32
ONNX and also quantized to static int8 afterwards (cluster → quantize). Sizes are the exported
files (raw and gzip level 9, as in report.json), ratios are against the fp32 export; accuracy is
onnxruntime's on the digits eval split (539 samples: one sample = 0.19 point). Latency is not the
point here (clustering keeps every shape and dtype), so only a few runs are timed.

    PYTHONPATH=src python benchmarks/cluster_targets.py [--models digits_cnn,resnet20_digits]
        [--clusters 16,32,256] [--epochs 3]
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path


def _ctx(data, baseline, shape, work: Path):
    from edgec.passes.base import PassContext
    from edgec.progress import Progress

    return PassContext(data=data, baseline=baseline, input_shape=shape, seed=0, run_dir=work,
                       recipe_dir=work, progress=Progress(enabled=False))


def _export(model, shape, path: Path, parity_x) -> Path:
    from edgec.export import check_parity, export_onnx
    from edgec.recipe import ExportConfig

    export_onnx(model, shape, path, ExportConfig())
    check_parity(model, path, parity_x, 1e-3)  # the clustered model exports exactly
    return path


def _int8(src: Path, ctx) -> Path:
    from edgec.passes.quantize import Quantize, QuantizeConfig

    dst = src.with_name(src.stem + "-int8.onnx")
    Quantize(QuantizeConfig(type="quantize", mode="static")).apply(src, dst, ctx)
    return dst


def _max_distinct(path: Path) -> int:
    """Most distinct values in one float weight tensor (conv/gemm weights, ndim >= 2)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    arrays = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer]
    return max(np.unique(a).size for a in arrays if a.ndim >= 2 and a.dtype == np.float32)


def model_table(zoo_name: str, clusters: list[int], epochs: int, work: Path) -> list[str]:
    from edgec.benchmark import BenchmarkConfig, benchmark_models
    from edgec.data import digits_splits
    from edgec.passes.cluster import ClusterConfig, ClusterPass
    from edgec.zoo import load_zoo_model, zoo_entry

    entry = zoo_entry(zoo_name)
    shape, data = entry.input_shape, digits_splits(resize=entry.resize)
    base = load_zoo_model(zoo_name)
    ctx = _ctx(data, base, shape, work)
    parity_x = data.eval.x[:32]
    files = {"fp32": _export(base, shape, work / f"{zoo_name}.onnx", parity_x)}
    files["int8"] = _int8(files["fp32"], ctx)
    notes = []
    for k in clusters:
        for ep in sorted({0, epochs}):
            name = f"cluster{k}" + (f"+ft{ep}" if ep else "")
            t0 = time.perf_counter()
            p = ClusterPass(ClusterConfig(clusters=k, finetune={"epochs": ep}))
            model = p.apply(copy.deepcopy(base), ctx)
            files[name] = _export(model, shape, work / f"{zoo_name}-{name}.onnx", parity_x)
            files[f"{name}+int8"] = _int8(files[name], ctx)
            notes.append(f"{name}: {time.perf_counter() - t0:.0f}s, torch eval accuracy "
                         + " → ".join(f"{p.details[f'eval_accuracy_{s}']:.4f}"
                                      for s in ("before", "clustered", "finetuned")
                                      if f"eval_accuracy_{s}" in p.details)
                         + f", codebook estimate {p.details['codebook_bytes'] / 1024:.1f} KB")
            print(f"  {zoo_name} {notes[-1]}", file=sys.stderr, flush=True)
    metrics = benchmark_models(files, data.eval.x, data.eval.y,
                               BenchmarkConfig(threads=1, runs=20, warmup=5), shape, reference="fp32")
    f32 = metrics["fp32"]
    rows = [f"### {zoo_name} ({f32.params:,} params)", "",
            "| variant | accuracy | drop vs fp32 (pts) | raw KB | raw smaller | gzip KB | "
            "gzip smaller | max distinct per float weight |", "|---|---|---|---|---|---|---|---|"]
    for name, m in metrics.items():
        distinct = "int8" if name.endswith("int8") else f"{_max_distinct(Path(m.path)):,}"
        rows.append(
            f"| {name} | {m.accuracy:.4f} | {(f32.accuracy - m.accuracy) * 100:+.2f} | "
            f"{m.size_bytes / 1024:.1f} | {f32.size_bytes / m.size_bytes:.2f}x | "
            f"{m.size_gzip_bytes / 1024:.1f} | {f32.size_gzip_bytes / m.size_gzip_bytes:.2f}x | "
            f"{distinct} |")
    return [*rows, "", *notes, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="digits_cnn", help="comma-separated zoo models")
    parser.add_argument("--clusters", default="16,32,256")
    parser.add_argument("--epochs", type=int, default=3, help="centroid fine-tuning epochs")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    import torch

    from edgec.cpu import cpu_flags, cpu_name, has_vnni

    torch.set_num_threads(1)
    print(f"cpu: {cpu_name()}, VNNI: {has_vnni(cpu_flags())}; fine-tuning {args.epochs} epochs "
          "(adam, lr 3e-4, last epoch kept: the pass defaults)\n")
    clusters = [int(k) for k in args.clusters.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            print("\n".join(model_table(name, clusters, args.epochs, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
