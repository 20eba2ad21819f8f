"""A sweep over image-folder data: the folder is decoded once per sweep, not in every variant.

Writes N random JPEGs (10 classes, 96×96 RGB) and a small CNN into a temporary folder, times
decoding the folder alone (what every variant did before data_cache.py), then runs a 4-variant
`edgec sweep` (quantize samples 32/64/128/256, `--jobs 1`, the real command) and prints each
variant's seconds: the first decodes and stores the arrays, the others read them.

    PYTHONPATH=src python benchmarks/sweep_shared_data.py [--images 2000] [--jobs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NET = """\
import torch.nn as nn


def small_cnn():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(32, 10))
"""
RECIPE = """\
version: 1
model: {source: python, callable: "net.py:small_cnn", input_shape: [1, 3, 32, 32]}
data: {source: imagefolder, path: images, resize: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
passes:
  - {type: quantize, mode: static, samples: 64}
benchmark: {threads: 1, runs: 50}
"""


def write_images(root: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)


def decode_seconds(folder: Path) -> float:
    """Decoding alone, in a fresh process as a variant's worker would (torchvision import included)."""
    script = ("import time, sys; t = time.perf_counter(); from pathlib import Path; "
              "from edgec.recipe import load_recipe; from edgec.data import load_data; "
              "r = load_recipe(Path(sys.argv[1])); "
              "load_data(r.data, tuple(r.model.input_shape), Path(sys.argv[1]).parent); "
              "print(time.perf_counter() - t)")
    done = subprocess.run([sys.executable, "-c", script, str(folder / "r.yaml")], check=True,
                          capture_output=True, text=True, env=_env())
    return float(done.stdout.strip())


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_images(folder / "images", args.images)
        (folder / "net.py").write_text(NET)
        (folder / "r.yaml").write_text(RECIPE)
        decode = decode_seconds(folder)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "edgec", "sweep", str(folder / "r.yaml"), "-o",
                        str(folder / "sweep"), "--jobs", str(args.jobs), "-q",
                        "--grid", "passes.0.samples=32,64,128,256"],
                       check=True, capture_output=True, env=_env())
        wall = time.perf_counter() - t0
        rows = json.loads((folder / "sweep" / "results.json").read_text())["rows"]
        entries = list((folder / "sweep" / "cache" / "data").glob("*.npz"))
    print(f"{args.images} JPEGs (96x96 -> 32x32), {os.cpu_count()} CPUs, --jobs {args.jobs}")
    print(f"loading the folder alone, in a fresh process (torchvision's import included): {decode:.2f} s")
    print(f"sweep: {wall:.1f} s wall; {len(entries)} shared data entr{'y' if len(entries) == 1 else 'ies'}")
    print("| variant | samples | status | seconds |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['passes.0.samples']} | {r['status']} | {r['seconds']} |")


if __name__ == "__main__":
    main()
