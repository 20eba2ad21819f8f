"""Unstructured (weight) sparsity: zero the least important individual weights of conv/linear layers.

Masks are applied with ``torch.nn.utils.prune`` so that fine-tuning between schedule steps cannot
regrow pruned weights (the mask is re-applied on every forward), then made permanent with
``prune.remove`` before export, so the exported initializers really contain the zeros.

The model keeps its shapes and MACs: onnxruntime's CPU kernels are dense, so sparsity shows in the
gzip'd file size, not in latency.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgec.errors import PassError
from edgec.passes.prune_graph import layer_types, name_matches
from edgec.passes.prune_structured import Plan

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


@dataclass
class SparsitySettings:
    importance: str  # l1 | l2 | taylor | random  (l1 and l2 rank single weights identically)
    global_ranking: bool
    max_per_layer: float
    ignore: tuple[str, ...] = ()
    layers: dict[str, float] | None = None


def _weight(module) -> torch.Tensor:
    return module.weight  # with a prune mask attached this is the masked (effective) weight


def _dense_weight(module):
    return getattr(module, "weight_orig", module.weight)  # the parameter that receives gradients


class WeightPruner:
    """Same protocol as ChannelPruner: score → plan(ratio) → apply (a masked copy)."""

    def __init__(self, model: nn.Module, settings: SparsitySettings, seed: int):
        self.settings, self.seed = settings, seed
        self.names = [n for n, m in model.named_modules()
                      if isinstance(m, layer_types()) and not name_matches(n, settings.ignore)]
        self.protected: dict[str, str] = {}
        self.untraceable: dict[str, str] = {}
        if not self.names:
            raise PassError("prune: every conv/linear layer is in ignore:, nothing left to sparsify.")

    def score(self, model: nn.Module) -> dict[str, torch.Tensor]:
        import torch

        scores = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            for name in self.names:
                module = model.get_submodule(name)
                w = _weight(module).detach()
                if self.settings.importance == "random":
                    s = torch.rand_like(w)
                    s[w == 0] = -1.0  # already-pruned weights stay pruned
                elif self.settings.importance == "taylor":
                    grad = _dense_weight(module).grad
                    if grad is None:
                        raise PassError(f"prune: no gradient for '{name}' (taylor importance); does "
                                        "the layer take part in the model's forward pass?")
                    s = (w * grad).abs()
                else:
                    s = w.abs()
                scores[name] = s.flatten().float()
        return scores

    def plan(self, scores: dict[str, torch.Tensor], ratio: float, progress: float = 1.0) -> Plan:
        import torch

        s = self.settings
        overrides = s.layers or {}
        counts: dict[str, int] = {}
        pool = []
        for name, sc in scores.items():
            n = sc.numel()
            cap = math.floor(n * s.max_per_layer)
            pattern = name_matches(name, overrides)
            r = overrides[pattern] * progress if pattern is not None else ratio
            if pattern is None and s.global_ranking:
                pool.append(name)
                continue
            wanted = math.floor(n * r + 0.5)
            if wanted >= n:
                raise PassError(f"prune: a ratio of {r:g} would zero every weight of '{name}'. "
                                f"Lower it, or leave the layer dense with ignore: ['{name}'].")
            counts[name] = min(wanted, cap)
        if pool:
            total = sum(scores[n].numel() for n in pool)
            n_remove = math.floor(total * ratio + 0.5)
            candidates = [torch.sort(scores[n]).values[: math.floor(scores[n].numel() * s.max_per_layer)]
                          for n in pool]
            flat = torch.cat(candidates)
            owner = torch.cat([torch.full((len(c),), i) for i, c in enumerate(candidates)])
            chosen = owner[torch.argsort(flat, stable=True)[: min(n_remove, len(flat))]]
            tally = torch.bincount(chosen, minlength=len(pool))
            counts.update({n: int(tally[i]) for i, n in enumerate(pool)})
        remove = {n: torch.argsort(scores[n], stable=True)[:k].tolist() for n, k in counts.items() if k}
        return Plan(remove, tuple(counts[n] for n in scores))

    def apply(self, model: nn.Module, scores, plan: Plan) -> nn.Module:
        import torch
        from torch.nn.utils import prune

        masked = copy.deepcopy(detach_masked(model))
        for name, idx in plan.remove.items():
            module = masked.get_submodule(name)
            mask = torch.ones(_weight(module).numel())
            mask[idx] = 0
            prune.custom_from_mask(module, "weight", mask.view_as(_weight(module)))
        return masked


    def check(self, model, pruned, scores, plan) -> bool:
        return True  # a mask zeroes exactly the weights it names


def detach_masked(model: nn.Module) -> nn.Module:
    """Make a masked model deep-copyable.

    After a forward pass with gradients, a masked ``weight`` is a non-leaf tensor, which
    ``copy.deepcopy`` refuses. The mask hook recomputes it on the next forward anyway.
    """
    for module in model.modules():
        if hasattr(module, "weight_orig"):
            module.weight = module.weight.detach()
    return model


def make_permanent(model: nn.Module) -> None:
    """Fold every prune mask into its weight (the zeros become part of the parameter)."""
    from torch.nn.utils import prune

    for module in model.modules():
        if hasattr(module, "weight_orig"):
            prune.remove(module, "weight")


def sparsity_by_layer(model: nn.Module) -> dict[str, float]:
    """Fraction of zero weights in each conv/linear layer."""
    return {name: round(float((_weight(m) == 0).float().mean()), 4)
            for name, m in model.named_modules() if isinstance(m, layer_types())}


def nonzero_params(model: nn.Module) -> int:
    """Non-zero parameters, counting a masked weight as its masked value."""
    total = 0
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            value = getattr(module, pname[: -len("_orig")]) if pname.endswith("_orig") else p
            total += int((value != 0).sum())
    return total


@contextmanager
def zeros_kept(model: nn.Module) -> Iterator[int]:
    """Keep exactly-zero conv/linear weights at zero while ``model`` trains (yields how many
    layers hold some).

    An unstructured prune folds its masks before the pass ends, so a later fine-tuning pass would
    otherwise regrow every pruned weight and export a dense model. A trained dense weight is
    practically never exactly 0.0, so "exact zero" identifies the pruned ones. A layer that is
    entirely zero (a zero-initialized head) is left free to train: that is not sparsity.
    """
    from torch.nn.utils import prune

    masked = []
    for module in model.modules():
        if isinstance(module, layer_types()) and not hasattr(module, "weight_orig"):
            zero = module.weight.detach() == 0
            if bool(zero.any()) and not bool(zero.all()):
                prune.custom_from_mask(module, "weight", ~zero)
                masked.append(module)
    try:
        yield len(masked)
    finally:
        for module in masked:
            prune.remove(module, "weight")
