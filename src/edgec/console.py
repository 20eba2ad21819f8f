"""The rich console every table of edgec's is printed with.

A reader that leaves early (`edgec compress … | head -1`) closes the pipe. rich's own answer is
SystemExit(1), and 1 is edgec's "a budget was missed": a compress whose budgets were all met
exited 1, and one that missed them printed nothing to say so. Here the BrokenPipeError goes on
to the command line, which knows what the exit code should be (cli.py); a command that has a
verdict to give calls ``stdout_gone`` and gives it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from functools import cache
from typing import IO, Any


def console(file: IO[str] | None = None, **options: Any):
    """A rich Console on ``file`` (stdout by default), without syntax highlighting: edgec's
    numbers are data, not code to colour."""
    return _console_class()(file=file, highlight=False, **options)


@cache
def _console_class():
    from rich.console import Console  # lazily: `edgec --help` never loads rich

    class EdgecConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True  # nothing more is written through it
            raise BrokenPipeError("the reader of this output has left")

    return EdgecConsole


def stdout_gone(also_stderr: bool = False) -> None:
    """The reader of stdout (``also_stderr``: or of stderr; which one broke is unknown) has left:
    what is still written there goes nowhere instead of raising again, also when Python flushes
    the streams at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr) if also_stderr else (sys.stdout,):
        with contextlib.suppress(OSError, ValueError):  # not a real file (a test's capture)
            os.dup2(devnull, stream.fileno())
