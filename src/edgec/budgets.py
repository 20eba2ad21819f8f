"""Budgets: compare the measured compressed model with the recipe's limits.

Each active budget becomes one row (name, limit, actual, passed) so a CI log, JUnit file or
Markdown summary can show exactly which limit was missed and by how much.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgec.benchmark import Metrics
    from edgec.recipe import BudgetsConfig


@dataclass(frozen=True)
class BudgetRow:
    name: str
    limit: float
    actual: float | None  # None: could not be measured (e.g. no labels) → counts as missed
    passed: bool
    unit: str
    # Noise-aware gates only (None elsewhere): "pass" | "fail" | "inconclusive", and the interval
    verdict: str | None = None
    low: float | None = None
    high: float | None = None
    note: str | None = None
    source: str = "recipe"  # or "target <name>" when the limit comes from the target profile

    def to_dict(self) -> dict:
        return asdict(self)

    def shown(self, value: float | None, digits: int = 0) -> str:
        """``value`` (the limit or the actual) for people: a fraction (regression growth) as a
        signed percentage (-0.1%, not -0.001123 fraction); else the number and its unit. At least
        ``digits`` significant digits (3 for a percentage, 4 for a number by default)."""
        if value is None:
            return "not measured"
        if self.unit == "fraction":  # accuracy is itself a share: its change is in points
            return f"{value * 100:+.{max(digits, 3)}g}{' points' if 'accuracy' in self.name else '%'}"
        return f"{number(value, max(digits, 4))} {self.unit}".strip()

    def texts(self) -> tuple[str, str, str | None]:
        """(limit, actual, interval or None) for people, each number with the digits it takes to
        differ from the limit when it does: a miss never reads 'limit 1.25, actual 1.25'."""
        scale = 100 if self.unit == "fraction" else 1  # compared as shown: in percent
        values = [v for v in (self.actual, self.low, self.high) if v is not None]
        digits = max((digits_apart(v * scale, self.limit * scale, 3) for v in values), default=0)
        limit = self.shown(self.limit, digits) if self.unit == "fraction" else number(
            self.limit, max(digits, 4))
        interval = None
        if self.low is not None and self.high is not None:  # a noise-aware gate decided on these
            interval = (f"{self.shown(self.low, digits)} to {self.shown(self.high, digits)}"
                        if self.unit == "fraction" else
                        f"{self.low:.{max(digits, 3)}g}–{self.high:.{max(digits, 3)}g}")
        return limit, self.shown(self.actual, digits), interval

    def missed_text(self) -> str:
        """'name (limit L, actual A[, CI lo–hi])' for the 'budget missed:' line."""
        limit, actual, interval = self.texts()
        return f"{self.name} (limit {limit}, actual {actual}" + (
            f", CI {interval})" if interval else ")")


def digits_apart(value: float, other: float, digits: int) -> int:
    """The fewest significant digits, ``digits`` or more, at which two different numbers print
    differently (1.2499 and 1.25 need 5); equal numbers need no more than ``digits``."""
    while digits < 17 and value != other and f"{value:.{digits}g}" == f"{other:.{digits}g}":
        digits += 1
    return digits


def number(value: float, digits: int = 4) -> str:
    """A limit or a count for people: 200,000 and 93,964, not 2e+05 and 9.396e+04."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.{digits}g}"


def check_budgets(
    budgets: BudgetsConfig, baseline: Metrics, compressed: Metrics, ratios: dict,
    memory: dict | None = None,
) -> list[BudgetRow]:
    """One row per budget set in the recipe, in the recipe's field order.

    ``memory``: the compressed model's flash_kb / ram_kb / peak_activation_kb (see device.py)."""
    from edgec.benchmark import gate_speedup

    memory = memory or {}
    percentile = budgets.latency_percentile
    # name → (actual value, unit, True if the actual must stay at or below the limit)
    measured = {
        "max_size_kb": (compressed.size_bytes / 1024, "KiB", True),
        "max_size_gzip_kb": (compressed.size_gzip_bytes / 1024, "KiB", True),
        "max_params": (compressed.params, "params", True),
        "max_macs": (compressed.macs, "MACs", True),
        "max_latency_ms": (getattr(compressed.latency_ms, percentile), f"ms ({percentile})", True),
        "min_speedup": (gate_speedup(ratios), "x", False),
        "min_size_reduction": (ratios.get("size"), "x", False),
        "min_accuracy": (compressed.accuracy, "", False),
        "max_accuracy_drop": (ratios.get("accuracy_drop"), "", True),
        "max_flash_kb": (memory.get("flash_kb"), "KiB", True),
        "max_ram_kb": (memory.get("ram_kb"), "KiB (estimated)", True),
        "max_peak_activation_kb": (memory.get("peak_activation_kb"), "KiB (estimated)", True),
    }
    rows = []
    for name, limit in budgets.active().items():
        actual, unit, at_most = measured[name]
        if name == "min_speedup":
            noisy = _speedup_row(budgets, float(limit), baseline, compressed)
            if noisy is not None:
                rows.append(noisy)
                continue
        if actual is None:  # could not be measured: a gate must not pass on missing data
            rows.append(BudgetRow(name, float(limit), None, False, unit))
            continue
        passed = actual <= limit if at_most else actual >= limit
        rows.append(BudgetRow(name, float(limit), float(actual), passed, unit))
    return rows


def gate_interval(baseline, compressed, confidence: float):
    """The p1 speedup's bootstrap CI as the speed gates (min_speedup, max_latency_growth) decide
    on it, widened by the run-to-run drift; None when the timed rounds were not kept."""
    from edgec.latency_gate import RatioInterval, speedup_interval, with_session_drift

    base = getattr(getattr(baseline, "latency_ms", None), "samples", None)
    comp = getattr(getattr(compressed, "latency_ms", None), "samples", None)
    if not base or not comp:
        return None
    ci = speedup_interval(base, comp, confidence)
    if ci is None:
        return None
    ci = with_session_drift(ci)
    # decided on the numbers report.json keeps (4 decimals, far below the noise): the estimate is
    # then ratios.speedup_p1 exactly, and the stored interval reproduces the verdict
    return RatioInterval(round(ci.estimate, 4), round(ci.low, 4), round(ci.high, 4), ci.confidence,
                         ci.rounds)


def _speedup_row(budgets: BudgetsConfig, limit: float, baseline, compressed) -> BudgetRow | None:
    """min_speedup on the bootstrap CI of the p1 speedup (None: samples were not kept)."""
    from edgec.latency_gate import decide_at_least

    ci = gate_interval(baseline, compressed, budgets.speedup_confidence)
    if ci is None:
        return None
    verdict = decide_at_least(ci, limit)
    passed = verdict == "pass" or (verdict == "inconclusive" and budgets.inconclusive == "pass")
    seconds = sum(compressed.latency_ms.samples) + sum(baseline.latency_ms.samples)
    note = (f"p1 speedup {ci.estimate:.4f}x (1st-percentile times: the undisturbed rounds), "
            f"{ci.confidence:.0%} CI [{ci.low:.4f}, {ci.high:.4f}] over {ci.rounds} interleaved "
            f"rounds ({seconds / 1000:.1f} s of inference; widened by 2% run-to-run drift)")
    return BudgetRow("min_speedup", limit, ci.estimate, passed, "x", verdict, ci.low, ci.high, note)
