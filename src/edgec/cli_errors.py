"""How the command line answers: exit codes, clean messages for errors, JSON errors for --json.

The group (``EdgecGroup``) maps every way a command can end to its exit code and one clear
message: an EdgecError to its own code, Ctrl-C and an aborted prompt to 130, a reader that left
(`| head`) to 141, anything else to 3 as a bug with the way to its traceback. The commands
(cli.py, cli_models.py, cli_workflows.py) only raise.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

import click

from edgec.errors import (
    EXIT_INTERRUPTED,
    EXIT_PIPE,
    EXIT_RUNTIME,
    INTERNAL_HINT,
    EdgecError,
    UsageError,
)

_EXIT_MEANINGS = {
    0: "success",
    1: "the run completed and wrote its report, but a budget was missed",
    2: "invalid recipe, option or input file (nothing was run)",
    3: "runtime failure: the work started and failed (the message says where)",
    130: "interrupted (Ctrl-C, SIGTERM); completed artifacts are kept",
    141: "the output's reader left early (| head)",
}


def exit_codes_help(codes: tuple[int, ...], **meaning: str) -> str:
    """A command's --help epilog: only the exit codes it can give (``meaning``: its own words for
    some, keyed ``c<code>``), so a user never scripts against a code that never comes."""
    lines = [f"  {c:<4}{meaning.get(f'c{c}', _EXIT_MEANINGS[c])}" for c in codes]
    return "\n\b\nExit codes:\n" + "\n".join(lines) + "\n"


EXIT_CODES_HELP = exit_codes_help((0, 1, 2, 3, 130, 141), c0="success, every budget met")
class EdgecGroup(click.Group):
    """Maps EdgecError to its exit code with a clean message; other exceptions are bugs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["edgec.args"] = list(args)  # the raw command line, for _print_json_usage_error
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            _print_json_usage_error(ctx, exc)
            raise
        except (click.exceptions.Exit, click.ClickException):
            raise
        except click.Abort:  # Ctrl-C or end of input at a prompt: nothing was done
            click.echo("interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # `edgec targets | head -1`: the reader has what it wanted
            from edgec.console import stdout_gone

            stdout_gone(also_stderr=True)
            ctx.exit(EXIT_PIPE)
        except EdgecError as exc:
            if _debug(ctx):
                traceback.print_exc()
            _print_json_error(ctx, exc, exc.exit_code)
            click.echo(f"error: {exc}", err=True)
            _say_kept(exc)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            _print_json_error(ctx, exc, EXIT_INTERRUPTED)
            # only a run that keeps its work says so (sensitivity, partition, bench keep nothing)
            kept = getattr(exc, "run_folder", None) or getattr(exc, "kept_note", None)
            click.echo("interrupted; completed artifacts were kept." if kept else "interrupted.",
                       err=True)
            _say_kept(exc)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            _print_json_error(ctx, exc, EXIT_RUNTIME)
            if _debug(ctx):
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc}\n{INTERNAL_HINT}", err=True)
            _say_kept(exc)
            ctx.exit(EXIT_RUNTIME)


def json_option(help_text: str):
    """A command's --json that also turns failures into an errors.error_document on stdout: the
    command calls errors_as_json, and the group prints one for click's own parse errors too."""

    def decorate(f):
        f.json_errors = True
        return click.option("--json", "as_json", is_flag=True, help=help_text)(f)

    return decorate


def errors_as_json(wanted: bool) -> None:
    """A command's --json: from here on, a failure also prints errors.error_document on stdout
    (the group prints it, as it decides the exit code). Turned off once stdout holds the report,
    so stdout never carries two documents."""
    ctx = click.get_current_context()
    if ctx.obj is not None:
        ctx.obj["json_errors"] = wanted


def _print_json_error(ctx: click.Context, exc: BaseException, exit_code: int) -> None:
    if (ctx.obj or {}).get("json_errors"):
        from edgec.errors import error_document

        click.echo(json.dumps(error_document(exc, exit_code), indent=2))


def _print_json_usage_error(group_ctx: click.Context, exc: click.UsageError) -> None:
    """A parse error (unknown option, missing argument, a file click found missing) comes before
    the command runs and reads --json; a command line that asked for JSON still gets it."""
    args = group_ctx.meta.get("edgec.args") or []
    # from the command line: click's parser leaves exc.ctx unset for some errors (a missing
    # value); the command is the first word that is not a group option (edgec --debug check …)
    name = next((a for a in args if not a.startswith("-")), "")
    cmd = group_ctx.command.get_command(group_ctx, name)
    if cmd is None or not getattr(cmd.callback, "json_errors", False) or "--json" not in args[1:]:
        return
    from edgec.errors import error_document

    error = UsageError(f"edgec {cmd.name}: {exc.format_message()}",
                       hint=f"See `edgec {cmd.name} --help`.")
    click.echo(json.dumps(error_document(error, exc.exit_code), indent=2))


def _say_kept(exc: BaseException) -> None:
    note = getattr(exc, "kept_note", None)  # a command's own word on what was kept (sweep)
    if note:
        click.echo(note, err=True)
        return
    folder = getattr(exc, "run_folder", None)
    if folder is None:
        return
    # a disk too full for the report itself leaves none to point at
    where = " (report.json says where it stopped)" if (Path(folder) / "report.json").is_file() else ""
    if not getattr(exc, "resumable", True):
        click.echo(f"The unfinished run is in '{folder}'{where}. Change the recipe, then re-run "
                   "with --force to start over.", err=True)
    else:
        click.echo(f"The unfinished run is in '{folder}'{where}; re-run the same command with "
                   "--resume to continue it.", err=True)


def _debug(ctx: click.Context) -> bool:
    return bool((ctx.obj or {}).get("debug")) or os.environ.get("EDGEC_DEBUG") == "1"
