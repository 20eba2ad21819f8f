"""Holding back what onnxruntime.quantization prints and logs, safely when runs share a process.

Its histogram calibrators (entropy, percentile, distribution) print progress to stdout, which
corrupted `--json` output, and it logs advice ("consider pre-processing") on the root logger for
every call; edgec turns what matters into notes. contextlib.redirect_stdout cannot be used for
this: it swaps the process-wide sys.stdout and puts back the stream it found, so two threads
(edgec.compress from a thread pool) that overlap put them back in the wrong order and left
sys.stdout a StringIO for good, swallowing the program's later prints.

Here the first thread to enter puts one stream in front of sys.stdout that drops only what the
quieted threads write and passes the rest through; the last thread to leave puts the original
back (unless something else has replaced sys.stdout meanwhile: that one is left alone). The root
logger's level is raised while any thread is quiet and restored when the last one leaves.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Which threads are inside quiet_ort_output, and how deeply (it nests); guarded by _lock.
_lock = threading.Lock()
_depth: dict[int, int] = {}
_saved: dict[str, object] = {}  # the stream and the root level to restore at the last exit


class _QuietThreadsStream:
    """Stands in for sys.stdout: writes from quieted threads are dropped, the rest pass through."""

    def __init__(self, target):
        self._target = target

    def write(self, text: str) -> int:
        if threading.get_ident() in _depth:
            return len(text)
        return self._target.write(text)

    def __getattr__(self, name: str):  # flush, fileno, encoding, isatty …: the real stream's
        return getattr(self._target, name)


@contextmanager
def quiet_ort_output() -> Iterator[None]:
    """Drop this thread's stdout and the root logger's records below ERROR for the block."""
    _enter()
    try:
        yield
    finally:
        _leave()


def _enter() -> None:
    me = threading.get_ident()
    with _lock:
        if not _depth:
            root = logging.getLogger()
            _saved.update(stdout=sys.stdout, level=root.level, stand_in=_QuietThreadsStream(sys.stdout))
            root.setLevel(max(root.level, logging.ERROR))
            sys.stdout = _saved["stand_in"]
        _depth[me] = _depth.get(me, 0) + 1


def _leave() -> None:
    me = threading.get_ident()
    with _lock:
        _depth[me] -= 1
        if _depth[me]:
            return
        del _depth[me]
        if _depth:
            return
        if sys.stdout is _saved["stand_in"]:
            sys.stdout = _saved["stdout"]
        root = logging.getLogger()
        if root.level == max(_saved["level"], logging.ERROR):  # not changed by anyone meanwhile
            root.setLevel(_saved["level"])
        _saved.clear()
