"""Per-device budgets of a partition, and the messages that name the device a split cannot serve.

Costs of a piece (params, MACs, weight bytes, peak activations) only grow as it takes more
nodes, so filling the devices greedily in chain order decides whether any split exists; when none
does, the device where the fill breaks down is the one to name, with what it would need.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pydantic import Field

from edgec.config import ConfigModel
from edgec.errors import BudgetError, UsageError


class DeviceBudget(ConfigModel):
    """What one device can hold and compute. Limits left out (null) are not checked."""

    max_params: int | None = Field(None, gt=0, description="Parameters stored on the device.")
    max_flash_kb: float | None = Field(None, gt=0, description="Weight bytes on the device, KiB.")
    max_macs: int | None = Field(None, gt=0, description="Multiply-accumulates per inference.")
    max_ram_kb: float | None = Field(
        None, gt=0, description="Peak activation KiB: the tensors live at one step, received and "
        "sent ones included, without buffer reuse (an upper bound). Weights count in max_flash_kb.")


# What the RAM KiB column shows: the measure --max-ram-kb is checked against, so a table and
# the limit never disagree. memory.py's tighter estimate (QDQ folded to int8, buffers reused) is
# partition.json's peak_activation_bytes; it needs the exported piece, so it cannot steer the cuts.
RAM_NOTE = ("RAM KiB: activations live at the piece's busiest step, received and sent ones "
            "included, without buffer reuse (the bound --max-ram-kb limits)")


def per_device(budgets: DeviceBudget | list[DeviceBudget], devices: int) -> list[DeviceBudget]:
    """One budget per device: the same one for all, or exactly one each."""
    if devices < 1:
        raise UsageError(f"--devices must be at least 1, not {devices}.")
    if isinstance(budgets, DeviceBudget):
        return [budgets] * devices
    if len(budgets) != devices:
        raise UsageError(f"{len(budgets)} device budgets given for {devices} devices.",
                         hint="Give one budget for all devices, or exactly one per device.")
    return list(budgets)


def overruns(budget: DeviceBudget, cost: dict) -> list[str]:
    limits = {"params": budget.max_params, "macs": budget.max_macs,
              "flash": budget.max_flash_kb * 1024 if budget.max_flash_kb else None,
              "ram": budget.max_ram_kb * 1024 if budget.max_ram_kb else None}
    return [k for k, lim in limits.items() if lim is not None and cost[k] > lim]


def describe_overruns(cost: dict, budget: DeviceBudget) -> str:
    """e.g. 'params 7,424 > 5,000, ram 8.2 KiB > 8 KiB': each limit ``cost`` exceeds."""
    parts = []
    for k in overruns(budget, cost):
        lim = {"params": budget.max_params, "macs": budget.max_macs,
               "flash": budget.max_flash_kb, "ram": budget.max_ram_kb}[k]
        lim = int(lim) if float(lim).is_integer() else lim
        got = _kib_over(cost[k], lim) if k in ("flash", "ram") else f"{cost[k]:,}"
        unit = " KiB" if k in ("flash", "ram") else ""
        parts.append(f"{k} {got}{unit} > {lim:,}{unit}")
    return ", ".join(parts)


def _kib_over(nbytes: int, limit_kib: float) -> str:
    """``nbytes`` in KiB with as many decimals as it takes to read as more than the limit it
    exceeds: 8,448 B against 8 KiB is '8.2', never '8 KiB > 8 KiB'."""
    for decimals in range(4):
        text = f"{nbytes / 1024:,.{decimals}f}"
        if float(text.replace(",", "")) > limit_kib:
            return text
    return f"{nbytes / 1024:,.4f}"


def check_feasible(nodes: list, budgets: list[DeviceBudget], fits, cost) -> None:
    """Greedy fill: optimal for deciding feasibility, as every cost only grows with a piece."""
    n, a, start = len(nodes), 0, 0
    for k, budget in enumerate(budgets):
        if a == n:
            return
        if not fits(k, a, a + 1):
            node = nodes[a]
            name = f"'{node.name or node.output[0]}' ({node.op_type})"
            if k > 0 and not any(fits(j, a, a + 1) for j in range(len(budgets))):
                # the earlier devices filled up before it, but none could hold it anyway: naming
                # device k + 1 read as if the node were that device's, and its limit the problem
                same = all(b == budget for b in budgets)
                raise BudgetError(
                    f"Node {name} fits on no device: a piece holding it alone needs "
                    f"{describe_overruns(cost(a, a + 1), budget)}"
                    f"{'' if same else f' (device {k + 1} of {len(budgets)}; every device is exceeded)'}. "
                    "Raise the budget or compress that layer first.")
            held = f" (devices 1–{k} are full with the {a} nodes before it)" if k > 0 else ""
            raise BudgetError(
                f"Device {k + 1} of {len(budgets)} cannot hold even one layer{held}: node {name} "
                f"alone needs {describe_overruns(cost(a, a + 1), budget)}. Raise device {k + 1}'s "
                "budget or compress that layer first.")
        start, b = a, a + 1
        while b < n and fits(k, a, b + 1):
            b += 1
        a = b
    if a < n:
        first = nodes[start]
        raise BudgetError(
            f"Device {len(budgets)} of {len(budgets)} (the last) would have to hold the last "
            f"{n - start} nodes, from '{first.name or first.output[0]}' on, needing "
            f"{describe_overruns(cost(start, n), budgets[-1])} even when every earlier device is filled to "
            "its budget. Use more devices, larger budgets, or compress the model first.")


def explain_no_split(nodes: list, budgets: list[DeviceBudget], fits, cost) -> None:
    """The forward fill succeeded but no split gives every device a node: fill from the back to
    find the device that cannot take even the layer it must hold."""
    b = len(nodes)
    for k in range(len(budgets) - 1, -1, -1):
        if b == 0:
            raise BudgetError(f"The model fits on {len(budgets) - k - 1} of the devices from the "
                              f"end, so device {k + 1} would hold nothing. Use "
                              f"{len(budgets) - k - 1} devices.")
        if not fits(k, b - 1, b):
            node = nodes[b - 1]
            raise BudgetError(
                f"Device {k + 1} of {len(budgets)} cannot hold the layer it must take in any "
                f"split: node '{node.name or node.output[0]}' ({node.op_type}) needs "
                f"{describe_overruns(cost(b - 1, b), budgets[k])}. Raise device {k + 1}'s budget.")
        a = b - 1
        while a > 0 and fits(k, a - 1, b):
            a -= 1
        b = a
    raise BudgetError(f"No split of the model into exactly {len(budgets)} non-empty pieces meets "
                      "the budgets; use fewer devices or larger budgets.")


# budget field of each cost a piece is checked on, and whether it is given in KiB (cost in bytes)
_LIMITS = {"params": ("max_params", False), "macs": ("max_macs", False),
           "flash": ("max_flash_kb", True), "ram": ("max_ram_kb", True)}


def what_fits(budgets: list[DeviceBudget], splits: Callable[[list[DeviceBudget]], bool],
              whole: dict) -> str:
    """What would fit, for a message: for each limit the budgets set, the smallest value that,
    given to every device whose own is lower (the other limits as they are), lets ``splits``
    succeed, e.g. 'max_params 1,280 or max_flash_kb 5.1'; '' when raising no single limit does.
    ``whole``: the cost of the whole model on one device, a value that surely suffices."""
    found = []
    for key, (name, kib) in _LIMITS.items():
        if all(getattr(b, name) is None for b in budgets):
            continue

        def raised(v: int, name=name, kib=kib) -> list[DeviceBudget]:
            limit = v / 1024 if kib else v
            return [b if getattr(b, name) is None or getattr(b, name) >= limit
                    else b.model_copy(update={name: limit}) for b in budgets]

        low, high = 0, max(int(whole[key]), 1)
        if not splits(raised(high)):
            continue  # another limit blocks the split, whatever this one is
        while high - low > 1:  # invariant: high splits, low does not (costs only grow with a piece)
            mid = (low + high) // 2
            low, high = (low, mid) if splits(raised(mid)) else (mid, high)
        # KiB rounded up to a tenth, so the value said is never just short of what is needed
        found.append(f"{name} {math.ceil(high / 102.4) / 10:,}" if kib else f"{name} {high:,}")
    return " or ".join(found)
