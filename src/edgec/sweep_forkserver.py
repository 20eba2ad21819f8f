"""Imported last in the sweep's fork server (``sweep_exec._PRELOAD``): settles it after the imports.

- ``gc.freeze()``: the modules just imported are never collected, so the workers forked from the
  server keep sharing those pages instead of copying them when a collection touches them (what the
  ``gc`` docs advise before forking).
- Exit without teardown: when the sweep ends, the server tore down torch's and onnxruntime's modules
  for 1.4 s here, and a caller that reads the sweep's output (a CI step, a script) waited for it,
  because the server holds the same stdout. Nothing in the server needs a clean exit: it only forks
  workers, and they leave with ``os._exit`` anyway.

Anywhere else (a test or a user importing every module) this does nothing.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys


def _in_fork_server() -> bool:
    return "multiprocessing.forkserver" in sys.modules and sys.argv[:1] == ["-c"]


if _in_fork_server():
    gc.freeze()
    atexit.register(os._exit, 0)
