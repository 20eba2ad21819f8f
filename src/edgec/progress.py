"""Progress bars for long steps (training, calibration, timing), quiet where nobody watches.

Bars go to stderr so ``--json`` on stdout stays machine-readable. They are off when stderr is not a
terminal, when ``CI`` is set, or with ``--quiet``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def progress_wanted(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty() and not os.environ.get("CI")


class Progress:
    """Hands out progress bars and status lines. ``enabled=False`` makes both silent."""

    def __init__(self, enabled: bool = False, verbose: bool = True):
        self.enabled = enabled
        self.verbose = verbose  # status lines ("exporting…") even without bars, unless quiet

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
        """Yields ``advance(n=1, **fields)``; fields (e.g. loss=0.3) show beside the bar."""
        if not self.enabled:
            yield lambda n=1, **fields: None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        columns = [
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        ]
        from edgec.console import console

        # on stderr, as the module says: rich's default is stdout, which got a blank line per bar
        # (it is no terminal) and, when its reader had left (`| head`), rich's SystemExit(1)
        # failed the run in the middle of its benchmark
        with RichProgress(*columns, transient=True, console=console(sys.stderr)) as bar:
            task_id = bar.add_task(description, total=total, info="")

            def advance(n: int = 1, **fields) -> None:
                info = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items())
                bar.update(task_id, advance=n, info=info)

            yield advance

    def log(self, message: str) -> None:
        if not self.verbose:
            return
        try:
            print(message, file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr's reader left (`2>&1 | head -1`) or it is closed:
            self.verbose = False  # a status line is no reason to lose the run; stay silent


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
