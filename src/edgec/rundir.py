"""A run folder that is written under a temporary name and appears only when finished.

A crash, Ctrl-C or SIGTERM never leaves a folder that looks complete: until ``finish`` the work
lives in ``<name>.partial`` next to the target; ``finish`` renames it into place. A failed or
interrupted run stays in ``<name>.partial`` with its completed artifacts and a report.json whose
status says where it stopped; ``--resume`` continues it, ``--force`` discards it. Commands that
cannot resume (sensitivity, partition) pass ``keep_failed=False``: their failure leaves no folder.
An existing run is replaced only with ``force``, and only at the very end. A lock file inside the
partial folder keeps two processes from writing the same run.

``--force`` removes a whole folder, so it only ever removes one that edgec made: every run folder
carries a ``.edgec-run`` marker (older runs are recognised by their report.json,
sensitivity.json or partition.json). A typo like ``-o data --force`` must not delete a user's data set.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from edgec.errors import EdgecError, UsageError, option

PARTIAL_SUFFIX = ".partial"
MARKER = ".edgec-run"


def partial_path(target: Path) -> Path:
    """Where the unfinished work of run folder ``target`` lives."""
    target = Path(target)
    return target.with_name(target.name + PARTIAL_SUFFIX)


def check_target(target: Path, force: bool, resume: bool = False, resumable: bool = True) -> None:
    """Refuse before any work if the run folder cannot or may not be written. ``resumable``:
    whether the command has a --resume to offer for an unfinished run."""
    if not Path(target).resolve().name:
        raise UsageError(f"'{target}' is the root folder; pass {option('output')} a folder for "
                         f"this run, e.g. {option('output', 'runs/exp')}.")
    target = Path(target)
    check_not_unfinished(target, resumable)
    if target.exists() and not target.is_dir():
        raise UsageError(f"Output path '{target}' exists and is a file; choose another "
                         f"{option('output')} folder.")
    partial = partial_path(target)
    if partial.is_dir():  # first: while another process writes it, no other advice can help
        check_not_busy(partial)
    if target.exists() and resume and not force and partial.is_dir():
        raise UsageError(
            f"Run folder '{target}' is complete, and '{partial}' holds an unfinished run meant to "
            f"replace it. Pass {option('resume')} "
            f"{option('force')} to continue that run (it replaces '{target}' when it finishes), or "
            f"{option('force')} alone to start over.")
    if target.exists() and resume and not force:
        raise UsageError(f"Run folder '{target}' is already complete: there is nothing to resume. "
                         f"Choose another {option('output')} folder, or pass {option('force')} "
                         "to run it again.")
    if target.exists() and not force:
        raise UsageError(
            f"Run folder '{target}' already exists. Choose another with {option('output')}, or "
            f"pass {option('force')} to replace it (the old run is removed only after the new one "
            "completes)."
        )
    if target.exists() and force:
        check_replaceable(target)
    if partial.exists() and not partial.is_dir():
        raise UsageError(f"'{partial}' exists and is a file; edgec needs that name for the "
                         f"unfinished run. Remove it or choose another {option('output')} folder.")
    if partial.exists() and not (force or resume):
        if not resumable:  # left by a process that was killed (a stop the command catches cleans up)
            raise UsageError(f"'{partial}' holds an unfinished run of '{target}' that this command "
                             f"cannot continue. Pass {option('force')} to discard it and start "
                             "over.")
        where = " (its report.json says where it stopped)" if (partial / "report.json").is_file() else ""
        raise UsageError(
            f"An unfinished run of '{target}' is kept in '{partial}'{where}. Pass {option('resume')} "
            f"to continue it, or {option('force')} to discard it and start over."
        )
    check_creatable(target, "run folder")


def check_not_unfinished(target: Path, resumable: bool = True) -> None:
    """Refuse an unfinished run's own folder as the target (`-o exp.partial`, the path an error
    named): it is continued or discarded through its run, never replaced as a run of its own."""
    if not (target.name.endswith(PARTIAL_SUFFIX) and target.is_dir() and is_run_folder(target)):
        return
    run = target.with_name(target.name[: -len(PARTIAL_SUFFIX)])
    resume = f"{option('output', str(run))} {option('resume')}"
    if run.exists():  # a complete run beside it, which the unfinished one is to replace
        resume = f"{resume} {option('force')}"
    resume = f"Pass {resume} to continue it, or " if resumable else "Pass "
    raise UsageError(
        f"'{target}' is where edgec keeps the unfinished run of '{run}', not a run folder of its "
        f"own. {resume}{option('output', str(run))} {option('force')} to start over.")


def check_not_busy(partial: Path) -> None:
    """Refuse an unfinished run that another process holds the lock of, i.e. is writing now."""
    try:
        lock = lock_run(partial, create=False)
    except OSError:  # the lock file cannot even be opened: creating the run will say why
        return
    if lock is not None:
        lock.close()


def lock_run(partial: Path, create: bool):
    """An exclusive lock on <partial>/.lock (an open handle, see exclusive_lock), or None when
    there is no lock file and ``create`` is false."""
    lock_file = partial / ".lock"
    if not create and not lock_file.exists():
        return None
    return exclusive_lock(lock_file, f"Another edgec process is writing '{partial}' right now. "
                          f"Wait for it to finish, or choose another {option('output')} folder.")


def check_replaceable(target: Path) -> None:
    """Refuse to replace a folder that is not an edgec run, or that holds the current folder."""
    here = Path.cwd().resolve()
    resolved = target.resolve()
    if resolved == here or resolved in here.parents:
        raise UsageError(f"{option('output', str(target))} is the folder you are working in (or "
                         f"holds it); {option('force')} would delete it. Choose a folder for the "
                         f"run's results, e.g. {option('output', 'runs/exp')}.")
    if any(target.iterdir()) and not is_run_folder(target):
        raise UsageError(
            f"'{target}' is not an edgec run folder (it has no {MARKER} marker or report.json), so "
            f"{option('force')} will not delete it. Choose another {option('output')} folder; "
            "remove it yourself if it really is meant to go.")


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` was written by an edgec run (so --force may replace it): its marker, or
    what runs from before the marker always hold (an edgec report.json, sensitivity.json, and
    partition.json: `edgec partition` wrote no marker before it became a run folder)."""
    if any((folder / name).is_file() for name in (MARKER, "sensitivity.json", "partition.json")):
        return True
    try:
        doc = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and str(doc.get("schema", "")).startswith("edgec.")


