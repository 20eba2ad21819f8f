"""`edgec compare run1/ run2/ …`: several runs side by side, from their report.json files.

Each run's compressed model is shown with its ratios against *its own* baseline. Those ratios
were measured side by side in one process, so they compare across runs; absolute latencies were
measured in different processes (maybe on different days) and are shown, but flagged as such.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgec.errors import UsageError
from edgec.report import SCHEMA


def load_run(path: Path) -> dict:
    """report.json of a run folder (or the file itself). Raises UsageError."""
    path = Path(path)
    file = path / "report.json" if path.is_dir() else path
    if not file.is_file() and _unfinished(path):
        return {"schema": SCHEMA, "status": UNFINISHED, "passed": False, "passes": None}
    if not file.is_file():
        raise UsageError(f"'{path}' is not an edgec run folder: {file} does not exist.",
                         hint="Pass the folders written by `edgec compress` (-o).")
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"Cannot read '{file}': {exc.strerror or exc}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        report = None  # not JSON at all: said below like any other non-report
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        _refuse_sweep_meta(file, report)
        raise UsageError(f"'{file}' is not an edgec report (schema {SCHEMA}).",
                         hint="Pass run folders written by `edgec compress` (-o), or their "
                         "report.json.")
    return report


# A run stopped (killed: a sweep's worker that died) before it wrote report.json: a column that
# says so, not an error that loses the comparison of every other run (`sweep/variants/*/`).
UNFINISHED = "unfinished (no report.json)"


def _unfinished(path: Path) -> bool:
    from edgec.rundir import MARKER, PARTIAL_SUFFIX

    return path.name.endswith(PARTIAL_SUFFIX) and (path / MARKER).is_file()


def _refuse_sweep_meta(file: Path, doc) -> None:
    """A sweep's variants/v000.json records a variant's grid values beside its run folder
    (`edgec compare sweep/variants/*` picks up both): say which folder holds the run, and the
    glob that gives the folders alone."""
    from edgec.sweep_folder import variant_run_folder

    run = variant_run_folder(file, doc)
    if run is not None:
        raise UsageError(
            f"'{file}' holds the grid values of sweep variant {doc['name']}, not a report: its "
            f"run is the folder '{run}'.", hint=f"Compare a sweep's variants by their folders: "
            f"edgec compare {file.parent}/*/ (the trailing / leaves out the .json files).")


def _names(paths: list[Path]) -> list[str]:
    """Short unique column names: the folder names, with parents added where they clash."""
    names = [Path(p).resolve().name if Path(p).is_dir() else Path(p).resolve().parent.name for p in paths]
    return [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths, strict=True)]


@dataclass
class Comparison:
    """One row per metric, one column per run: as people read it (``rows``: "93,962", "3.58x",
    "99.81%") and as numbers for the .csv/.json files (``values``: 93962, 3.58, 99.81; None for
    n/a), each number in the unit its row's name says."""

    header: list[str]  # "metric", then one name per run
    rows: list[list[str]]
    values: list[list[Any]]


Cell = tuple[str, Any]  # (text, value)


def _num(value, fmt: str, suffix: str = "") -> Cell:
    return ("n/a", None) if value is None else (format(value, fmt) + suffix, value)


def _percent(share: float | None, fmt: str, suffix: str = "") -> Cell:
    """A share (0.9981) in percent or points: 99.81, without the float noise of * 100."""
    return _num(None if share is None else round(share * 100, 10), fmt, suffix)


def _text(text: str) -> Cell:
    return text, text


def _row_values(r: dict) -> dict[str, Cell]:
    c, ratios = r.get("compressed") or {}, r.get("ratios") or {}
    lat = (c.get("latency_ms") or {}).get("p50")
    verdict = "" if r["status"] != "ok" else (", passed" if r["passed"] else ", budget missed")
    return {
        "status": _text(r["status"] + verdict),
        "passes": _text("n/a" if r.get("passes") is None and r["status"] == UNFINISHED else
                        " → ".join(p.get("label") or p["type"] for p in r.get("passes", [])) or "none"),
        "size (KiB)": _num(c.get("size_bytes") and c["size_bytes"] / 1024, ",.1f"),
        "gzip size (KiB)": _num(c.get("size_gzip_bytes") and c["size_gzip_bytes"] / 1024, ",.1f"),
        "params": _num(c.get("params"), ","),
        "MACs (batch 1)": _num(c.get("macs"), ","),
        "size reduction": _num(ratios.get("size"), ".2f", "x"),
        GATED_SPEEDUP: _gated_speedup(ratios),
        "speedup p50 (informative, not gated)": _num(ratios.get("speedup_p50"), ".2f", "x"),
        "latency p50 (ms, own process)": _num(lat, ".3f"),
        "accuracy": _percent(c.get("accuracy"), ".2f", "%"),
        "accuracy drop (points)": _percent(ratios.get("accuracy_drop"), ".2f"),
        "budgets met": _text(_budgets_met(r.get("budgets") or [], r["status"])),
    }


