"""What a run that stopped raises: its own error, or one naming the file the disk refused, and
in either case where the unfinished run is kept and the step it stopped at.

The pipeline writes the failed report first; a full disk may not let it, so the exception itself
carries the folder (``run_folder``: the CLI's "the unfinished run is in …", --json's run_dir) and
the step (``run_step``, for CI files).
"""

from __future__ import annotations

import contextlib
import errno
from pathlib import Path

from edgec.errors import EdgecError, OutputError, PassError, exit_call, option

_NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)


def stopped_error(exc: BaseException, step: str, folder: Path) -> BaseException:
    """The exception to raise for ``exc``, which stopped the run in ``folder`` at ``step``."""
    if isinstance(exc, OSError):  # the run folder could not be written
        return output_error(exc, step, folder, default=folder)
    if _disk_full_in_pass(exc):
        return output_error(exc.__cause__, step, folder)
    with contextlib.suppress(AttributeError):
        exc.run_folder, exc.run_step = folder, step
    return exc


def exited_error(exc: SystemExit, step: str) -> EdgecError:
    """The error for a SystemExit that stopped the run at ``step``: edgec never exits from inside
    a run, so code it ran did (a python model's module, a plugin's model, pass or data). It ended
    `edgec compress` with its own exit code (1: "a budget was missed") and no report or JSON, and a
    whole sweep, its other variants unrun."""
    return EdgecError(
        f"The run stopped at step '{step}': code it ran (a python model, a plugin) called "
        f"{exit_call(exc)}.", hint="That code should raise an exception for what it cannot do: "
        f"sys.exit() ends the process that runs it. To find where, {option('debug')}.")


def _disk_full_in_pass(exc: BaseException) -> bool:
    """A full disk met by a pass (writing its model, or a library's temporary files): the pass
    wrapper made it a PassError, whose advice (check the pass's settings) cannot help."""
    cause = exc.__cause__
    return isinstance(exc, PassError) and isinstance(cause, OSError) and cause.errno in _NO_SPACE


def output_error(exc: OSError, step: str, folder: Path, default: Path | None = None) -> OutputError:
    """``default``: the file to name when the error names none (a failed write() does not)."""
    # A copy that fails for want of space names its source first (shutil sets filename to the
    # source, filename2 to the destination); the file that could not be written is the one to name.
    where = exc.filename2 if exc.errno in _NO_SPACE and exc.filename2 else exc.filename or default
    on = f" on '{where}'" if where else ""
    err = OutputError(
        f"File system error{on} during '{step}': {exc.strerror or exc}. Free some space (or fix "
        f"the folder's permissions) and re-run with {option('resume')}.")
    err.run_folder, err.run_step = folder, step
    return err
