"""A run folder that is written under a temporary name and appears only when finished.

A crash or Ctrl-C never leaves a folder that looks complete: until ``finish`` the work lives in
``.<name>.partial-<pid>``; ``finish`` renames it into place (the report inside says whether the run
succeeded). An existing run is replaced only with ``force``, and only at the very end.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edgec.errors import UsageError


def check_target(target: Path, force: bool) -> None:
    """Refuse before any work if the run folder cannot or may not be written."""
    if target.exists() and not target.is_dir():
        raise UsageError(f"Output path '{target}' exists and is a file; choose another -o folder.")
    if target.exists() and not force:
        raise UsageError(
            f"Run folder '{target}' already exists. Choose another with -o, or pass --force to "
            "replace it (the old run is removed only after the new one completes)."
        )
    parent = target.parent if target.parent != Path("") else Path(".")
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"Cannot create run folder '{target}': '{existing}' is not writable.")


class RunFolder:
    def __init__(self, target: Path, force: bool):
        self.target = Path(target)
        self.force = force
        check_target(self.target, force)
        self.path = self.target.parent / f".{self.target.name}.partial-{os.getpid()}"

    def __enter__(self) -> RunFolder:
        if self.path.exists():  # left by a crashed process that had our pid: stale
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.path.exists():
            self.finish()

    def finish(self) -> Path:
        """Move the finished work into place; replaces an old run only when forced."""
        old = None
        if self.target.exists():
            if not self.force:  # appeared while we ran (another process): keep both
                raise UsageError(
                    f"Run folder '{self.target}' was created by someone else during this run; "
                    f"the results are kept in '{self.path}'."
                )
            old = self.target.parent / f".{self.target.name}.old-{os.getpid()}"
            os.replace(self.target, old)
        os.replace(self.path, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target
