"""scikit-learn's bundled digits (1,797 8×8 images) as numpy arrays, read without importing sklearn.

Importing ``sklearn.datasets`` pulls in scipy.stats and took 0.9 s here, more than a whole
quickstart run once torch is loaded, and every sweep worker paid it. The images are a small CSV
file inside the sklearn package (the one ``load_digits`` parses the same way), so it is read
directly; if that file is not where this sklearn keeps it, ``load_digits`` is the fallback.
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
