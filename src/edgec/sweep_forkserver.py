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


def worker_started() -> None:
    """- Ctrl-C works again as in any Python process: a worker inherits the server's "ignore".
    - ``gc.freeze()``: the modules the server imported are never collected here, so the workers
      keep sharing those pages instead of copying them when a collection touches them. Done in
      the worker, before its first collection, as the ``gc`` docs advise doing it before a fork:
      the server can only run code before its imports, not after them."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    gc.freeze()


if _in_fork_server():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(os._exit, 0)
