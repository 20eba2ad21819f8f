"""Channel pruning that physically removes filters, on Torch-Pruning's dependency graph.

Torch-Pruning (TP) answers *what is coupled* (a conv's filters, its BatchNorm, the next layer's
inputs, residual adds, concatenations, depthwise groups) and *how to cut* it. *How much* each
group loses is decided here instead of by TP's MetaPruner, which in TP 1.6 fails silently in
that step. Measured on a small ResNet: ``round_to`` rounds a small layer's channels down to zero and
then skips the layer, so ratio 0.6 with round_to=8 left 2.4× the MACs of ratio 0.5, and with
round_to=16 pruned nothing at all. By its code, global ranking that would empty a layer skips that
layer too, and ``max_pruning_ratio`` is only checked between steps. Here every group keeps at
least one channel (``round_to`` rounds to the nearest multiple, never below it; a count below one
multiple goes to the nearest halving of it: 8, 4, 2 or 1 for 16), caps hold within a step, and a
request that empties a layer is refused. Tracing lives in prune_graph.py, the proof that a cut
is exact in prune_verify.py.

Ratios are always cumulative fractions of the layer's channels *at the start of the pass*, so an
iterative schedule and a budget search both speak in the same unit.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edgec.errors import PassError
from edgec.passes.prune_graph import (
    build_graph,
    channel_counts,
    channel_groups,
    find_scopes,
    input_coupled,
    layer_types,
    name_matches,
    output_layers,
    output_shapes,
    run_forward,
)

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from edgec.passes.prune_graph import Scope


def units_kept(init: int, ratio: float) -> int:
    """What a cumulative ``ratio`` leaves of a layer's ``init`` units, before round_to."""
    return math.floor(init * (1 - ratio) + 0.5)


