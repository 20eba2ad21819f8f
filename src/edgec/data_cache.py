"""A sweep's shared data: an image folder is decoded, resized and split once per sweep.

Every variant of a sweep loads the same data. For an image folder that was the slow part of a
variant: 2,000 small JPEGs took 0.8-1.2 s to decode and resize here in a process that had
torchvision loaded, 3.3-3.8 s in a fresh one (a sweep worker), in every variant. The first
variant stores the splits it made as one uncompressed ``.npz`` under ``<sweep>/cache/data/``;
the others read it in 0.05 s (listing the folder's files included). Sources that are
already arrays (npz, digits, synthetic) load as fast as the copy would, so they are not shared
(``SHARED_IN_SWEEP`` on the data section says which are).

Key: the data section, the model's input shape, the libraries that decode and resize, and every
file under the section's paths with its size and modification time, so an edited, added or
removed image makes a new entry, which replaces the stale one. A lock per key (stage_cache's)
makes a parallel variant wait for the first instead of decoding too; an entry is written to a
temporary file and renamed into place, and one that cannot be read is a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgec.data import DataSplits
    from edgec.progress import Progress

SPLITS = ("train", "calib", "eval")
# what decodes and resizes the images: a new release may compute other pixels
LIBRARIES = ("edgec", "numpy", "pillow", "torchvision")


def load_shared(root: Path, spec, input_shape: tuple[int, ...], base_dir: Path,
                load: Callable[[], DataSplits], progress: Progress | None = None) -> DataSplits:
    """``load()``'s splits, from ``root`` when a variant stored them, else loaded and stored
    (only for a source worth it: ``SHARED_IN_SWEEP``)."""
    key = data_key(spec, input_shape, base_dir) if getattr(spec, "SHARED_IN_SWEEP", False) else None
    if key is None:  # not shared, or a path that cannot be listed: loading says what is wrong
        return load()
    from edgec.stage_cache import key_lock

    with contextlib.ExitStack() as held:
        try:
            root.mkdir(parents=True, exist_ok=True)
            held.enter_context(key_lock(root, key))
        except OSError:  # a cache that cannot be written costs the reuse, never the run
            return load()
        splits = _read(root / f"{key}.npz")
        if splits is not None:
            if progress is not None:
                progress.log(f"edgec: data read from the sweep's cache ({key[:12]}), not decoded again")
            return splits
        splits = load()
        with contextlib.suppress(OSError):  # a full disk costs later variants the reuse, not this run
            _write(root / f"{key}.npz", splits)
            _drop_stale(root, key)
    return splits


def _drop_stale(root: Path, key: str) -> None:
    """Delete the entries of the same data settings made from files that have changed since: an
    image folder edited between runs of a sweep would otherwise leave a copy (gigabytes, for
    large images) per edit."""
    settings = key.split("-")[0]
    for old in root.glob(f"{settings}-*.npz"):
        if old.name != f"{key}.npz":
            old.unlink(missing_ok=True)


def data_key(spec, input_shape: tuple[int, ...], base_dir: Path) -> str | None:
    """'<settings hash>-<files hash>': the settings (data section, input shape, library versions)
    name the data, the files' sizes and times its state; None if a file cannot be listed."""
    from importlib import metadata

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    files = []
    for _, path, _kind in spec.local_paths():
        top = Path(base_dir) / path
        try:
            files += [(str(f), *_stamp(f)) for f in _walk(top)]
        except OSError:
            return None
    settings = json.dumps({"data": spec.model_dump(mode="json"), "input_shape": list(input_shape),
                           "versions": versions}, sort_keys=True)
    return f"{_digest(settings)}-{_digest(json.dumps(files))}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _walk(top: Path) -> list[Path]:
    if top.is_file():
        return [top]
    if not top.is_dir():
        raise OSError(f"{top} is missing")
    return sorted(Path(d) / f for d, _, names in os.walk(top) for f in names)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _write(path: Path, splits: DataSplits) -> None:
    import numpy as np

    arrays = {}
    for name in SPLITS:
        split = getattr(splits, name)
        if split is not None:
            arrays[f"{name}_x"] = split.x
            if split.y is not None:
                arrays[f"{name}_y"] = split.y
    arrays["num_classes"] = np.asarray(-1 if splits.num_classes is None else splits.num_classes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _read(path: Path) -> DataSplits | None:
    import zipfile

    import numpy as np

    from edgec.data import DataSplits, Split

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    try:
        parts = {name: Split(arrays[f"{name}_x"], arrays.get(f"{name}_y"))
                 if f"{name}_x" in arrays else None for name in SPLITS}
        classes = int(arrays["num_classes"])
        return DataSplits(**parts, num_classes=None if classes < 0 else classes)
    except (KeyError, TypeError, ValueError):
        return None
