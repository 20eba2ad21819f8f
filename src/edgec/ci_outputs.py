"""Outputs for CI systems: JUnit XML (one test case per budget) and a job-summary Markdown.

JUnit is what every CI shows natively (GitHub via a reporter action, GitLab `artifacts:reports:
junit`, Jenkins): a missed budget appears as a failed test named after the budget, with the limit
and the measured value in its message. An inconclusive noise-aware gate that was allowed to pass is
a *skipped* test, so it stays visible instead of looking like a clean pass.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgec.budgets import BudgetRow
    from edgec.report import Report

# What XML 1.0 allows: tab, newline, carriage return and these ranges. Anything else (a control
# character in a file name, a terminal colour escape in an error message, a lone surrogate from a
# non-UTF-8 path) made the whole JUnit file unreadable to CI, so it is written as a visible escape.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _safe_text(text: str) -> str:
    """``text`` with each character XML 1.0 does not allow written as \\xNN (\\uNNNN)."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else
                        f"\\u{ord(m[0]):04x}", text)


def _message(row: BudgetRow) -> str:
    op = ">=" if row.name.startswith("min_") else "<="
    limit, actual, interval = row.texts()
    text = f"{row.name}: actual {actual}" + (f" (CI {interval})" if interval else "") + \
        f", limit {op} {limit}"
    if row.verdict:
        text += f"; verdict {row.verdict}"
    return text + (f" ({row.note})" if row.note else "")


