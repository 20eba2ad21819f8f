"""Errors a user can cause, and the exit codes they map to.

Every mistake a user can make (a bad recipe, a missing file, a model that will not export) is an
``EdgecError`` subclass whose message names the thing and the fix. The CLI prints the message and
exits with ``exit_code``; anything else that escapes is a bug and shows a traceback with --debug.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

# Exit codes are a contract with CI jobs: documented in the README and in `edgec --help`.
EXIT_OK = 0
EXIT_BUDGET = 1  # the run completed and wrote its report, but a budget was missed
EXIT_USAGE = 2  # invalid recipe, option or input file: nothing was run
EXIT_RUNTIME = 3  # loading, a pass, export or benchmarking failed while running
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM; whatever was completed is kept
EXIT_PIPE = 141  # stdout's reader left (`| head`) before the output ended: as a SIGPIPE'd tool


# How a message names an option: the command line's flag; the Python API's argument while
# api.compress runs (a notebook has no --force to pass); or, in a sweep's variant, what the sweep
# offers instead (it picks each variant's folder and always replaces it). Names: force, resume,
# output; set (what gave an override) and set_example (right overrides); debug (how to see the
# traceback of a failure: an API caller already has it, as the error's __cause__).
_CLI_SET_EXAMPLE = "--set passes.0.per_channel=false or --set benchmark.runs=500"
_SPELLINGS = {"cli": {"force": "--force", "resume": "--resume", "output": "-o", "set": "--set",
                      "set_example": _CLI_SET_EXAMPLE,
                      "debug": "run as `edgec --debug compress …` for the traceback"},
              "api": {"force": "force=True", "resume": "resume=True", "output": "output=",
                      "set": "overrides item",
                      "set_example": "overrides=['passes.0.per_channel=false', 'benchmark.runs=500']",
                      "debug": "the original exception is this error's __cause__ (its traceback "
                               "is printed above this one)"},
              "sweep": {"force": "`edgec sweep --rerun`",
                        "resume": "the same `edgec sweep` command (it keeps the finished variants)",
                        "output": "the sweep's -o", "set": "--set", "set_example": _CLI_SET_EXAMPLE,
                        "debug": "run the variant alone (`edgec --debug compress <recipe> --set …`) "
                                 "for the traceback"}}
_spelling = contextvars.ContextVar("edgec_option_spelling", default="cli")


def option(name: str, value: str | None = None) -> str:
    """``option('force')`` -> '--force' or 'force=True'; ``option('output', 'runs/x')`` ->
    '-o runs/x' or "output='runs/x'"."""
    mode = _spelling.get()
    spelled = _SPELLINGS[mode][name]
    if value is None:
        return spelled
    return f"{spelled}{value!r}" if mode == "api" else f"{spelled} {value}"


@contextlib.contextmanager
def spelling(mode: str) -> Iterator[None]:
    """Messages raised inside name options as ``mode`` ('api' or 'sweep') offers them. An outer
    'sweep' is kept: a sweep's variant runs through the Python API, but its user typed a sweep."""
    token = _spelling.set(_spelling.get() if _spelling.get() == "sweep" else mode)
    try:
        yield
    finally:
        _spelling.reset(token)


def not_a_file(path) -> str:
    """Why ``path``, which should be a file, is not one: the words for a message naming it.
    Something that exists is never said not to (/dev/null, a socket: "not a regular file")."""
    if path.is_dir():
        return "is a folder"
    return "is not a regular file" if path.exists() else "does not exist"


def not_a_folder(path) -> str:
    """Why ``path``, which should be a folder, is not one: the words for a message naming it."""
    return "is a file, not a folder" if path.exists() else "does not exist"


def exit_call(exc: SystemExit) -> str:
    """How user code tried to end the process, for a message naming that code:
    "sys.exit('no GPU') (exit code 1)". Its SystemExit is a failure of that code, not edgec's
    exit: a sweep's other variants still run, and --json still gets its error document."""
    code = exc.code
    if code is None:
        return "sys.exit() (exit code 0)"
    if isinstance(code, int):
        return f"sys.exit({code}) (exit code {code})"
    return f"sys.exit({code!r}) (exit code 1)"  # Python prints the object and exits 1


class EdgecError(Exception):
    """Base of all user-facing errors."""

    exit_code = EXIT_RUNTIME
    # whether `--resume` can get a failed run further (not when the same recipe fails again)
    resumable = True

    def __init__(self, message: str, *, hint: str | None = None):
        self.message = message.strip()
        self.hint = hint
        # after a list of problems the hint gets its own line, not the tail of the last problem
        joint = "\n" if "\n  - " in self.message else " "
        super().__init__(self.message if not hint else f"{self.message}{joint}{hint}")


class RecipeError(EdgecError):
    """The recipe (or a --set override, or a CLI option) is invalid. Raised before any work."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None):
        self.problems = problems or []
        if self.problems:
            message = message.rstrip(":") + ":\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message, hint=hint)


class UsageError(RecipeError):
    """A command-line argument or input file is wrong (not the recipe itself)."""


class ModelLoadError(EdgecError):
    """The model could not be built or its weights could not be loaded."""


class DataError(EdgecError):
    """The data set could not be loaded or does not fit the model."""


class PassError(EdgecError):
    """A compression pass failed while running."""


class ExportError(EdgecError):
    """torch → ONNX export, the ONNX checker or the parity check failed."""


class BenchmarkError(EdgecError):
    """An ONNX model could not be loaded or run by onnxruntime."""


class OutputError(EdgecError):
    """The run folder could not be written (disk full, permissions) while running."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run stops, keeps what it completed, and exits 130."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (CI cancelling a job, `kill`) takes the same path as Ctrl-C for the block: stop,
    keep what is done, report. Only the main thread can own a signal handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated("terminated by SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class BudgetError(EdgecError):
    """A budget was missed. Carries the report so callers can still read it."""

    exit_code = EXIT_BUDGET

    def __init__(self, message: str, report=None):
        self.report = report
        super().__init__(message)


ERROR_SCHEMA = "edgec.error/1"
INTERNAL_HINT = ("This is a bug in edgec, not in your recipe. Re-run as `edgec --debug <command> …` "
                 "(or with EDGEC_DEBUG=1) for the traceback and report it.")


def error_document(exc: BaseException, exit_code: int) -> dict:
    """What a command run with --json prints on stdout when it fails, so a machine reading stdout
    always gets JSON: this, or the report. A contract like report.json's: keys may be added,
    never renamed or removed, without a new schema version. ``exit_code`` is the one the process
    exits with (the CLI passes it, so the two cannot disagree)."""
    interrupted = isinstance(exc, KeyboardInterrupt)
    internal = not isinstance(exc, (EdgecError, KeyboardInterrupt))
    folder = getattr(exc, "run_folder", None)  # an unfinished run's folder: its report.json
    if isinstance(exc, EdgecError):
        kind, message, hint = type(exc).__name__, exc.message, exc.hint
    elif interrupted:
        kind, message = type(exc).__name__, str(exc) or "interrupted"
        hint = "Completed artifacts were kept; re-run with --resume to continue." if folder else None
    else:
        kind, message, hint = "InternalError", f"{type(exc).__name__}: {exc}", INTERNAL_HINT
    return {
        "schema": ERROR_SCHEMA,
        "status": "interrupted" if interrupted else "error",
        "exit_code": exit_code,
        "error": {"type": kind, "message": message, "hint": hint,
                  "problems": [] if internal else list(getattr(exc, "problems", []))},
        "run_dir": None if folder is None else str(folder),
    }