def check_creatable(target: Path, what: str) -> None:
    """Refuse a folder that could not be created: its nearest existing parent is a file or not
    writable (e.g. -o somefile/sub, or a folder of another user)."""
    parent = target.parent if target.parent != Path("") else Path(".")
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise UsageError(f"Cannot create {what} '{target}': '{existing}' is a file, not a folder. "
                         "Choose a path inside a folder, or move that file away.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"Cannot create {what} '{target}': '{existing}' is not writable. "
                         "Choose a path inside a folder you can write to.")


class RunFolder:
    def __init__(self, target: Path, force: bool, resume: bool = False, keep_failed: bool = True):
        """``keep_failed=False``: a failure removes the partial folder (and the parent folders
        made for it), for commands that cannot resume (sensitivity, partition): what they leave
        half done is no result, and an empty folder must not look like one. One that a killed
        process left is offered to --force only: they have no --resume."""
        self.target = Path(target).resolve() if not Path(target).name else Path(target)
        self.force = force
        self.keep_failed = keep_failed
        self._made: list[Path] = []
        check_target(self.target, force, resume, resumable=keep_failed)
        self.path = partial_path(self.target)
        self.resumed = resume and self.path.is_dir()
        self._lock = None

    def __enter__(self) -> RunFolder:
        try:
            if self.path.exists() and not self.resumed:  # --force: start over
                self._take_lock(create=False)
                self._release_lock()
                shutil.rmtree(self.path)
            self._made = [p for p in self.path.parents if not p.exists()]  # innermost first
            self.path.mkdir(parents=True, exist_ok=self.resumed)
            (self.path / MARKER).write_text("written by edgec; --force may replace this folder\n")
            self._take_lock(create=True)
        except OSError as exc:
            raise UsageError(f"Cannot create run folder '{self.path}': "
                             f"{exc.strerror or exc}.") from None
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._release_lock()
        if exc_type is None:
            self.finish()
        elif not self.keep_failed:
            shutil.rmtree(self.path, ignore_errors=True)
            for parent in self._made:  # one that now holds something else stays
                if not parent.is_dir() or any(parent.iterdir()):
                    break
                parent.rmdir()
        # otherwise the partial folder stays: completed artifacts + report with the failing step

    def finish(self) -> Path:
        """Move the finished work into place; replaces an old run only when forced."""
        old = None
        try:
            if self.target.exists():
                if not self.force:  # appeared while we ran (another process): keep both
                    raise UsageError(
                        f"Run folder '{self.target}' was created by someone else during this run; "
                        f"the results are kept in '{self.path}'."
                    )
                old = self.target.parent / f".{self.target.name}.old-{os.getpid()}"
                os.replace(self.target, old)
            (self.path / ".lock").unlink(missing_ok=True)
            os.replace(self.path, self.target)
        except OSError as exc:
            raise EdgecError(f"Cannot move the finished run from '{self.path}' to "
                             f"'{self.target}': {exc.strerror or exc}. The results are in "
                             f"'{self.path}'.") from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target

    def _take_lock(self, create: bool) -> None:
        """An exclusive lock on <partial>/.lock, held while this process writes the run."""
        self._lock = lock_run(self.path, create)

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def exclusive_lock(lock_file: Path, busy: str):
    """An open handle holding an exclusive lock on ``lock_file`` (released when closed), or a
    UsageError saying ``busy`` when another process holds it. None where there is no flock (not
    POSIX): no cross-process guard there, the rest still works."""
    try:
        import fcntl
    except ImportError:
        return None
    handle = open(lock_file, "a")  # noqa: SIM115 (held open as long as the lock)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise UsageError(busy) from None
    return handle
