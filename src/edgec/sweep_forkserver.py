"""The sweep's fork server and its workers: settled for a sweep's life.

Imported first in the fork server (``sweep_exec._PRELOAD``), before its seconds of imports:

- Ctrl-C is ignored from the start. Python's fork server ignores it only after its preload, so a
  Ctrl-C while it was still importing printed the server's KeyboardInterrupt traceback under the
  sweep's own "interrupted" message. The sweep stops its workers itself (SIGTERM), and the server
  leaves when the sweep does.
- Exit without teardown: when the sweep ends, the server tore down torch's and onnxruntime's modules
  for 1.4 s here, and a caller that reads the sweep's output (a CI step, a script) waited for it,
  because the server holds the same stdout. Nothing in the server needs a clean exit: it only forks
  workers, and they leave with ``os._exit`` anyway.
- Leave with the sweep's process (Linux): Python's server notices the sweep is gone only once
  its preload is done, and only when every worker has gone too; a sweep stopped during those
  seconds of imports left the server holding the terminal's stdout until then.

Anywhere else (a test or a user importing every module) importing it does nothing.

``worker_started`` runs first in every worker (the pool's initializer).
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys


def _in_fork_server() -> bool:
    """Whether this import is the fork server's preload, i.e. ``forkserver.main`` is importing it.
    Its command line (``python -c``) tells nothing: a user's ``python -c`` sweep script has the
    same, and imports this module too, to hand the pool its initializer; settled like a server,
    that script ignored Ctrl-C and exited 0 whatever the sweep's verdict."""
    server = sys.modules.get("multiprocessing.forkserver")
    frame = sys._getframe(1)
    while server is not None and frame is not None:
        if frame.f_code is server.main.__code__:
            return True
        frame = frame.f_back
    return False


def worker_started(sweep: int | None = None) -> None:
    """- Ctrl-C works again as in any Python process: a worker inherits the server's "ignore".
    - ``gc.freeze()``: the modules the server imported are never collected here, so the workers
      keep sharing those pages instead of copying them when a collection touches them. Done in
      the worker, before its first collection, as the ``gc`` docs advise doing it before a fork:
      the server can only run code before its imports, not after them.
    - The worker leaves when the process of the sweep (pid ``sweep``) does, however that ends."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    gc.freeze()
    if sweep is not None:
        import threading

        threading.Thread(target=_leave_with, args=(sweep,), name="edgec-sweep-watch",
                         daemon=True).start()


def _leave_with(sweep: int, grace: float = 10.0) -> None:
    """Wait for the sweep's process to end, then stop this worker as the sweep stops its workers:
    SIGTERM (a running variant stops as on Ctrl-C and keeps what it did; an idle worker dies),
    then exit if that did not end it. A sweep that could not stop its workers (SIGTERM while a
    worker was starting, which the pool then did not know of, or SIGKILL) left them waiting for
    work forever, and the fork server and resource tracker, which leave after the last worker."""
    import select
    import time

    try:
        watch = os.pidfd_open(sweep)  # readable once the process has ended (Linux 5.3+)
    except ProcessLookupError:
        watch = None  # already gone
    except (AttributeError, OSError):  # no pidfd here: look once a second
        while _alive(sweep):
            time.sleep(1.0)
        watch = None
    if watch is not None:
        select.select([watch], [], [])
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True  # also when PermissionError: it exists


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent (the sweep that started the server) ends;
    the server's children, the workers, do not inherit the request (they watch the sweep
    themselves). Without it the server leaves only once its preload is done."""
    import contextlib
    import ctypes

    pr_set_pdeathsig = 1
    # CDLL(None): the symbols already loaded, libc's among them (no search for the library)
    with contextlib.suppress(OSError, AttributeError):  # a libc without prctl
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


if _in_fork_server():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(os._exit, 0)
    if sys.platform.startswith("linux"):
        _die_with_parent()
