"""Regression gates: compare this run with a stored report (e.g. main's) — `compress --against`.

Size and accuracy compare directly. Latency never compares absolute milliseconds from two runs
(different load, maybe a different machine): it compares each run's compressed/baseline ratio,
both measured interleaved in their own process, so the baseline model acts as the yardstick, and
decides on this run's confidence interval of that ratio as min_speedup does (latency_gate.py).
Even that ratio depends on the CPU (int8 kernels gain far more with VNNI) and on the runtime
timing it, so when the two environment fingerprints show different CPUs, onnxruntime versions or
thread counts the latency gate is "inconclusive", never trusted. A different exporter (torch,
onnx) is pointed out: it can change the graph, and so sizes and accuracy, but the gates still judge
the model as built.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.budgets import BudgetRow
from edgec.errors import UsageError, not_a_file
from edgec.stored_report import measurement_problem

if TYPE_CHECKING:
    from edgec.recipe import BudgetsConfig
    from edgec.report import Report

# Fingerprint fields whose difference changes what a latency comparison means.
CPU_KEYS = ("cpu", "machine", "cpu_count", "cpu_flags")
SOFTWARE_KEYS = ("onnxruntime", "onnx", "torch", "python", "edgec", "threads")
# The runtime that times both models: its kernels (int8 above all) change between versions, and
# the speed-ups with them, as with a different CPU. (edgec's quantize passes use it too.)
RUNTIME_KEY = "onnxruntime"
# What writes the graph: a new exporter may fold, fuse or store it differently, so sizes and
# accuracy can move with it; the model as built is still what the gates judge.
EXPORTER_KEYS = ("torch", "onnx")
# edgec itself: a new release may change a pass's defaults (calibration, operator choices), so
# sizes and accuracy can move with it too. Python's version is in environment_diff but raises
# nothing: neither the graph nor onnxruntime's kernels depend on it.
TOOL_KEY = "edgec"


def load_against(path: Path) -> dict:
    """Read a stored report.json (or a run folder holding one) and check it can serve as a
    reference, before any work; UsageError if not."""
    path = Path(path)
    if path.is_dir() and (path / "report.json").is_file():
        path = path / "report.json"  # a run folder: its report
    if not path.is_file() and not _is_pipe(path):  # a pipe: --against <(curl ...), /dev/stdin
        what = "is a folder without a report.json" if path.is_dir() else not_a_file(path)
        raise UsageError(f"--against '{path}' {what}. Pass the report.json of a previous run "
                         "(e.g. downloaded from main's CI artifacts), as a file or a pipe.")
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: also an int of 5000 digits
        raise UsageError(f"--against '{path}' is not a readable JSON report: {exc}.") from None
    if not isinstance(stored, dict) or stored.get("schema") != "edgec.report/1":
        raise UsageError(f"--against '{path}' is not an edgec report (schema edgec.report/1).",
                         hint="Use the report.json written in a run folder.")
    if stored.get("status") != "ok":
        raise UsageError(f"--against '{path}' is the report of a run that did not complete "
                         f"(status {stored.get('status')!r}); it has no measurements to compare.")
    problem = measurement_problem(stored)
    if problem:
        raise UsageError(f"--against '{path}' is not a usable edgec report: {problem}.",
                         hint="Use an unedited report.json written by a completed run.")
    stored.setdefault("_path", str(path))
    return stored


def _is_pipe(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:
        return False


def environment_diff(current: dict, stored: dict) -> dict[str, list]:
    """{key: [stored value, current value]} for each fingerprint field that differs."""
    return {k: [stored.get(k), current.get(k)] for k in (*CPU_KEYS, *SOFTWARE_KEYS)
            if stored.get(k) != current.get(k)}


def apply_against(report: Report, stored: dict | None, budgets: BudgetsConfig) -> None:
    """Add the comparison (report.against) and one budget row per regression gate to ``report``."""
    gates = budgets.regression()
    if stored is None:
        if gates:
            report.findings.append(
                f"Regression budgets ({', '.join(gates)}) were not checked: they compare with a "
                "stored report, given with --against.")
            for name, limit in gates.items():  # visible in JUnit as skipped, not absent
                report.budgets.append(BudgetRow(name, float(limit), None, True, "fraction",
                                                "skipped", note="no --against report to compare with"))
        return
    if report.compressed is None:
        return
    if not gates:
        report.findings.append(
            "--against was given but the recipe sets no regression budget (max_size_growth, "
            "max_latency_growth, max_accuracy_loss): the comparison is recorded, nothing is gated.")
    different = _different_baseline(report, stored)
    if different:
        report.findings.append(
            f"The stored report measured a different baseline model ({different}): the "
            "regression gates compare two different models' results.")
    diff = environment_diff(report.environment, stored.get("environment") or {})
    values = regression_values(report, stored)
    flags, findings, not_comparable = _judge_environments(diff)
    report.against = {"report": stored.get("_path"), "started": stored.get("started"),
                      "environment_diff": diff, **flags, **values}
    report.findings.extend(findings)
    for name, limit in gates.items():
        actual = values[name.replace("max_", "")]
        if actual is None:
            report.budgets.append(BudgetRow(name, float(limit), None, False, "fraction",
                                            note="not measured in one of the two reports"))
            continue
        if name == "max_latency_growth":
            snapshot = _snapshot(report, stored)
            if snapshot:
                report.findings.append(f"The stored report's speed-up is a snapshot: {snapshot}. "
                                       "max_latency_growth is inconclusive against it.")
            report.budgets.append(_latency_growth_row(report, stored, float(limit), actual,
                                                      budgets, not_comparable, snapshot))
            continue
        passed = actual <= limit
        report.budgets.append(BudgetRow(name, float(limit), actual, passed, "fraction",
                                        "pass" if passed else "fail"))


def _latency_growth_row(report: Report, stored: dict, limit: float, actual: float,
                        budgets: BudgetsConfig, not_comparable: list[str],
                        snapshot: str | None) -> BudgetRow:
    """max_latency_growth, noise-aware as min_speedup is: decided on this run's p1-speedup
    interval against the stored ratio (fails only when the whole growth interval is above the
    limit). Inconclusive when the two ratios are not comparable, or the stored one is a snapshot."""
    from edgec.budgets import gate_interval

    low = high = None
    ci = gate_interval(report.baseline, report.compressed, budgets.speedup_confidence)
    old = (stored.get("ratios") or {}).get("speedup_p1")
    if ci is not None and old and ci.low > 0:  # both p1 ratios: the interval applies
        low, high = round(old / ci.high - 1, 6), round(old / ci.low - 1, 6)
    if not_comparable or snapshot:
        verdict = "inconclusive"
    elif low is None:  # an older stored report (no p1 ratio): the point values alone
        verdict = "pass" if actual <= limit else "fail"
    else:
        verdict = "pass" if high <= limit else "fail" if low > limit else "inconclusive"
    passed = verdict == "pass" or (verdict == "inconclusive" and budgets.inconclusive == "pass")
    notes = []
    if not_comparable:
        notes.append(f"{'; '.join(not_comparable)}: latency ratios are not comparable")
    if snapshot:
        notes.append(f"a snapshot: {snapshot}")
    if ci is not None and low is not None:
        notes.append(f"growth of the stored p1 speedup {old:.4f}x over this run's "
                     f"{ci.confidence:.0%} CI [{ci.low:.4f}, {ci.high:.4f}] (widened by 2% "
                     "run-to-run drift)")
    return BudgetRow("max_latency_growth", limit, actual, passed, "fraction", verdict, low, high,
                     "; ".join(notes) or None)


def _snapshot(report: Report, stored: dict) -> str | None:
    """Why the stored report's speed-up is a snapshot of whatever load it hit, or None: it timed
    its models far more briefly than this run (a run without a speed budget times them for
    milliseconds; one read 11.6% 'faster' than an identical 10-second run here)."""
    from edgec.benchmark import GATE_MIN_SECONDS

    stored_s, this_s = _timed_seconds(stored), _timed_seconds(report)
    if stored_s is None or this_s is None or stored_s >= 0.5 * min(this_s, GATE_MIN_SECONDS):
        return None
    return (f"it timed its models for {stored_s:.2g} s, this run for {this_s:.2g} s (give its "
            f"recipe a speed budget or benchmark.min_seconds: {GATE_MIN_SECONDS:g}, then store "
            "it again)")


def _timed_seconds(report) -> float | None:
    """Seconds a report spent timing its two models (runs × mean of each), from a stored
    report.json (a dict) or this run's Report."""
    if isinstance(report, dict):
        stats = [(report.get(side) or {}).get("latency_ms") for side in ("baseline", "compressed")]
    else:
        stats = [getattr(getattr(m, "latency_ms", None), "__dict__", None)
                 for m in (report.baseline, report.compressed)]
    if not all(isinstance(s, dict) for s in stats):
        return None
    try:
        return sum(float(s["runs"]) * float(s["mean"]) / 1000 for s in stats)
    except (KeyError, TypeError, ValueError):
        return None