def junit_xml(report: Report, suite: str = "edgec") -> str:
    """A JUnit XML document: one <testcase> per budget row, plus one for a run that failed."""
    import xml.etree.ElementTree as ET

    cases = []
    for row in report.budgets:
        case = ET.Element("testcase", classname="edgec.budgets", name=row.name, time="0")
        if not row.passed:
            ET.SubElement(case, "failure", message=_message(row), type="BudgetMissed").text = \
                _message(row)
        elif row.verdict in ("inconclusive", "skipped"):
            ET.SubElement(case, "skipped", message=_message(row))
        ET.SubElement(case, "system-out").text = _message(row)
        cases.append(case)
    if report.status != "ok":
        case = ET.Element("testcase", classname="edgec.run", name="run",
                          time=f"{report.seconds or 0:.2f}")
        err = report.error or {}
        ET.SubElement(case, "error", message=f"{report.status} at {err.get('step')}: "
                      f"{err.get('message')}", type=err.get("type") or report.status)
        cases.append(case)
    failures = sum(1 for r in report.budgets if not r.passed)
    skipped = sum(1 for r in report.budgets if r.passed and r.verdict in ("inconclusive", "skipped"))
    errors = int(report.status != "ok")
    root = ET.Element("testsuites", name=suite, tests=str(len(cases)), failures=str(failures),
                      errors=str(errors), skipped=str(skipped))
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)),
                       failures=str(failures), errors=str(errors), skipped=str(skipped),
                       time=f"{report.seconds or 0:.2f}")
    if report.started:  # unknown when the run failed before it started (an invalid recipe)
        ts.set("timestamp", report.started)
    ts.extend(cases)
    for element in root.iter():  # every text and attribute, whatever it came from
        element.text = element.text and _safe_text(element.text)
        for key, value in element.attrib.items():
            element.set(key, _safe_text(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def summary_markdown(report: Report, title: str = "edgec") -> str:
    """A compact Markdown block for a CI job summary page: verdict, budgets, key metrics."""
    from edgec.report_text import budget_lines, summary_rows

    if report.status != "ok":
        err = report.error or {}
        head = f"### ❌ {title}: run {report.status} at `{err.get('step')}`\n\n{err.get('message')}\n"
    else:
        missed = [r.name for r in report.budgets if not r.passed]
        skipped = [r.name for r in report.budgets if r.verdict == "skipped"]
        met = len(report.budgets) - len(skipped)
        head = (f"### ❌ {title}: budget missed ({', '.join(missed)})\n" if missed
                else f"### ✅ {title}: all {met} budget(s) met"
                + (f" ({', '.join(skipped)} not checked)" if skipped else "") + "\n")
    lines = [head]
    if report.budgets:
        lines += ["| budget | limit | actual | result |", "|---|---|---|---|"]
        for name, limit, actual, result in budget_lines(report):  # as in the console table
            result = result.replace("FAIL", "**FAIL**")
            lines.append(f"| {name} | {limit} | {actual} | {result} |")
        lines.append("")
    rows = summary_rows(report)
    if rows:
        lines += ["| metric | baseline | compressed | change |", "|---|---|---|---|"]
        lines += [f"| {' | '.join(r)} |" for r in rows] + [""]
    if report.against:
        a = report.against
        lines.append(f"Compared with `{a.get('report')}`: size growth {_pct(a.get('size_growth'))}, "
                     f"latency growth {_pct(a.get('latency_growth'))}, accuracy loss "
                     f"{_points(a.get('accuracy_loss'))}"
                     + (" — **different CPU**" if a.get("cross_cpu") else "")
                     + (" — **different onnxruntime**" if a.get("cross_onnxruntime") else "")
                     + (" — **different thread count**" if a.get("cross_threads") else "")
                     + (" — different exporter (torch/onnx)" if a.get("cross_exporter") else "")
                     + (" — different edgec" if a.get("cross_edgec") else "")
                     + ".\n")
    lines += [f"> {f}\n" for f in report.findings]
    return _safe_text("\n".join(lines).rstrip() + "\n")  # raw, they garble a job page too


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.2f}%"


def _points(x: float | None) -> str:  # accuracy is itself a share: its change is in points
    return "n/a" if x is None else f"{x * 100:+.2f} points"


def check_ci_paths(junit: Path | None, summary_md: Path | None) -> None:
    """Refuse, before any work, a --junit / --summary-md path that cannot be written: otherwise a
    finished run (its gate decided) failed at its very end on a file it could not write."""
    from edgec.errors import UsageError

    problems = ci_path_problems(junit, summary_md)
    if problems:
        raise UsageError(next(iter(problems.values())))


def ci_path_problems(junit: Path | None, summary_md: Path | None) -> dict[str, str]:
    """--junit / --summary-md → why that file cannot be written; empty when both can."""
    from edgec.output_files import output_file_problem

    problems = {}
    for option, path in (("--junit", junit), ("--summary-md", summary_md)):
        if path is None:
            continue
        problem = output_file_problem(Path(path), option,
                                      "report.xml" if option == "--junit" else "summary.md")
        if problem:
            problems[option] = problem
    if junit and summary_md and "--junit" not in problems and _same_file(junit, summary_md):
        # one would overwrite the other: CI would parse Markdown as JUnit XML, or show XML
        problems["--summary-md"] = (f"--junit and --summary-md both name '{summary_md}'; the "
                                    "summary would overwrite the JUnit XML. Give two file names, "
                                    "e.g. --junit edgec.xml --summary-md edgec.md.")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if junit and step_summary and "--junit" not in problems and _same_file(junit, step_summary):
        problems["--junit"] = (f"--junit '{junit}' is the job summary ($GITHUB_STEP_SUMMARY), "
                               "which GitHub shows as Markdown; give the JUnit XML its own file, "
                               "e.g. --junit edgec.xml.")
    return problems


def _same_file(a: Path, b: Path) -> bool:
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def write_ci_outputs(report: Report, junit: Path | None, summary_md: Path | None,
                     title: str = "edgec") -> list[Path]:
    """Write the requested files; append the summary to $GITHUB_STEP_SUMMARY when it is set."""
    from edgec.report import write_text_atomic

    kept = (f" The run itself finished: '{Path(report.run_dir) / 'report.json'}' holds its "
            "results." if report.status == "ok" and report.run_dir else "")
    written = []
    if junit:
        try:
            Path(junit).parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(Path(junit), junit_xml(report, suite=title))
        except OSError as exc:
            raise _output_error("--junit", junit, exc, kept) from None
        written.append(Path(junit))
    return written + write_summary(summary_markdown(report, title), summary_md, kept)


def write_summary(text: str, summary_md: Path | None, kept: str = "") -> list[Path]:
    """Write ``text`` to --summary-md and append it to $GITHUB_STEP_SUMMARY when that is set. A
    --summary-md naming that same file is appended to once: overwritten, it lost the other
    steps' summaries, and the append then wrote ours a second time. ``kept``: where the results
    are, for the message when a file cannot be written after all."""
    import sys

    from edgec.report import write_text_atomic

    written = []
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY") or None
    into_step = bool(summary_md and step_summary and _same_file(summary_md, step_summary))
    if summary_md and not into_step:
        try:
            Path(summary_md).parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(Path(summary_md), text)
        except OSError as exc:
            raise _output_error("--summary-md", summary_md, exc, kept) from None
        written.append(Path(summary_md))
    if step_summary:  # GitHub's contract: append, other steps write to the same file
        try:
            with open(step_summary, "a", encoding="utf-8") as fh:
                fh.write(text + "\n")
            written.append(Path(step_summary))
        except OSError as exc:
            if into_step:  # the user's own --summary-md: as any file they asked for
                raise _output_error("--summary-md", summary_md, exc, kept) from None
            # the CI's file, not the user's option: never fail the gate on it
            print(f"warning: cannot append the job summary to $GITHUB_STEP_SUMMARY "
                  f"'{step_summary}': {exc.strerror or exc}; the gate's result stands.", file=sys.stderr)
    return written


def _output_error(option: str, path: Path, exc: OSError, kept: str) -> Exception:
    """A CI file that could not be written although checked before the work (a full disk, a
    folder removed since): name the user's path, not the temporary file beside it, and where the
    finished work is (``kept``: a report.json only when this command wrote one; compress does,
    check-budgets does not)."""
    from edgec.errors import OutputError

    return OutputError(f"Cannot write {option} '{path}': {exc.strerror or exc}.{kept}")


def write_failed_ci_outputs(exc: BaseException, run_dir: Path | None, junit: Path | None,
                            summary_md: Path | None, title: str = "edgec") -> None:
    """After compress raised: CI outputs that say why (from the run's failed report.json when the
    run got that far, else from the error itself, e.g. an invalid recipe). A path that is itself
    the error (check_ci_paths refused it) is skipped: nothing ran, and nothing can go there."""
    import json
    import sys

    from edgec.errors import EdgecError
    from edgec.report import Report

    problems = ci_path_problems(junit, summary_md)  # the error being reported, when there are
    junit = None if "--junit" in problems else junit  # any: nothing can be written there
    summary_md = None if "--summary-md" in problems else summary_md
    if not (junit or summary_md or os.environ.get("GITHUB_STEP_SUMMARY")):
        return
    stored: dict = {}
    run_dir = getattr(exc, "run_folder", None) or run_dir  # a failed run stays unfinished there
    if run_dir is not None:
        try:
            stored = json.loads((Path(run_dir) / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
    if stored.get("status") in (None, "ok"):  # not this run's report (none, or an older run's)
        message = exc.message if isinstance(exc, EdgecError) else "interrupted"
        stored = {"status": "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                  "error": {"step": getattr(exc, "run_step", None) or "setup",  # a full disk
                            "type": type(exc).__name__, "message": message}}
    report = Report(recipe=stored.get("recipe") or {}, environment=stored.get("environment") or {},
                    status=stored["status"], error=stored.get("error"),
                    started=stored.get("started"), seconds=stored.get("seconds"))
    from edgec.errors import OutputError

    try:
        write_ci_outputs(report, junit, summary_md, title)
    except OutputError as err:  # the run's own error is the one to report
        print(f"warning: {err.message}", file=sys.stderr)
