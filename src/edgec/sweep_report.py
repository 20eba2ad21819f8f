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


def load_plotting() -> None:
    """Import matplotlib (0.5-0.9 s here) once, before the plot needs it."""
    import matplotlib

    matplotlib.use("Agg")  # no display on CI runners
    import matplotlib.pyplot


def warm_plotting() -> None:
    """Import matplotlib and draw a throwaway figure: the first drawing in a process loads fonts
    and the renderer, 0.3 s more than any later one. The sweep runs this while its worker
    processes start, so the plot at the end costs only its own drawing."""
    load_plotting()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.scatter([0, 1], [0, 1])
    ax.annotate("v", (0, 0), fontsize=7)
    ax.set_xlabel("x")
    fig.suptitle("t", fontsize=9)
    fig.savefig(io.BytesIO(), format="png", dpi=30)
    plt.close(fig)


def plot_png(result: SweepResult) -> bytes | None:
    """Scatter of the first axis against each other axis; the front joined and highlighted."""
    from edgec.pareto import AXES

    ok = [i for i, r in enumerate(result.rows) if r["status"] == "ok"]
    axes = result.front_axes
    if not ok or len(axes) < 2:
        return None
    load_plotting()
    import matplotlib.pyplot as plt

    x_axis, others = axes[0], axes[1:]
    fig, axs = plt.subplots(1, len(others), figsize=(5.5 * len(others), 4.2), squeeze=False)
    for ax, y_axis in zip(axs[0], others, strict=True):
        pts = [(result.rows[i][x_axis], result.rows[i][y_axis], i) for i in ok
               if result.rows[i][x_axis] is not None and result.rows[i][y_axis] is not None]
        # one scatter call per style, not per point: 24 calls took 0.13 s of a 0.36-s plot
        for on_front, passed in ((False, True), (False, False), (True, True), (True, False)):
            group = [(x, y) for x, y, i in pts
                     if (i in result.front) == on_front and result.rows[i]["passed"] == passed]
            if group:
                ax.scatter(*zip(*group, strict=True), s=60 if on_front else 30,
                           c="tab:red" if on_front else "tab:gray", marker="o" if passed else "x",
                           zorder=3)
        for x, y, i in pts:
            if not _labelled(result, i, len(ok)):
                continue
            ax.annotate(result.rows[i]["variant"] + (" ★" if result.rows[i]["best"] else ""),
                        (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        front = sorted((x, y) for x, y, i in pts if i in result.front)
        if len(front) > 1:
            ax.plot(*zip(*front, strict=True), color="tab:red", lw=1, alpha=0.6)
        ax.set_xlabel(AXES[x_axis][1])
        ax.set_ylabel(AXES[y_axis][1])
        ax.grid(alpha=0.3)
    fig.suptitle("edgec sweep: Pareto front over " + ", ".join(axes) +
                 "\nred = on the front; x = misses a budget; ★ = best"
                 + ("; labels: the front only" if len(ok) > LABEL_ALL_UP_TO else ""), fontsize=9)
    # fixed margins sized for the axis labels: tight_layout drew the figure once more (0.2 s)
    width = fig.get_figwidth()  # inches: ~0.8 in for y tick labels and label, 0.25 in to the right
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.25 / width, bottom=0.13, top=0.86, wspace=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


# Beyond this many points the plot names only the front's: 100 labels hid the points they name.
LABEL_ALL_UP_TO = 30


def _labelled(result: SweepResult, i: int, points: int) -> bool:
    return points <= LABEL_ALL_UP_TO or i in result.front or bool(result.rows[i]["best"])


def to_html(result: SweepResult, png: bytes | None) -> str:
    columns = [c for c in _columns(result.rows) if c not in ("run_dir",)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(result.rows):
        cls = " ".join(c for c, on in (("front", i in result.front), ("best", row["best"]),
                                       ("failed", row["status"] != "ok")) if on)
        cells = "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in columns)
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


def _cell(row: dict, column: str) -> str:
    if column == "passed":  # which budgets a variant missed, not just False
        return "yes" if row["passed"] else "no: " + (row["budgets_missed"] or "not measured")
    if column == "pareto":  # read beside "passed": yes/no, not Python's True/False
        return "yes" if row["pareto"] else "no"
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
    fixed = {"variant", "status", "passed", "size_kb", "size_gzip_kb", "params", "macs",
             "latency_ms", "speedup", "accuracy", "accuracy_drop", "budgets_missed", "seconds",
             "error", "run_dir", "pareto", "best"}
    varied = [c for c in _columns(result.rows) if c not in fixed]
    # the front's own axes first (--axes latency_ms,macs shows those), then the usual three
    metrics = list(dict.fromkeys([*result.axes, "size_kb", "speedup", "accuracy"]))
    shown = ["variant", *varied, *metrics, *(["passed"] if result.budgeted else []), "pareto"]
    tails = [c.rsplit(".", 1)[-1] for c in varied]  # passes.0.per_channel → per_channel, if unique
    short = dict(zip(varied, tails, strict=True)) if len(set(tails)) == len(tails) else {}
    cells = [[_cell(row, c) if row["status"] == "ok" or c in ("variant", *varied) else "failed"
              for c in shown] for row in result.rows]
    return [short.get(c, c) for c in shown], cells


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