# The speed gates (min_speedup, max_latency_growth) decide on the p1 speed-up (latency_gate), not
# the p50 one: a column comparing runs by speed shows the number that passes or fails them.
GATED_SPEEDUP = "speedup p1, gated (vs own baseline)"
_OLDER = {"speedup_paired": "paired median", "speedup_p50": "p50"}


def _gated_speedup(ratios: dict) -> Cell:
    """ratios.speedup_p1; a report written before it has another statistic, which the regression
    gate falls back to as well (benchmark.SPEEDUP_KEYS): shown, but named (in the files too: a
    bare number there would pass for a p1)."""
    from edgec.benchmark import SPEEDUP_KEYS

    key = next((k for k in SPEEDUP_KEYS if ratios.get(k)), None)
    if key is None:
        return "n/a", None
    if key == "speedup_p1":
        return _num(ratios[key], ".2f", "x")
    return _text(f"{ratios[key]:.2f}x ({_OLDER[key]}: report has no p1)")


def _budgets_met(budgets: list[dict], status: str = "ok") -> str:
    """'met/checked', skipped gates (a regression budget without --against) apart: a gate that
    was never checked is not a met one. A run that stopped checked none, whatever it set."""
    if status != "ok":
        return "not checked: the run " + {"interrupted": "was interrupted",
                                          UNFINISHED: "is unfinished"}.get(status, status)
    if not budgets:
        return "none set"
    skipped = sum(1 for b in budgets if b.get("verdict") == "skipped")
    checked = [b for b in budgets if b.get("verdict") != "skipped"]
    met = f"{sum(bool(b.get('passed')) for b in checked)}/{len(checked)}" if checked else "none checked"
    return met + (f", {skipped} skipped" if skipped else "")


def compare_table(paths: list[Path]) -> Comparison:
    """One row per metric, one column per run."""
    if len(paths) < 1:
        raise UsageError("Give at least one run folder, e.g. edgec compare runs/a runs/b.")
    _refuse_duplicates(paths)
    cells = [_row_values(load_run(p)) for p in paths]
    metrics = list(cells[0])
    return Comparison(["metric", *_names(paths)],
                      [[m, *(c[m][0] for c in cells)] for m in metrics],
                      [[m, *(c[m][1] for c in cells)] for m in metrics])


def _refuse_duplicates(paths: list[Path]) -> None:
    """A run given twice is one column: --json keyed its rows by run and silently kept one."""
    seen: dict[Path, Path] = {}
    for p in paths:
        report = (Path(p) / "report.json" if Path(p).is_dir() else Path(p)).resolve()
        if report in seen:
            what = (f"'{p}' is given twice" if str(seen[report]) == str(p) else
                    f"'{seen[report]}' and '{p}' are the same run ({report})")
            raise UsageError(f"{what}: it would be one column.", hint="Give each run once.")
        seen[report] = Path(p)


def render(table: Comparison, fmt: str) -> str:
    """The .md table as printed; .csv and .json with numbers (None/empty for n/a)."""
    header = table.header
    if fmt == "json":
        return json.dumps({"runs": header[1:], "rows": {r[0]: dict(zip(header[1:], r[1:], strict=True))
                                                        for r in table.values}}, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header, *table.values])
        return buf.getvalue()
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in table.rows]
    return "\n".join(lines) + "\n\n" + NOTE + "\n"


NOTE = ("Ratios are each run's compressed model against its own baseline, measured side by side in "
        "one process: compare those. Absolute latencies come from different processes. The speed "
        "gates (min_speedup, max_latency_growth) decide on the p1 speed-up; p50 is shown for "
        "information.")


def write_comparison(table: Comparison, output: Path) -> None:
    """Write the table to ``output``, creating its folders as -o does for every edgec command."""
    from edgec.report import write_text_atomic
    from edgec.rundir import check_creatable

    output = Path(output)
    suffix = output.suffix.lower().lstrip(".")
    fmt = {"md": "md", "markdown": "md", "csv": "csv", "json": "json"}.get(suffix)
    if fmt is None:
        raise UsageError(f"--output '{output}': use a .md, .csv or .json file name.")
    if output.is_dir():
        raise UsageError(f"--output '{output}' is a folder; give a file path, e.g. "
                         f"{output / 'compare.md'}.")
    check_creatable(output, "--output file")  # a parent that is a file, or not writable
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(output, render(table, fmt))
    except OSError as exc:
        raise UsageError(f"Cannot write --output '{output}': {exc.strerror or exc}.",
                         hint="Choose a file in a folder you can write to.") from None


def print_comparison(table: Comparison, file=None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from edgec.console import console as make_console

    shown = Table(title="edgec compare", title_justify="left")
    for i, col in enumerate(table.header):  # run folder names and pass labels are text, not markup
        shown.add_column(escape(col), justify="left" if i == 0 else "right", overflow="fold")
    for r in table.rows:
        shown.add_row(*map(escape, r))
    console = make_console(file)
    console.print(shown)
    console.print(f"[dim]{NOTE}[/]")
