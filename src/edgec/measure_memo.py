"""A sweep's measurements of its shared baseline, taken once: the ones that do not depend on when.

Every variant of a sweep benchmarks its compressed model side by side with the same baseline. The
latency half of that must be re-measured in each variant (a ratio is only trustworthy when both
sides were timed in the same rounds, latency.py), but the rest of the baseline's measurements
were recomputed identically twelve times: size, gzip size, parameters, MACs, its predictions on
the eval split (accuracy, and the reference for the compressed model's agreement), and its
operator profile. Those were a quarter of a quickstart variant's seconds.

An entry is keyed by what it is a function of: the model file's bytes, the inputs it ran on, the
settings that shape the measurement, and the library versions; so a hit gives exactly what the
variant would have computed (the operator profile, a timing, is the first variant's: it is
informational, and report.json lists it as non-deterministic). Entries are single JSON files
written atomically; two variants computing the same entry at once write the same content.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


class MeasureMemo:
    """Entries under ``root`` (a sweep's ``cache/measured``), each ``<kind>-<key>.json``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def key(self, kind: str, model: Path, arrays: tuple[np.ndarray | None, ...], settings: dict) -> str:
        import onnxruntime

        import edgec

        digest = hashlib.sha256()
        described = {"kind": kind, "settings": settings,
                     "versions": [edgec.__version__, onnxruntime.__version__]}
        digest.update(json.dumps(described, sort_keys=True, default=str).encode())
        digest.update(hashlib.sha256(Path(model).read_bytes()).digest())
        for array in arrays:
            digest.update(b"-" if array is None else
                          f"{array.dtype}{array.shape}".encode() + array.tobytes())
        return f"{kind}-{digest.hexdigest()[:32]}"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):  # absent, or unreadable: measure again
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        from edgec.report import write_text_atomic

        self.root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.root / f"{key}.json", json.dumps(value))
