"""Sweep outputs: results.csv / results.json (machines), pareto.png and index.html (people).

index.html is self-contained (the plot is embedded as a data URI), so it can be attached to a CI
job or mailed as one file.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import html
import io
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgec.sweep_results import SweepResult


def write_results(result: SweepResult, final: bool = True) -> None:
    """The tables always; the plot and the HTML page only when ``final`` (drawing them took
    0.5 s a time, longer than a quickstart variant, so the sweep draws them once, at the end).
    results.json says ``complete`` only in the final write, after the page: a sweep stopped while
    drawing must not look finished to a script that waits for it."""
    from edgec.report import write_text_atomic

    folder = result.folder
    columns = _columns(result.rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows([{k: _csv_value(v) for k, v in row.items()} for row in result.rows])
    write_text_atomic(folder / "results.csv", buf.getvalue())
    if final:
        from edgec.sweep_plot import plot_png

        png = plot_png(result)
        if png is not None:
            (folder / "pareto.png").write_bytes(png)
        else:  # an earlier run's plot would contradict these results
            (folder / "pareto.png").unlink(missing_ok=True)
        write_text_atomic(folder / "index.html", to_html(result, png))
    best = result.rows[result.best]["variant"] if result.best is not None else None
    doc = {"schema": "edgec.sweep/1", "axes": result.axes, "unmeasured_axes": result.unmeasured,
           "seconds": result.seconds,
           "variants": len(result.rows), "planned": result.planned or len(result.rows),
           # False: still running, or interrupted (re-run to finish)
           "complete": final and len(result.rows) >= result.planned,
           "reused": result.reused, "failed": len(result.failed),
           "pareto": [result.rows[i]["variant"] for i in result.front], "best": best,
           "rows": result.rows}
    write_text_atomic(folder / "results.json", json.dumps(doc, indent=2, default=str) + "\n")


def _columns(rows: list[dict]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    return columns


def _csv_value(value):
    """Grid values that are lists or mappings as JSON (what --set and --grid take back), not as
    Python's repr ("['Conv']", "{'a': 1}"), which no other tool parses."""
    return json.dumps(value) if isinstance(value, list | dict) else value


