"""Pareto front over sweep results: the variants no other variant beats on every chosen axis."""

from __future__ import annotations

from collections.abc import Sequence

# axis → (direction, label). Latency as measured speed-up (in-process ratio to the baseline) is the
# trustworthy axis when variants run at different times or in parallel; latency_ms is absolute.
AXES: dict[str, tuple[str, str]] = {
    "size_kb": ("min", "ONNX size (KiB)"),
    "size_gzip_kb": ("min", "gzip'd size (KiB)"),
    "params": ("min", "parameters"),
    "macs": ("min", "MACs (batch 1)"),
    "latency_ms": ("min", "latency p50 (ms)"),
    "speedup": ("max", "speed-up vs baseline (x)"),
    "accuracy": ("max", "accuracy"),
}
ALIASES = {"size": "size_kb", "latency": "latency_ms"}


def canonical_axes(axes: Sequence[str]) -> list[str]:
    from edgec.errors import UsageError

    if not axes:
        raise UsageError("No Pareto axes given.", hint=f"e.g. --axes size_kb,speedup,accuracy "
                         f"(from {', '.join([*AXES, *ALIASES])}), or none for the recipe's sweep.axes.")
    out = []
    for axis in axes:
        name = ALIASES.get(axis, axis)
        if name not in AXES:
            raise UsageError(f"Unknown Pareto axis '{axis}'.",
                             hint=f"Choose from {', '.join([*AXES, *ALIASES])}.")
        if name not in out:
            out.append(name)
    return out


def _key(point: dict, axes: Sequence[str]) -> tuple[float, ...] | None:
    """Axis values turned 'smaller is better'; None when any is missing."""
    values = []
    for axis in axes:
        v = point.get(axis)
        if v is None:
            return None
        values.append(-float(v) if AXES[axis][0] == "max" else float(v))
    return tuple(values)


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def pareto_front(points: Sequence[dict], axes: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points (those with every axis measured), in input order.

    Equal points are all kept: neither beats the other. O(n²), fine for sweeps of hundreds.
    """
    keys = [_key(p, axes) for p in points]
    front = []
    for i, ki in enumerate(keys):
        if ki is None:
            continue
        if not any(kj is not None and dominates(kj, ki) for j, kj in enumerate(keys) if j != i):
            front.append(i)
    return front


def best_index(points: Sequence[dict], axes: Sequence[str], eligible: Sequence[int]) -> int | None:
    """The eligible point best on the first axis, ties broken by the next axes."""
    keyed = [(k, i) for i in eligible if (k := _key(points[i], axes)) is not None]
    return min(keyed)[1] if keyed else None
