"""Whether a file a command will write (``-o``, ``--junit``, edgec init's PATH) can be written,
checked before any work: a command must never compute its result and then lose it to a bad path.
"""

from __future__ import annotations

import os
from pathlib import Path


def output_file_problem(path: Path, option: str, example: str) -> str | None:
    """Why the file ``option`` names cannot be written, or None. ``example`` is a file name to
    suggest when ``path`` is a folder."""
    from edgec.errors import UsageError
    from edgec.rundir import check_creatable

    if path.is_dir():
        return f"{option} '{path}' is a folder; give a file path, e.g. {path / example}."
    if path.exists() and not path.is_file():  # the atomic rename would replace a device
        return (f"{option} '{path}' is not a regular file (a device or a pipe); give the path of "
                "a file to write.")
    if path.exists() and not os.access(path, os.W_OK):
        return f"{option} '{path}' exists and is not writable."
    try:
        check_creatable(path, f"{option} file")
    except UsageError as exc:
        return exc.message
    problem = _write_probe(path)
    return f"Cannot write {option} '{path}': {problem}." if problem else None


def _write_probe(path: Path) -> str | None:
    """Why a file cannot be created where ``path`` will be written, or None. os.access answers
    for permission bits only, and for root always yes, while a read-only mount, /proc or a
    container's policy still refuse the write: create (and remove) a file beside it, in the
    nearest folder that exists, as the atomic write will."""
    import tempfile

    folder = next((p for p in (path.parent, *path.parent.parents) if p.is_dir()), Path("."))
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.probe-", dir=folder)
    except OSError as exc:
        return f"a file cannot be created in '{folder}' ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(probe)
    return None
