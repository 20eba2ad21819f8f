"""A sweep's results: one flat row per finished variant, the Pareto front, the best variant.

``tabulate`` turns the outcomes the executors return (sweep_exec.py) into a ``SweepResult`` and
has sweep_report.py rewrite the files; it runs after every finished variant, so the tables
always show what has finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SweepResult:
    folder: Path
    rows: list[dict]
    axes: list[str]
    front: list[int] = field(default_factory=list)
    best: int | None = None
    seconds: float = 0.0
    reused: int = 0
    planned: int = 0  # variants in the plan; rows has fewer when the sweep was interrupted
    unmeasured: list[str] = field(default_factory=list)  # axes no successful variant has
    budgeted: bool = True  # whether some variant's recipe sets budgets: else all "pass" them

    @property
    def front_axes(self) -> list[str]:
        """The axes the front is over: an axis no variant measured (accuracy without labelled
        data) would leave every variant off the front."""
        return [a for a in self.axes if a not in self.unmeasured]

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] != "ok"]


def tabulate(result: SweepResult, variants: list[dict], finished: dict, seconds: float,
              final: bool = True) -> None:
    """Rows for finished variants (in variant order), front, best; rewrite the result files
    (``final``: with the plot and page, and the sweep marked complete if every variant is)."""
    from edgec.pareto import best_index, pareto_front
    from edgec.sweep_report import write_results

    rows = [result_row(v, finished[v["name"]], result.folder) for v in variants
            if v["name"] in finished]
    ok = [i for i, r in enumerate(rows) if r["status"] == "ok"]
    result.budgeted = any((finished[v["name"]].get("report") or {}).get("budgets")
                          for v in variants if v["name"] in finished) or not ok
    result.unmeasured = [a for a in result.axes if ok and all(rows[i].get(a) is None for i in ok)]
    axes = result.front_axes
    front_ok = pareto_front([rows[i] for i in ok], axes) if axes else []
    result.rows, result.front, result.seconds = rows, [ok[i] for i in front_ok], round(seconds, 2)
    for i, row in enumerate(rows):
        row["pareto"] = i in result.front
    # the best is on the front of the variants that meet the budgets: one that misses a budget
    # may dominate every passing variant, and must not leave the sweep without a best
    passing = [i for i in ok if rows[i]["passed"]]
    front_passing = pareto_front([rows[i] for i in passing], axes) if axes else []
    result.best = best_index(rows, axes, [passing[i] for i in front_passing])
    for i, row in enumerate(rows):
        row["best"] = i == result.best
    write_results(result, final)


def result_row(variant: dict, outcome: dict, folder: Path) -> dict:
    """One flat row: variant values, status, metrics of the compressed model, budgets verdict."""
    from edgec.benchmark import gate_speedup

    rep = outcome.get("report") or {}
    comp, ratios = rep.get("compressed") or {}, rep.get("ratios") or {}
    latency = (comp.get("latency_ms") or {}).get("p50")
    row: dict[str, Any] = {"variant": variant["name"], **variant["values"],
                           "status": outcome["status"],
                           "passed": bool(rep.get("passed")) and outcome["status"] == "ok"}
    row.update({
        "size_kb": round(comp["size_bytes"] / 1024, 3) if comp.get("size_bytes") else None,
        "size_gzip_kb": round(comp["size_gzip_bytes"] / 1024, 3) if comp.get("size_gzip_bytes")
        else None,
        "params": comp.get("params"), "macs": comp.get("macs"), "latency_ms": latency,
        "speedup": gate_speedup(ratios),  # what min_speedup decides on
        "accuracy": comp.get("accuracy"), "accuracy_drop": ratios.get("accuracy_drop"),
        "budgets_missed": ";".join(b["name"] for b in rep.get("budgets", []) if not b["passed"]),
        "seconds": rep.get("seconds"), "error": outcome.get("error"),
        "run_dir": _run_dir(folder, variant["name"], outcome["status"] == "ok"),
    })
    return row


def _run_dir(folder: Path, name: str, ok: bool) -> str:
    """The variant's run folder, relative to the sweep's: a failed run stays unfinished, under
    its temporary name (rundir.py), and that is where its report.json says what went wrong;
    a finished folder of the same name is an earlier, successful run's."""
    from edgec.rundir import partial_path

    path = Path("variants") / name
    if (folder / partial_path(path)).is_dir() and (not ok or not (folder / path).is_dir()):
        path = partial_path(path)
    return str(path)
