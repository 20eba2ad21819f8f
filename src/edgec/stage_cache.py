"""A sweep's shared torch stage: the exported baseline and what the torch passes made, computed once.

Variants of a sweep often share everything up to the ONNX passes (a grid over quantize settings)
or share their pruning and fine-tuning. Without this, every variant exported the same baseline and
re-ran the same minutes of training. The torch stage's output is a function of the baseline
module, the data, the seed, the torch passes, the export settings, torch's thread count (float
sums can differ with it) and the library versions; the key hashes exactly those, so a variant
reuses an entry only when it would have computed the same files.

Scope: one sweep folder (``<sweep>/cache/``), not user-wide: a model's Python code is hashed
through the module's weights and structure, not its source, so an entry must not outlive the
sweep that made it. Concurrency: one lock file per key, held while a process computes the entry;
a parallel variant with the same key waits, then reuses it. Entries are written to a temporary
folder and renamed into place, so a crash never leaves a half entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch.nn as nn

    from edgec.data import DataSplits
    from edgec.recipe import Recipe

FILES = ("baseline.onnx", "exported.onnx")


@dataclass
class SharedStage:
    """One run's view of its entry: ``meta`` when reused; ``save`` after computing it."""

    cache: StageCache | None
    key: str = ""
    meta: dict[str, Any] | None = None

    @property
    def hit(self) -> bool:
        return self.meta is not None

    def restore(self, workdir: Path) -> Path:
        """Copy the entry's files into ``workdir``; returns the compressed export's path."""
        assert self.cache is not None and self.meta is not None
        entry = self.cache.root / self.key
        for name in self.meta["files"]:
            shutil.copyfile(entry / name, workdir / name)
        return workdir / self.meta["exported"]

    def save(self, workdir: Path, exported: Path, report, extra: dict | None = None) -> None:
        """Store what this run computed (files, pass records, export report, ``extra``); no-op
        unshared. A failed write only costs later runs their reuse, not this run its result."""
        if self.cache is None:
            return
        from dataclasses import asdict

        files = [n for n in FILES if (workdir / n).is_file()]
        meta = {"records": [asdict(r) for r in report.passes], "export": report.export,
                "files": files, "exported": exported.name, **(extra or {})}
        with contextlib.suppress(OSError):
            self.cache.store(self.key, workdir, files, meta)


class StageCache:
    def __init__(self, root: Path, describe: str = "the sweep's shared stage"):
        self.root = Path(root)
        self.describe = describe  # where a reusing run says its export came from

    @contextlib.contextmanager
    def claim(self, key: str) -> Iterator[SharedStage]:
        """Hold ``key``'s lock for the block; the yielded stage has ``meta`` if already computed."""
        self.root.mkdir(parents=True, exist_ok=True)
        with key_lock(self.root, key):
            yield SharedStage(self, key, self._read(key))

    def _read(self, key: str) -> dict[str, Any] | None:
        entry = self.root / key
        try:
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        # Checked, not trusted: the user's kept exports live for months, where a disk error or a
        # hand-made copy could damage a file that a run would otherwise fail on (a miss recomputes).
        try:
            intact = meta.get("sha256") == {n: _sha256(entry / n) for n in meta.get("files", ())}
        except OSError:
            return None
        return meta if intact else None

    def store(self, key: str, workdir: Path, files: list[str], meta: dict[str, Any]) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        try:
            for name in files:
                shutil.copyfile(workdir / name, tmp / name)
            meta = {**meta, "sha256": {n: _sha256(tmp / n) for n in files}}
            (tmp / "meta.json").write_text(json.dumps(meta, default=str), encoding="utf-8")
            shutil.rmtree(self.root / key, ignore_errors=True)  # an unreadable older entry
            os.replace(tmp, self.root / key)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def key_lock(root: Path, key: str) -> Iterator[None]:
    """Hold the lock of entry ``key`` under ``root`` for the block (waiting for it): a run holds
    it while it computes, stores or copies the entry, and `edgec cache --clear` while it deletes."""
    with open(Path(root) / f"{key}.lock", "a+") as lock:
        _lock(lock)
        try:
            yield
        finally:
            _unlock(lock)


def _lock(file) -> None:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): parallel variants may compute the entry twice
        return
    fcntl.flock(file.fileno(), fcntl.LOCK_EX)


def _unlock(file) -> None:
    with contextlib.suppress(ImportError):
        import fcntl

        fcntl.flock(file.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def shared_stage(root: Path | None, recipe: Recipe, baseline: nn.Module, data: DataSplits,
                 torch_configs: list) -> Iterator[SharedStage]:
    """This run's entry under ``root`` (None: no sharing), its lock held for the block."""
    if root is None:
        yield SharedStage(None)
        return
    with StageCache(root).claim(stage_key(recipe, baseline, data, torch_configs)) as shared:
        yield shared


def reuse(shared: SharedStage, workdir: Path, report, checkpoints, progress) -> Path:
    """Put a computed entry into this run as if the run had computed it; returns the export."""
    from edgec.resume import readd_record

    assert shared.meta is not None
    exported = shared.restore(workdir)
    for saved in shared.meta["records"]:
        readd_record(report, saved, "reused from the sweep's shared stage (same model, data, seed, "
                     "passes and export settings); seconds are from the variant that ran it")
    report.export = shared.meta["export"]
    checkpoints.save("export", {"export": report.export, "file": exported.name},
                     [workdir / n for n in shared.meta["files"]])
    progress.log(f"edgec: export{' and torch passes' if shared.meta['records'] else ''} reused "
                 f"from {shared.cache.describe if shared.cache else 'a cache'}")
    return exported


def stage_key(recipe: Recipe, baseline: nn.Module, data: DataSplits, torch_configs: list) -> str:
    """sha256 over everything the torch stage's files depend on (see the module doc)."""
    import onnx
    import torch

    import edgec

    digest = hashlib.sha256()
    described = {
        "versions": [edgec.__version__, torch.__version__, onnx.__version__],
        "threads": torch.get_num_threads(), "seed": recipe.seed,
        "model": recipe.model.model_dump(mode="json"), "export": recipe.export.model_dump(mode="json"),
        "data": recipe.data.model_dump(mode="json"),
        "passes": [c.model_dump(mode="json") for c in torch_configs],
        "structure": repr(baseline),
    }
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    for name, tensor in baseline.state_dict().items():
        digest.update(name.encode())
        raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)  # any dtype
        digest.update(raw.numpy().tobytes())
    for split in (data.train, data.calib, data.eval):
        for array in (None, None) if split is None else (split.x, split.y):
            digest.update(b"-" if array is None else array.tobytes())
    return digest.hexdigest()[:32]