def to_html(result: SweepResult, png: bytes | None) -> str:
    columns = [c for c in _columns(result.rows) if c not in ("run_dir",)]
    varied = _varied(result.rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(result.rows):
        cls = " ".join(c for c, on in (("front", i in result.front), ("best", row["best"]),
                                       ("failed", row["status"] != "ok")) if on)
        cells = "".join(f"<td>{html.escape(_cell(row, c, varied))}</td>" for c in columns)
        page = "report.html" if (result.folder / row["run_dir"] / "report.html").is_file() \
            else "report.md"  # the self-contained page when the recipe asks for it
        link = html.escape(f"{row['run_dir']}/{page}")
        body.append(f'<tr class="{cls}">{cells}<td><a href="{link}">report</a></td></tr>')
    best = result.rows[result.best]["variant"] if result.best is not None else "none (no variant "\
        "meets the budgets)"
    front_over = ", ".join(result.front_axes) or "no axis"
    img = (f'<img alt="Pareto plot" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
           if png else "<p>(no plot: fewer than two axes or no successful variant)</p>")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>edgec sweep</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}tr.front{{background:#fde8e8}}
tr.best{{font-weight:bold}}tr.failed{{color:#999}}img{{max-width:100%}}</style></head><body>
<h1>edgec sweep</h1>
<p>{len(result.rows)} variants ({len(result.failed)} failed, {result.reused} reused) in
{result.seconds:.0f} s. Pareto front over {html.escape(front_over)}
(highlighted): {html.escape(", ".join(result.rows[i]["variant"] for i in result.front) or "none")}.
{html.escape(_unmeasured_note(result).strip())}
Best ({html.escape(_best_rule(result, "the first axis"))}): <b>{html.escape(best)}</b>.</p>
{img}
<table><tr>{head}<th></th></tr>
{chr(10).join(body)}
</table></body></html>
"""


def _unmeasured_note(result: SweepResult) -> str:
    if not result.unmeasured:
        return ""
    why = " (the data has no labels)" if "accuracy" in result.unmeasured else ""
    return (f" No variant measured {', '.join(result.unmeasured)}{why}, so the front leaves "
            f"{'it' if len(result.unmeasured) == 1 else 'them'} out.")


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(row: dict, column: str, varied: list[str] | tuple[str, ...] = ()) -> str:
    """A cell as people read it; a grid value (``varied``) as --grid takes it back."""
    if column in varied:
        from edgec.sweep_config import grid_text

        return grid_text(row.get(column))
    if column == "passed":  # which budgets a variant missed, not just False
        return "yes" if row["passed"] else "no: " + (row["budgets_missed"] or "not measured")
    if column in ("pareto", "best"):  # read beside "passed": yes/no, not Python's True/False
        return "yes" if row[column] else "no"
    if column in ("params", "macs") and isinstance(row.get(column), int):
        return f"{row[column]:,}"  # 2,379,008: millions at a glance
    return _fmt(row.get(column))


def _best_rule(result: SweepResult, by: str = "") -> str:
    """How the best was chosen: without budgets it is only the front's first, however poor."""
    by = f", by {by}" if by else ""
    if result.budgeted:
        return f"meets the budgets, on the front of those that do{by}"
    return f"on the front{by}; the recipe sets no budgets to meet"


def finish_sweep(result: SweepResult, as_json: bool, file=None) -> int:
    """Print the results (table or JSON); return the sweep's exit code."""
    import click

    from edgec.errors import EXIT_BUDGET, EXIT_OK, EXIT_RUNTIME

    try:
        if as_json:
            click.echo((result.folder / "results.json").read_text(encoding="utf-8"), nl=False)
        else:
            _print_table(result, file)
    except BrokenPipeError:  # `edgec sweep … | head`: the verdict and the summary still count
        from edgec.console import stdout_gone

        stdout_gone()
    if result.failed:
        names = ", ".join(r["variant"] for r in result.failed)
        click.echo(f"{len(result.failed)} variant(s) failed: {names} (errors in results.csv)",
                   err=True)
        return EXIT_RUNTIME
    has_budgets = any(r["budgets_missed"] for r in result.rows)
    if has_budgets and not any(r["passed"] for r in result.rows):
        click.echo("no variant meets the recipe's budgets", err=True)
        return EXIT_BUDGET
    return EXIT_OK


def _table(result: SweepResult) -> tuple[list[str], list[list[str]]]:
    """The results table as people read it (console and job summary): headers, then cells."""
    varied = _varied(result.rows)
    # the front's own axes first (--axes latency_ms,macs shows those), then the usual three
    metrics = list(dict.fromkeys([*result.axes, "size_kb", "speedup", "accuracy"]))
    shown = ["variant", *varied, *metrics, *(["passed"] if result.budgeted else []), "pareto"]
    tails = [_short_name(c) for c in varied]
    short = dict(zip(varied, tails, strict=True)) if len(set(tails)) == len(tails) else {}
    cells = [[_cell(row, c, varied) if row["status"] == "ok" or c in ("variant", *varied)
              else "failed" for c in shown] for row in result.rows]
    return [short.get(c, c) for c in shown], cells


# a row's own columns; every other one is a grid path
_ROW_COLUMNS = {"variant", "status", "passed", "size_kb", "size_gzip_kb", "params", "macs",
                "latency_ms", "speedup", "accuracy", "accuracy_drop", "budgets_missed", "seconds",
                "error", "run_dir", "pareto", "best"}


def _varied(rows: list[dict]) -> list[str]:
    """The grid paths, as columns."""
    return [c for c in _columns(rows) if c not in _ROW_COLUMNS]


def _short_name(path: str) -> str:
    """passes.0.per_channel → per_channel (when unique); a whole pass, passes.0, keeps its path:
    a column named "0" says nothing."""
    last = path.rsplit(".", 1)[-1]
    return path if last.isdigit() else last


def summary_markdown(result: SweepResult, code: int) -> str:
    """The sweep for a CI job's summary page: the verdict ``code`` stands for, then the table."""
    from edgec.errors import EXIT_OK

    headers, cells = _table(result)
    best = result.rows[result.best]["variant"] if result.best is not None else None
    if result.failed:
        names = ", ".join(r["variant"] for r in result.failed)
        head = f"### ❌ edgec sweep: {len(result.failed)} of {len(result.rows)} variant(s) failed ({names})"
    elif code != EXIT_OK:
        head = "### ❌ edgec sweep: no variant meets the recipe's budgets"
    else:
        head = f"### ✅ edgec sweep: {len(result.rows)} variant(s), best {best or 'none'}"
    lines = [head, "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row, line in zip(result.rows, cells, strict=True):
        line = [c.replace("|", "\\|") for c in line]  # a grid value may hold one
        if row["best"]:
            line[0] = f"**{line[0]}**"
        lines.append("| " + " | ".join(line) + " |")
    front = ", ".join(result.rows[i]["variant"] for i in result.front) or "none"
    lines += ["", f"Pareto front over {', '.join(result.front_axes) or 'no measured axis'}: "
              f"{front}; best ({_best_rule(result)}): {best or 'none'}. Results: "
              f"`{result.folder}/results.csv`, `index.html`."]
    if len(result.rows) < result.planned:
        lines.append(f"Incomplete: {len(result.rows)} of {result.planned} variants finished.")
    return "\n".join(lines) + "\n"


def write_failed_summary(exc: BaseException, summary_md) -> None:
    """The job summary of a sweep that stopped: invalid (nothing ran), failed or interrupted, and
    why. Never raises: the error being reported matters more than its summary, and a --summary-md
    that is itself the error is skipped (the $GITHUB_STEP_SUMMARY append still happens)."""
    import os

    from edgec.ci_outputs import ci_path_problems, write_summary
    from edgec.errors import EXIT_USAGE, EdgecError

    if not (summary_md or os.environ.get("GITHUB_STEP_SUMMARY")):
        return
    if isinstance(exc, KeyboardInterrupt):
        head, text = "⚠️ edgec sweep: interrupted", getattr(exc, "kept_note", None) or ""
    else:
        what = "invalid, nothing ran" if exc.exit_code == EXIT_USAGE else "failed"
        head, text = f"❌ edgec sweep: {what}", exc.message + (f" {exc.hint}" if exc.hint else "")
    summary_md = None if ci_path_problems(None, summary_md) else summary_md
    with contextlib.suppress(EdgecError):
        write_summary(f"### {head}\n\n{text}\n".rstrip() + "\n", summary_md)


def _print_table(result: SweepResult, file=None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from edgec.console import console as make_console

    headers, cells = _table(result)
    table = Table(title=f"edgec sweep ({escape(str(result.folder))})", title_justify="left")
    for i, name in enumerate(headers):  # fold, never cut: a narrow CI log must still show every value
        table.add_column(escape(name), justify="left" if i == 0 else "right", overflow="fold")
    for row, line in zip(result.rows, cells, strict=True):
        style = "bold" if row["best"] else ("dim" if row["status"] != "ok" else None)
        table.add_row(*map(escape, line), style=style)  # a variant "…=[static]" is text, not markup
    console = make_console(file)
    if not console.is_terminal:  # a CI log or a file: no screen to fit, rich would assume 80
        console.width = max(console.width, 200)
    console.print(table)
    best = result.rows[result.best]["variant"] if result.best is not None else "none"
    by = result.front_axes[0] if result.front_axes else "no measured axis"
    console.print(f"best ({_best_rule(result, by)}): {escape(best)}; results in "
                  f"{escape(str(result.folder))}/ "
                  "(results.csv, results.json, index.html)")
    if result.unmeasured:
        console.print(_unmeasured_note(result).strip())
    if len(result.rows) < result.planned:
        console.print(f"incomplete: {len(result.rows)} of {result.planned} variants finished; "
                      "run the same command again to finish the sweep")