def _judge_environments(diff: dict[str, list]) -> tuple[dict[str, bool], list[str], list[str]]:
    """From the fingerprint differences: (the cross_* flags of report.against, findings, why the
    latency ratios are not comparable — empty when they are)."""
    known = {k: v for k, v in diff.items() if None not in v}  # unknown in one report: no claim
    cross_cpu = any(k in diff for k in CPU_KEYS)
    threads, runtime = known.get("threads"), known.get(RUNTIME_KEY)
    exporter = {k: known[k] for k in EXPORTER_KEYS
                if k in known and _release(known[k][0]) != _release(known[k][1])}
    findings, why = [], []
    if cross_cpu:
        why.append("different CPUs")
        findings.append("The stored report was measured on a different CPU (" + ", ".join(
            k for k in CPU_KEYS if k in diff) + "): latency comparisons with it are flagged "
            "inconclusive, not trusted.")
    if runtime:
        why.append(f"onnxruntime {runtime[0]} vs {runtime[1]}")
        findings.append(
            f"The stored report timed latency with onnxruntime {runtime[0]}, this run with "
            f"{runtime[1]}: its kernels (int8 above all) and so the speed-ups change between "
            "versions, so latency comparisons with it are flagged inconclusive, not trusted. "
            "Compare with a report made with the same onnxruntime version.")
    # onnxruntime intra-op threads: int8 and float kernels scale differently with them, so the
    # speed-up itself changes
    if threads:
        why.append(f"{threads[0]} vs {threads[1]} threads")
        findings.append(
            f"The stored report timed latency with {threads[0]} onnxruntime thread(s), this run "
            f"with {threads[1]}: speed-ups change with the thread count, so latency comparisons "
            "with it are flagged inconclusive, not trusted. Time both with the same count "
            "(benchmark.threads in the recipe, --threads for check-budgets).")
    if exporter:
        there = ", ".join(f"{k} {v[0]}" for k, v in exporter.items())
        here = ", ".join(f"{k} {v[1]}" for k, v in exporter.items())
        findings.append(
            f"The stored report was made with {there}, this run with {here}: a new exporter can "
            "change the exported graph, so size and accuracy differences from the stored report "
            "may come from the upgrade rather than from this change. The gates still judge the "
            "model as built.")
    tool = known.get(TOOL_KEY)
    if tool:
        findings.append(
            f"The stored report was made with edgec {tool[0]}, this run with edgec {tool[1]}: a "
            "new release may change a pass's defaults, so size and accuracy differences from the "
            "stored report may come from the upgrade rather than from this change (`report.json` "
            "records each pass's settings). The gates still judge the model as built.")
    flags = {"cross_cpu": cross_cpu, "cross_threads": bool(threads),
             "cross_onnxruntime": bool(runtime), "cross_exporter": bool(exporter),
             "cross_edgec": bool(tool)}
    return flags, findings, why


