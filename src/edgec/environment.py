"""The environment fingerprint recorded in every report: versions, CPU, threads, seed.

Latency numbers mean little without it, and a CI comparison across machines must be able to tell
that the CPUs differ.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def collect_environment(threads: int, seed: int) -> dict:
    import torch  # already needed by the run; imported here for its thread count

    from edgec import __version__
    from edgec.cpu import cpu_flags, cpu_name

    return {
        "edgec": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "torch_pruning": _version("torch-pruning"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": sorted(cpu_flags()),
        "threads": threads,  # onnxruntime intra-op threads used for latency
        "torch_threads": torch.get_num_threads(),  # used for training passes
        "seed": seed,
    }
