"""Parameter counts of a live PyTorch model (the ONNX-side counterpart is graph_stats.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, non-zero) trainable-or-not parameters, each shared tensor counted once.

    Buffers (BatchNorm running statistics, pruning masks) are not parameters: they are not learned
    weights a user thinks of when asking "how many parameters".
    """
    seen: set[int] = set()
    total = nonzero = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        nonzero += int((p.detach() != 0).sum())
    return total, nonzero
