"""What edgec keeps between runs in the user's cache, for `edgec cache`: how much, and clearing it.

The cache (``$EDGEC_CACHE_DIR``, else ``~/.cache/edgec``; zoo.cache_root) has two sections, each
safe to delete at any time; deleting one only costs the next run the work it saved:

- ``zoo/``: trained zoo models (zoo.py), one file per model and version: retrained on next use.
- ``exports/``: kept exports of zoo models (export_cache.py), one folder per key: a model, export
  setting or library version that changed since never matches again, so they accumulate.

Clearing takes each export's lock first (stage_cache.py), so a run reusing that export right now
finishes its copy before the folder goes; the empty lock files stay, since a run may be waiting on
one and must lock the same file the next run creates. Nothing here imports torch or onnx.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

SECTIONS = {
    "zoo": ("trained zoo models", "retrained on next use"),
    "exports": ("kept exports of zoo models", "re-exported by the next run that needs one"),
}
# A store's temporary folder (``.<key>.xxxx``) younger than this may belong to a run writing it now.
_STALE_SECONDS = 3600


@dataclass
class Section:
    name: str
    path: Path
    entries: int  # complete entries: models, or exports with their meta.json
    bytes: int  # everything under the folder, incomplete leftovers included

    @property
    def what(self) -> str:
        return SECTIONS[self.name][0]

    @property
    def after_clear(self) -> str:
        return SECTIONS[self.name][1]


def survey(root: Path | None = None) -> list[Section]:
    """Each section's folder, entry count and size (a missing folder is an empty section)."""
    from edgec.zoo import cache_root

    root = cache_root(root)
    return [_section(name, root / name) for name in SECTIONS]


def clear(name: str, root: Path | None = None) -> tuple[Section, Section]:
    """Delete section ``name`` ("zoo" or "exports"); returns what it held before and after (what
    could not be removed: another user's files, or a store younger than an hour in progress)."""
    from edgec.zoo import cache_root

    folder = cache_root(root) / name
    before = _section(name, folder)
    if folder.is_dir():
        if name == "exports":
            _clear_exports(folder)
        else:
            for path in folder.iterdir():
                if not _in_progress(path):
                    _remove(path)
    return before, _section(name, folder)


def _section(name: str, folder: Path) -> Section:
    if not folder.is_dir():
        return Section(name, folder, 0, 0)
    if name == "exports":
        entries = sum(1 for p in folder.iterdir() if (p / "meta.json").is_file())
    else:
        entries = sum(1 for p in folder.glob("*.pt") if p.is_file())
    return Section(name, folder, entries, _size(folder))


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):  # removed meanwhile by a run
            if path.is_file():
                total += path.stat().st_size
    return total


def _clear_exports(folder: Path) -> None:
    from edgec.stage_cache import key_lock

    for entry in folder.iterdir():
        if entry.suffix == ".lock" or not entry.is_dir() or _in_progress(entry):
            continue
        if entry.name.startswith("."):  # a killed run's leftover: no run uses it
            _remove(entry)
            continue
        with key_lock(folder, entry.name):
            _remove(entry)


def _in_progress(path: Path) -> bool:
    """A temporary name (``.<name>.xxxx``) that a run may be writing now: written files get their
    final name with one rename; one older than an hour was left by a killed run."""
    try:
        return path.name.startswith(".") and time.time() - path.stat().st_mtime <= _STALE_SECONDS
    except OSError:
        return True  # gone meanwhile


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
