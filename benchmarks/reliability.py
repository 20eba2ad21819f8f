"""Measure what the reliability features give: determinism across runs and the work --resume saves.

    PYTHONPATH=src python benchmarks/reliability.py [--epochs 3]

Runs a finetune + static-quantize recipe on the tiny test CNN (digits) twice from scratch and
compares the ONNX files byte for byte; then makes the quantize pass fail once, resumes, and
compares the resumed run's files and metrics with the fresh ones. Prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import shutil
import tempfile
import time
from pathlib import Path

RECIPE = """\
version: 1
model: {{source: python, callable: "tiny_models.py:tiny_cnn", input_shape: [1, 1, 8, 8]}}
data: {{source: digits}}
passes:
  - {{type: finetune, epochs: {epochs}}}
  - {{type: quantize, mode: static, samples: 128}}
benchmark: {{threads: 1, runs: 50, warmup: 5}}
"""


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in sorted(folder.glob("*.onnx"))}


def main() -> None:
    import edgec
    from edgec.errors import EdgecError
    from edgec.passes.quantize import Quantize

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgec-reliability-"))
    shutil.copy(Path(__file__).parents[1] / "tests" / "fixtures" / "tiny_models.py", work)
    recipe = work / "r.yaml"
    recipe.write_text(RECIPE.format(epochs=args.epochs))

    edgec.compress(recipe, output=work / "warmup")  # imports and caches out of the timings
    times, reports = {}, {}
    for name in ("fresh_a", "fresh_b"):
        t0 = time.perf_counter()
        reports[name] = edgec.compress(recipe, output=work / name)
        times[name] = time.perf_counter() - t0

    real_apply = Quantize.apply
    Quantize.apply = lambda self, *a: (_ for _ in ()).throw(RuntimeError("simulated failure"))
    t0 = time.perf_counter()
    with contextlib.suppress(EdgecError):
        edgec.compress(recipe, output=work / "resumed")
    times["failed (at quantize)"] = time.perf_counter() - t0
    Quantize.apply = real_apply
    t0 = time.perf_counter()
    reports["resumed"] = edgec.compress(recipe, output=work / "resumed", resume=True)
    times["resume"] = time.perf_counter() - t0

    base = _digest(work / "fresh_a")
    print("| run | seconds | ONNX files identical to fresh_a | accuracy | size ratio |")
    print("|---|---|---|---|---|")
    for name, seconds in times.items():
        folder = work / ("resumed" if name == "resume" else name)
        same = "-" if not folder.is_dir() else ("yes" if _digest(folder) == base else "NO")
        r = reports.get(name if name != "resume" else "resumed")
        acc = f"{r.compressed.accuracy:.4f}" if r else "-"
        size = f"{r.ratios['size']:.3f}" if r else "-"
        print(f"| {name} | {seconds:.2f} | {same} | {acc} | {size} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
