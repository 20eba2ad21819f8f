"""scikit-learn's bundled digits (1,797 8×8 images) as numpy arrays, read without importing sklearn.

Importing ``sklearn.datasets`` pulls in scipy.stats and took 0.9 s here, more than a whole
quickstart run once torch is loaded, and every sweep worker paid it. The images are a small CSV
file inside the sklearn package (the one ``load_digits`` parses the same way), so it is read
directly; if that file is not where this sklearn keeps it, ``load_digits`` is the fallback.

Resizing (``data.resize``, e.g. 32 for the resnet zoo model) is numpy too: it was torch's
``F.interpolate``, which imported torch (2.4-3.4 s) into runs that otherwise never need it (a zoo
model's kept export, export_cache.py), once in every sweep worker.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images N×8×8 float64 in 0..16, labels N int64); cached, so treat them as read-only."""
    import numpy as np

    csv = _bundled_csv()
    if csv is None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images, labels = digits.images, digits.target
    else:
        table = np.loadtxt(csv, delimiter=",")  # 64 pixel columns, then the label
        images, labels = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    images.flags.writeable = False
    labels = labels.astype(np.int64)
    labels.flags.writeable = False
    return images, labels


def _bundled_csv() -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec("sklearn")  # locates the package without running it
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def resize_bilinear(x: np.ndarray, side: int) -> np.ndarray:
    """N×C×H×W float32 → N×C×side×side, as torch's ``F.interpolate(mode="bilinear",
    align_corners=False)`` computes it in float32, in the same order: equal to it bit for bit
    for 8 → 4, 16, 32 or 64 (within 2e-7 for other sides)."""
    import numpy as np

    rows, cols = _taps(x.shape[-2], side), _taps(x.shape[-1], side)
    x = x.astype(np.float32, copy=False)
    (c0, c1, cw0, cw1), (r0, r1, rw0, rw1) = cols, rows
    across = x[..., c0] * cw0 + x[..., c1] * cw1  # along the width first, as torch does
    return across[..., r0, :] * rw0[:, None] + across[..., r1, :] * rw1[:, None]


def _taps(n_in: int, n_out: int):
    """Each output pixel's two source pixels and their weights (half-pixel centres, clamped)."""
    import numpy as np

    f32 = np.float32
    scale = f32(n_in) / f32(n_out)
    src = np.maximum((np.arange(n_out, dtype=f32) + f32(0.5)) * scale - f32(0.5), f32(0))
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    w_hi = (src - lo).astype(f32)
    return lo, hi, f32(1) - w_hi, w_hi
