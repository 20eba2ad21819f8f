"""Estimated vs measured memory, baseline vs int8, and the quickstart on the microcontroller target.

For each model the recipe runs through edgec itself (export, static int8 quantization, benchmark,
device memory with the `host` target), then this script re-measures both ONNX files with the
onnxruntime memory arena off and on. Torchvision models get random weights and random calibration
inputs (memory does not depend on either). Activation estimates are compared with the measured
peak growth of resident memory during one inference (arena off), where that growth is above the
probe's noise floor.

    PYTHONPATH=src python benchmarks/memory_targets.py [--quick]   # --quick: skip the 224x224 models
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

MODELS = [  # (label, model spec, data spec)
    ("digits_cnn", {"source": "zoo", "name": "digits_cnn", "input_shape": [1, 1, 8, 8]},
     {"source": "digits"}),
    ("resnet20_digits", {"source": "zoo", "name": "resnet20_digits", "input_shape": [1, 1, 32, 32]},
     {"source": "digits", "resize": 32}),
    ("resnet18 224", {"source": "torchvision", "name": "resnet18", "input_shape": [1, 3, 224, 224]},
     "npz"),
    ("mobilenet_v2 224", {"source": "torchvision", "name": "mobilenet_v2",
                          "input_shape": [1, 3, 224, 224]}, "npz"),
]


def run_model(label: str, model: dict, data, workdir: Path) -> dict:
    from edgec.api import compress

    if data == "npz":  # random calibration images: enough for ranges, memory ignores the values
        rng = np.random.default_rng(0)
        np.savez(workdir / "calib.npz", x=rng.standard_normal((24, *model["input_shape"][1:]),
                                                             dtype=np.float32))
        data = {"source": "npz", "path": "calib.npz"}
    recipe = {"version": 1, "model": model, "data": data, "target": "host",
              "passes": [{"type": "quantize", "mode": "static", "samples": 16}],
              "benchmark": {"threads": 1, "runs": 5, "warmup": 1, "max_eval_samples": 8}}
    out = workdir / label.replace(" ", "_")
    cwd = Path.cwd()
    try:  # a dict recipe resolves relative paths against the current directory
        import os

        os.chdir(workdir)
        report = compress(recipe, output=out, force=True)
    finally:
        os.chdir(cwd)
    return report.device["memory"] | {"_paths": {
        "baseline": out / "baseline.onnx", "compressed": out / "model.onnx"}}


def measure_arena(path: Path, shape) -> dict:
    from edgec.memory_probe import measure_memory

    return measure_memory(path, shape, arena=True)


def kib(n: float) -> str:
    return f"{n / 1024:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 224x224 torchvision models")
    args = parser.parse_args()
    from edgec.zoo import zoo_cache_path

    models = MODELS[:2] if args.quick else MODELS
    for label, model, _ in models:  # training a zoo model on a loaded machine can take many minutes
        if model["source"] == "zoo" and not zoo_cache_path(model["name"]).is_file():
            print(f"skipping {label}: not trained yet (edgec trains it on first use; run the "
                  "quickstart / resnet-digits recipe once)", file=sys.stderr)
    models = [m for m in models if m[1]["source"] != "zoo" or zoo_cache_path(m[1]["name"]).is_file()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, model, data in models:
            print(f"running {label} ...", file=sys.stderr)
            memory = run_model(label, model, data, Path(tmp))
            for variant, name in (("fp32", "baseline"), ("int8", "compressed")):
                m = memory[name]
                arena = measure_arena(memory["_paths"][name], tuple(model["input_shape"]))
                rows.append((label, variant, m, arena))
    header = ("| model | variant | file KiB | weights KiB | est. peak act. KiB | measured KiB "
              "(arena off) | est./measured | measured KiB (arena on) | load KiB | peak layer |")
    print(header)
    print("|---" * 10 + "|")
    for label, variant, m, arena in rows:
        est = m["estimate"]["peak_activation_bytes"]
        meas = m["measured"]
        if meas.get("inference_below_noise"):
            measured, ratio = f"< noise ({kib(meas['noise_floor_bytes'])})", "n/a"
        else:
            measured = kib(meas["inference_peak_bytes"])
            ratio = f"{est / meas['inference_peak_bytes']:.2f}"
        on = ("< noise" if arena["inference_below_noise"] else kib(arena["inference_peak_bytes"]))
        print(f"| {label} | {variant} | {m['flash_kb']:,.0f} | {kib(m['estimate']['weight_bytes'])} | "
              f"{kib(est)} | {measured} | {ratio} | {on} | {kib(meas['load_peak_bytes'])} | "
              f"{m['estimate']['peak_node']} |")
    print()
    quickstart_on_mcu()
    return 0


def quickstart_on_mcu() -> None:
    """The quickstart with --target mcu, as shipped and with int8 activations."""
    from edgec.api import compress
    from edgec.errors import EdgecError

    for overrides in ([], ["passes.0.activation_type=int8"]):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                report = compress(ROOT / "configs" / "quickstart.yaml", [*overrides, "target=mcu"],
                                  output=Path(tmp) / "run", force=True)
            except EdgecError as exc:
                print(f"quickstart --target mcu {' '.join(overrides)}: exit {exc.exit_code}: "
                      f"{exc.message.splitlines()[-1].strip()[:160]}")
                continue
            print(f"quickstart --target mcu {' '.join(overrides)}: passed={report.passed}")
            for b in report.budgets:
                print(f"  {b.name} ({b.source}): {b.actual:,.1f} / {b.limit:,.1f} {b.unit} "
                      f"{'PASS' if b.passed else 'FAIL'}")
            print("  " + json.dumps({k: report.device["memory"]["compressed"]["estimate"][k]
                                     for k in ("peak_activation_bytes", "peak_node", "weight_bytes")}))


if __name__ == "__main__":
    sys.exit(main())
