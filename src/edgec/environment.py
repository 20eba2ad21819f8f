"""The environment fingerprint recorded in every report: versions, CPU, threads, seed.

Latency numbers mean little without it, and a CI comparison across machines must be able to tell
that the CPUs differ.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

# What two runs of the same recipe and seed on the same machine may differ in (report.json says so).
NONDETERMINISTIC = {
    "latency_ms, ratios.speedup_*": "wall-clock timings: they vary with machine load, frequency "
    "scaling and cache state; compare ratios measured side by side, not absolute times",
    "op_profile": "onnxruntime profiler timings per operator: wall-clock, like latency_ms",
    "seconds, started, passes[].seconds": "when the run happened and how long its steps took",
    "findings on speed, budgets max_latency_ms / min_speedup (and so passed)": "derived from the "
    "timings above; every other metric (sizes, params, MACs, accuracy, agreement, parity) and every "
    "ONNX file is identical for the same recipe, seed and machine",
}


def package_version(package: str) -> str | None:
    """An installed distribution's version, None if it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _torch_version() -> str | None:
    """torch.__version__ (with its build tag, e.g. 2.14.1+cu130, which the package metadata
    lacks) read from torch/version.py: importing torch for it cost 2.5 s."""
    import importlib.util
    import re

    try:
        spec = importlib.util.find_spec("torch")
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
        return re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M).group(1)
    except (AttributeError, OSError, TypeError, ValueError, ImportError):
        return package_version("torch")


def collect_environment(threads: int, seed: int) -> dict:
    """The fingerprint; ``torch_threads`` is filled in by ``record_torch_threads`` at the end of
    a run, since a run that reuses a kept export never imports torch (export_cache.py)."""
    from edgec import __version__
    from edgec.cpu import cpu_flags, cpu_name

    return {
        "edgec": __version__,
        "python": platform.python_version(),
        "torch": _torch_version(),
        "torchvision": package_version("torchvision"),
        "onnx": package_version("onnx"),
        "onnxruntime": package_version("onnxruntime"),
        "torch_pruning": package_version("torch-pruning"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": sorted(cpu_flags()),
        "threads": threads,  # onnxruntime intra-op threads used for latency
        "torch_threads": None,  # used for export and training passes; None: torch not used
        "seed": seed,
    }


def record_torch_threads(environment: dict) -> None:
    import sys

    torch = sys.modules.get("torch")
    environment["torch_threads"] = torch.get_num_threads() if torch is not None else None