def sub_block_counts(step: int) -> tuple[int, ...]:
    """The counts round_to allows at or below one block: the block and its halvings (16, 8, 4, 2, 1);
    why, in prune_config.py next to AVX512_BLOCK."""
    counts = [step]
    while counts[-1] % 2 == 0:
        counts.append(counts[-1] // 2)
    return (*counts, 1) if counts[-1] != 1 else tuple(counts)


@dataclass
class ChannelSettings:
    importance: str  # l1 | l2 | taylor | bn_scale | random
    global_ranking: bool
    max_per_layer: float
    round_to: int
    ignore: tuple[str, ...] = ()
    layers: dict[str, float] = field(default_factory=dict)  # name/regex -> cumulative ratio


@dataclass
class Group:
    root: str  # full name of the layer whose output channels lead the group
    scope: str
    members: list[str]  # conv/linear layers whose output channels are cut together
    units: int  # prunable units now (channels / channel groups)
    ch_groups: int
    scores: torch.Tensor  # importance per unit; lowest removed first
    ratio: float | None  # per-layer override, cumulative


@dataclass
class Plan:
    remove: dict[str, list[int]]  # root -> unit indices to remove
    key: tuple  # equal keys prune identically (lets a budget search skip repeats)


def _importance(name: str):
    import torch_pruning as tp

    factories = {
        "l1": lambda: tp.importance.GroupMagnitudeImportance(p=1),
        "l2": lambda: tp.importance.GroupMagnitudeImportance(p=2),
        "taylor": tp.importance.GroupTaylorImportance,
        "bn_scale": tp.importance.BNScaleImportance,
        "random": tp.importance.RandomImportance,
    }
    return factories[name]()


class ChannelPruner:
    """Scores channel groups, plans how many each loses, and cuts them on a copy of the model."""

    def __init__(self, model: nn.Module, example: torch.Tensor, settings: ChannelSettings, seed: int):
        self.settings, self.seed = settings, seed
        self.example = example
        self.output_shapes = output_shapes(run_forward(model, (example,)))
        self.init_units: dict[str, int] = {}
        self.protected: dict[str, str] = {}  # layer -> why its output channels are kept
        self.untraceable: dict[str, str] = {}
        self.channels_before = channel_counts(model)
        self.prunable: set[str] = set()  # layers some group may cut (for the achieved ratio)
        self.scopes = find_scopes(model, "", (example,), self.untraceable)
        names = [n for n, m in model.named_modules() if isinstance(m, layer_types())]
        for pattern in (*settings.ignore, *settings.layers):
            if not any(name_matches(n, [pattern]) for n in names):
                import difflib

                close = difflib.get_close_matches(pattern, names, n=3)
                raise PassError(
                    f"prune: '{pattern}' (in ignore: or layers:) matches no conv/linear layer."
                    + (f" Did you mean {', '.join(close)}?" if close else "")
                    + " Names are module paths as in model.named_modules(), e.g. 'layer1.0.conv1'; "
                    "regular expressions must match the whole name."
                )

    def score(self, model: nn.Module) -> list[Group]:
        """Every prunable group of ``model`` with its importance scores."""
        import torch

        groups = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # importance: random
            for scope in self.scopes:
                groups += self._score_scope(model, scope)
        return groups

    def _score_scope(self, model, scope: Scope) -> list[Group]:
        sub = model.get_submodule(scope.prefix) if scope.prefix else model
        graph = build_graph(sub, scope.example)
        full = {m: f"{scope.prefix}.{n}" if scope.prefix else n for n, m in sub.named_modules()}
        outputs = output_layers(graph)
        for m in outputs:
            self.protected.setdefault(full[m], "produces the model output" if not scope.prefix
                                      else f"produces the output of '{scope.prefix}', pruned on its own")
        ignored = list(outputs) + list(input_coupled(graph, set(full))) + [m for m, n in full.items()
                                   if isinstance(m, layer_types()) and name_matches(n, self.settings.ignore)]
        importance = _importance(self.settings.importance)
        groups = []
        for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=layer_types()):
            scores = importance(group)
            if scores is None or len(scores) == 0:
                continue  # e.g. bn_scale on a group without BatchNorm
            root = full[group[0].dep.target.module]
            members = [full[dep.target.module] for dep, _ in group
                       if graph.is_out_channel_pruning_fn(dep.handler) and dep.target.module in full
                       and isinstance(dep.target.module, layer_types())]
            ch_groups = channel_groups(graph, group, set(full))
            scores = scores.detach().float().cpu().view(ch_groups, -1).mean(0)
            override = next((self.settings.layers[p] for n in members
                             if (p := name_matches(n, self.settings.layers)) is not None), None)
            self.init_units.setdefault(root, len(scores))
            self.prunable.update(members)
            groups.append(Group(root, scope.prefix, members, len(scores), ch_groups, scores, override))
        return groups

    def plan(self, groups: list[Group], ratio: float, progress: float = 1.0) -> Plan:
        """Which units to remove so each group (or the global pool) is down to ``ratio``.

        Per-layer overrides are scaled by ``progress`` (step / steps of a schedule)."""
        s = self.settings
        keep: dict[str, int] = {}
        pool = []
        for g in groups:
            init = self.init_units[g.root]
            min_keep = max(1, math.ceil(init * (1 - s.max_per_layer) - 1e-9))
            r = g.ratio * progress if g.ratio is not None else ratio
            if g.ratio is None and s.global_ranking:
                pool.append((g, min_keep))
                continue
            wanted = units_kept(init, r)
            if wanted < 1:
                raise PassError(
                    f"prune: a ratio of {r:g} would remove all {init} output channels of "
                    f"'{g.root}', and with them the layer. Lower amount (or this layer's entry in "
                    f"layers:), or keep the layer whole with ignore: ['{g.root}']."
                )
            keep[g.root] = min(g.units, max(wanted, min_keep))
        if pool:
            keep.update(_global_keep(pool, self.init_units, ratio))
        remove, key = {}, []
        for g in groups:
            k = self._rounded(keep[g.root], g.units, self.init_units[g.root])
            if k < g.units:
                remove[g.root] = sorted(int(i) for i in g.scores.argsort()[: g.units - k])
            key.append(k)
        return Plan(remove, tuple(key))

    def _rounded(self, keep: int, units: int, init: int) -> int:
        step = self.settings.round_to
        if step <= 1:
            return keep
        min_keep = max(1, math.ceil(init * (1 - self.settings.max_per_layer) - 1e-9))
        if keep < step:  # no count below one block gets the fast path; its halvings cost least
            allowed = [c for c in sub_block_counts(step) if c >= min_keep]
            return min(units, min(allowed, key=lambda c: (abs(c - keep), -c)))  # ties keep more
        nearest = math.floor(keep / step + 0.5) * step
        if nearest < min_keep:
            nearest = math.ceil(min_keep / step) * step
        return min(units, nearest)

    def apply(self, model: nn.Module, groups: list[Group], plan: Plan) -> nn.Module:
        """A pruned copy of ``model``; checks that it still runs and keeps its output shape."""
        from edgec.passes.prune_verify import blame_forward

        pruned = copy.deepcopy(model)
        self.cut(pruned, groups, plan, lambda graph, group: group.prune())
        try:
            shapes = output_shapes(run_forward(pruned, (self.example,)))
        except Exception as exc:
            raise blame_forward(self, model, groups, plan, exc) from exc
        if shapes != self.output_shapes:
            raise PassError(f"prune: the output shape changed from {self.output_shapes} to {shapes}. "
                            "Add the layers that produce the output to ignore:.")
        return pruned

    def check(self, model: nn.Module, pruned: nn.Module, groups: list[Group], plan: Plan) -> bool:
        """Prove the cut removed exactly the planned channels (see prune_verify)."""
        from edgec.passes.prune_verify import verify_cut

        return verify_cut(self, model, pruned, groups, plan)

    def cut(self, model: nn.Module, groups: list[Group], plan: Plan, action) -> None:
        """Call ``action(graph, tp_group)`` for each planned group, on ``model`` (in place)."""
        by_root = {g.root: g for g in groups}
        for scope in self.scopes:
            todo = [by_root[r] for r in plan.remove if by_root[r].scope == scope.prefix]
            if not todo:
                continue
            sub = model.get_submodule(scope.prefix) if scope.prefix else model
            graph = build_graph(sub, scope.example)
            for g in todo:
                layer = model.get_submodule(g.root)
                idxs = [u + k * g.units for k in range(g.ch_groups) for u in plan.remove[g.root]]
                fn = graph.get_pruner_of_module(layer).prune_out_channels
                group = graph.get_pruning_group(layer, fn, idxs)
                if not graph.check_pruning_group(group):
                    raise PassError(f"prune: Torch-Pruning refused to cut {len(idxs)} channels of "
                                    f"'{g.root}'. Add it to ignore: to leave it whole.")
                action(graph, group)


def _global_keep(pool, init_units: dict[str, int], ratio: float) -> dict[str, int]:
    """Rank units across all groups of the pool; remove the lowest until the pool is at ``ratio``."""
    import torch

    total_init = sum(init_units[g.root] for g, _ in pool)
    n_remove = sum(g.units for g, _ in pool) - math.floor(total_init * (1 - ratio) + 0.5)
    keep = {g.root: g.units for g, _ in pool}
    candidates = []  # (score, group index) for units a group may still give up
    for i, (g, min_keep) in enumerate(pool):
        removable = max(0, g.units - min_keep)
        candidates += [(float(v), i) for v in torch.sort(g.scores).values[:removable]]
    candidates.sort()
    for _, i in candidates[: max(0, n_remove)]:
        keep[pool[i][0].root] -= 1
    return keep


