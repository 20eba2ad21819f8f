"""What a stored report.json (`--against`) must hold for the regression gates to read it.

Checked before any work: each value apply_against reads after the run has the type and range it is
read as, so a truncated or hand-edited report is refused up front (exit 2) instead of crashing
the gate after the whole run. This checks shape and range only: an edited value that is a
plausible number (a smaller size_bytes) cannot be told from a measured one, and is used as is.
"""

from __future__ import annotations

import math


def measurement_problem(stored: dict) -> str | None:
    """What makes a stored report unusable (edited, truncated), or None."""
    for section in ("compressed", "environment", "baseline", "recipe", "ratios"):
        if stored.get(section) is not None and not isinstance(stored[section], dict):
            return f"'{section}' is {_short(stored[section])}, not a mapping"
    comp = stored.get("compressed")
    if not comp:
        return "it has no 'compressed' measurements"
    model = (stored.get("recipe") or {}).get("model")
    if model is not None and not isinstance(model, dict):
        return f"recipe.model is {_short(model)}, not a mapping"
    shape = (model or {}).get("input_shape")
    if shape is not None and not isinstance(shape, list):
        return f"recipe.model.input_shape is {_short(shape)}, not a list"
    size = comp.get("size_bytes")
    if isinstance(size, bool) or not isinstance(size, int) or _finite(size) is None or size < 1:
        return f"compressed.size_bytes is {_short(size)}, not a finite positive whole number"
    # (name, value, upper bound): accuracy is a share, at most 1
    checks = [("compressed.accuracy", comp.get("accuracy"), 1)]
    checks += [(f"ratios.{k}", v, None) for k, v in (stored.get("ratios") or {}).items()
               if k.startswith("speedup")]
    for side in ("baseline", "compressed"):  # their timings tell a snapshot (regression._snapshot)
        latency = (stored.get(side) or {}).get("latency_ms")
        if latency is not None and not isinstance(latency, dict):
            return f"{side}.latency_ms is {_short(latency)}, not a mapping"
        checks += [(f"{side}.latency_ms.{k}", (latency or {}).get(k), None) for k in ("runs", "mean")]
    for name, value, most in checks:
        if value is None:
            continue
        number = _finite(value)
        if number is None or number < 0 or (most and number > most):
            what = f"a number between 0 and {most}" if most else "a finite non-negative number"
            return f"{name} is {_short(value)}, not {what}"
    return None


def _finite(value) -> float | None:
    """``value`` as a finite float, else None: a JSON integer too large for a float (10**400)
    is not one, where math.isfinite raised OverflowError on it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
