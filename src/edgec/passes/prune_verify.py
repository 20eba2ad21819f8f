"""Proof that a channel cut removed exactly the channels it names, and blame when it did not.

Torch-Pruning's graph can mis-track channels silently: a channel shuffle (view → transpose → view)
is taken for a flatten, so a layer's filters are removed at one set of indices and the next layer's
inputs at another. The model still runs, with the right shapes, and computes something else.

The check: zero the removed channels in a copy of the unpruned model (weights and biases of every
layer whose output channels the group cuts, and of its BatchNorms), so they contribute nothing
downstream. Removing a channel that contributes nothing must not change the output, so the pruned
model has to agree with that masked copy. When it does not, each group is tried alone to name the
layer, and the pass refuses with the fix (``ignore:``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgec.errors import PassError

if TYPE_CHECKING:
    import torch.nn as nn

    from edgec.passes.prune_structured import ChannelPruner, Group, Plan

RELATIVE_TOLERANCE = 1e-3  # float32 sums over fewer terms differ by ~1e-6; a mis-cut by >1e-2


class _Unverifiable(Exception):
    """A group holds a layer whose other channels change when some are zeroed (LayerNorm…)."""


def _zero(graph, group) -> None:
    import torch.nn as nn

    for dep, idxs in group:
        m = dep.target.module
        if not graph.is_out_channel_pruning_fn(dep.handler) or not isinstance(m, nn.Module):
            continue
        if isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
            raise _Unverifiable(type(m).__name__)
        if isinstance(m, nn.modules.conv._ConvNd) and m.transposed:
            m.weight.data[:, idxs] = 0  # groups are rare here; a false alarm would only refuse
        elif isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            m.weight.data[idxs] = 0
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.affine:
                m.weight.data[idxs] = 0
            if m.running_mean is not None:
                m.running_mean[idxs] = 0  # so a non-affine BN also maps 0 to 0
        if getattr(m, "bias", None) is not None and isinstance(m.bias, nn.Parameter):
            m.bias.data[idxs] = 0


def _masked(pruner: ChannelPruner, model: nn.Module, groups, plan) -> nn.Module:
    import copy

    masked = copy.deepcopy(model)
    pruner.cut(masked, groups, plan, _zero)
    return masked


def _agree(a: nn.Module, b: nn.Module, x) -> bool:
    from edgec.passes.prune_graph import run_forward

    outs_a, outs_b = _tensors(run_forward(a, (x,))), _tensors(run_forward(b, (x,)))
    for u, v in zip(outs_a, outs_b, strict=True):
        scale = float(u.abs().max()) + 1e-12
        if float((u - v).abs().max()) > RELATIVE_TOLERANCE * scale:
            return False
    return True


def _tensors(out) -> list:
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    values = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else []
    return [t for o in values for t in _tensors(o)]


def verify_cut(pruner: ChannelPruner, model: nn.Module, pruned: nn.Module, groups: list[Group],
               plan: Plan) -> bool:
    """True when verified, False when the model has layers the check cannot reason about."""
    import torch

    from edgec.passes.prune_structured import Plan

    if not plan.remove:
        return True
    gen = torch.Generator().manual_seed(pruner.seed)
    x = torch.randn(2, *pruner.example.shape[1:], generator=gen)
    try:
        if _agree(_masked(pruner, model, groups, plan), pruned, x):
            return True
    except _Unverifiable:
        return False
    culprits = []
    for root in plan.remove:
        single = Plan({root: plan.remove[root]}, ())
        if not _agree(_masked(pruner, model, groups, single), pruner.apply(model, groups, single), x):
            culprits.append(root)
    names = culprits or list(plan.remove)
    raise PassError(
        f"prune: Torch-Pruning mis-tracks the channels of {', '.join(repr(n) for n in names)}: the "
        "pruned model runs but computes something else than the model with those channels removed "
        "(typically a channel shuffle or another reshape that permutes channels after the layer). "
        f"Keep these layers whole with ignore: [{', '.join(repr(n) for n in names)}]."
    )


def blame_forward(pruner: ChannelPruner, model: nn.Module, groups: list[Group], plan: Plan,
                  exc: Exception) -> PassError:
    """The error for a cut after which the model no longer runs, naming the group that breaks it."""
    import copy

    from edgec.passes.prune_graph import run_forward
    from edgec.passes.prune_structured import Plan

    for root in plan.remove:
        trial = copy.deepcopy(model)
        pruner.cut(trial, groups, Plan({root: plan.remove[root]}, ()), lambda graph, g: g.prune())
        try:
            run_forward(trial, (pruner.example,))
        except Exception as single:
            return PassError(
                f"prune: removing output channels of '{root}' breaks the model's forward pass "
                f"({type(single).__name__}: {single}). The model probably uses a fixed channel "
                "count after this layer (e.g. a hard-coded view/reshape) that Torch-Pruning cannot "
                f"see. Keep the layer whole with ignore: ['{root}']."
            )
    return PassError(f"prune: the pruned model no longer runs ({type(exc).__name__}: {exc}). "
                     "Add the layers named in the error to ignore:.")
