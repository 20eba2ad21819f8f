"""Weight sharing for the cluster pass: 1-D k-means per layer, and weights tied to their centroids.

k-means on one layer's weights is a 1-D problem: with the centroids sorted, a weight's nearest
centroid is found by binary search on the midpoints between them. Initialization follows Deep
Compression (Han et al. 2016, §3.1): ``linear`` spaces the centroids evenly over [min, max], which
keeps the few large weights (the ones that matter most) near centroids of their own; ``density``
(quantiles) crowds centroids where the weights are dense and rounds the large ones away;
``random`` starts from k of the weights. The paper found linear best; it is the default.

While the centroids are fine-tuned a clustered layer's weight is not a parameter: it is
``centroids[assignment]``, rebuilt before every forward (as torch.nn.utils.prune rebuilds a masked
weight). Autograd then sums the gradients of all weights of a cluster into its centroid — Deep
Compression's gradients grouped by centroid — and every weight stays exactly on a centroid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

ATTR_CENTROIDS, ATTR_ASSIGN = "weight_centroids", "weight_assignment"


@dataclass
class LayerClusters:
    """What clustering one layer produced (for the report)."""

    clusters: int  # k asked for this layer
    centroids: int  # centroids in use (<= k; fewer when the layer had fewer distinct values)
    zeros_pinned: bool  # exact zeros (from unstructured pruning) kept as a fixed centroid 0


def kmeans_1d(values: torch.Tensor, k: int, init: str, iterations: int,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(sorted centroids, index of each value's centroid) for a flat tensor; no empty cluster.

    Computed in float64 so that the means do not drift with large layers; the centroids come back
    as float32, the dtype the weights are exported in.
    """
    import torch

    v = values.detach().flatten().double()
    unique = torch.unique(v)
    if unique.numel() <= k:  # nothing to share: every distinct value is its own centroid
        return unique.float(), torch.searchsorted(unique, v).int()
    if init == "linear":
        c = torch.linspace(float(v.min()), float(v.max()), k, dtype=torch.float64)
    elif init == "density":
        ordered = v.sort().values
        c = torch.unique(ordered[torch.linspace(0, len(v) - 1, k).round().long()])
    else:  # random
        c = torch.unique(v[torch.randperm(len(v), generator=generator)[:k]])
    for _ in range(iterations):
        assign = _nearest(v, c)
        counts = torch.bincount(assign, minlength=len(c))
        sums = torch.bincount(assign, weights=v, minlength=len(c))
        keep = counts > 0
        # 1-D clusters are intervals, so their means stay in the centroids' order
        new = sums[keep] / counts[keep]
        if new.shape == c.shape and torch.equal(new, c):
            break
        c = new
    return c.float(), _nearest(v, c).int()


def _nearest(v: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.searchsorted((centroids[1:] + centroids[:-1]) / 2, v)


def share_weights(module: nn.Module, k: int, init: str, iterations: int,
                  generator: torch.Generator) -> LayerClusters:
    """Cluster ``module.weight`` into at most ``k`` shared values and tie it to the centroids.

    Exact zeros in a partly zero weight are the work of unstructured pruning: they stay zero (a
    fixed centroid that is not trained) and the other weights share k-1 centroids, so the layer
    still holds at most k distinct values and keeps its sparsity.
    """
    import torch
    import torch.nn as nn

    w = module.weight.detach()
    zero = w == 0
    pinned = bool(zero.any()) and not bool(zero.all())
    if pinned:
        centroids, idx = kmeans_1d(w[~zero], k - 1, init, iterations, generator)
        assign = torch.full(w.shape, len(centroids), dtype=torch.int32)  # index of the zero
        assign[~zero] = idx
    else:
        centroids, assign = kmeans_1d(w, k, init, iterations, generator)
        assign = assign.view(w.shape)
    del module._parameters["weight"]
    module.register_parameter(ATTR_CENTROIDS, nn.Parameter(centroids.to(w.dtype)))
    module.register_buffer(ATTR_ASSIGN, assign)
    module.weight_zero_pinned = pinned
    module.weight = _shared(module)
    module._cluster_hook = module.register_forward_pre_hook(_rebuild_weight)
    return LayerClusters(k, len(centroids), pinned)


def _shared(module: nn.Module) -> torch.Tensor:
    import torch

    table = getattr(module, ATTR_CENTROIDS)
    if module.weight_zero_pinned:
        table = torch.cat([table, table.new_zeros(1)])  # a constant: the zeros get no gradient
    assign = getattr(module, ATTR_ASSIGN)
    # Not table[assign]: its backward (index_put_ with accumulate) adds into the centroids with
    # atomic float adds from several threads once a layer has 32k weights, in a different order
    # each run, so the fine-tuned model differed run to run (4 runs, 4 ONNX hashes). index_select's
    # backward (index_add_ into a 1-D table) sums serially: same bits every run, and measured 10×
    # faster than the atomic adds on a 73k-weight layer (0.2 vs 2.2 ms, 2 threads).
    return torch.index_select(table, 0, assign.flatten()).view(assign.shape)


def _rebuild_weight(module: nn.Module, args) -> None:
    module.weight = _shared(module)


def is_shared(module: nn.Module) -> bool:
    return hasattr(module, ATTR_CENTROIDS)


def make_permanent(model: nn.Module) -> None:
    """Turn every tied weight back into a plain parameter holding the centroid values, so the
    model pickles, deep-copies and exports like any other."""
    import torch.nn as nn

    for module in model.modules():
        if not is_shared(module):
            continue
        weight = _shared(module).detach().clone()
        module._cluster_hook.remove()
        del module._cluster_hook, module.weight, module.weight_zero_pinned
        del module._parameters[ATTR_CENTROIDS], module._buffers[ATTR_ASSIGN]
        module.register_parameter("weight", nn.Parameter(weight))


def distinct_values(module: nn.Module) -> int:
    import torch

    return int(torch.unique(module.weight.detach()).numel())