def _release(version: str) -> str:
    """'2.4.0' of '2.4.0+cu121': CPU and CUDA builds of one release export the same graphs."""
    return str(version).split("+", 1)[0]


def _different_baseline(report: Report, stored: dict) -> str | None:
    """How the two reports' baseline models differ (parameters, MACs, input shape), or None."""
    old, new = stored.get("baseline") or {}, report.baseline
    if new is None or not isinstance(old, dict):
        return None
    diffs = [f"{key} {old.get(key)} there, {getattr(new, key)} here" for key in ("params", "macs")
             if old.get(key) is not None and old.get(key) != getattr(new, key, None)]
    old_shape = ((stored.get("recipe") or {}).get("model") or {}).get("input_shape")
    new_shape = list(((report.recipe or {}).get("model") or {}).get("input_shape") or [])
    if old_shape and new_shape and list(old_shape) != new_shape:
        diffs.append(f"input shape {old_shape} there, {new_shape} here")
    return "; ".join(diffs) or None


def regression_values(report: Report, stored: dict) -> dict[str, float | None]:
    """size_growth, latency_growth, accuracy_loss of this run relative to the stored one."""
    old, new = stored["compressed"], report.compressed
    size_growth = new.size_bytes / old["size_bytes"] - 1 if old.get("size_bytes") else None
    old_speed, new_speed = _speedups(stored.get("ratios") or {}, report.ratios)
    # latency relative to each run's own baseline: growth = old speedup / new speedup - 1
    latency_growth = old_speed / new_speed - 1 if old_speed and new_speed else None
    loss = None
    if old.get("accuracy") is not None and new.accuracy is not None:
        loss = old["accuracy"] - new.accuracy
    return {k: None if v is None else round(v, 6) for k, v in
            {"size_growth": size_growth, "latency_growth": latency_growth,
             "accuracy_loss": loss}.items()}


def _speedups(old: dict, new: dict) -> tuple[float | None, float | None]:
    """The same statistic from both reports: the p1 ratio (latency_gate.py) when both have it
    (older reports lack it), else the paired median, else the p50 ratio."""
    from edgec.benchmark import SPEEDUP_KEYS

    for key in SPEEDUP_KEYS:
        if old.get(key) and new.get(key):
            return old[key], new[key]
    return None, None
