"""Depth pruning (``structure: block``): remove whole residual blocks, so y = x + f(x) becomes y = x.

Why it exists: narrowing channels stops paying on a small CNN long before its MACs run out. On
this CPU (onnxruntime, 1 thread) a conv is no cheaper below one 16-channel SIMD block, and every
node costs a fixed overhead, so ResNet-20 on 32×32 digits (40.5 MMACs, 0.97 ms) narrowed to
16/16/32 channels still ran 0.56 ms (1.7×) at 21 MMACs, while dropping two of its first stage's
three blocks (and narrowing the rest) ran 0.31 ms (3.2×) at 10 MMACs: benchmarks/depth_floor.py.

Which modules are blocks: those torch.fx can trace whose output is the sum of their own input and
something else (an identity shortcut), optionally passed through one elementwise activation
(ReLU and friends), as in torchvision's ResNet and MobileNetV2 blocks. Blocks with a projection
shortcut change the shape and are never candidates. Replacing ``act(x + f(x))`` by ``x`` is exact
for the shortcut and drops the activation, which is harmless when x already went through the same
activation (as in ResNets) and otherwise is what the recovery training after it is for.

Ranking: ``influence`` is ShortGPT's block influence (Men et al., 2024): 1 − the mean cosine
similarity between a block's input and output over training inputs. A block that barely changes
its input costs least to drop. ``random`` is the baseline. Ratios are fractions of the blocks found
at the start of the pass, so a schedule and a budget search speak in one unit, as with channels.
"""

from __future__ import annotations

import copy
import math
import operator
from typing import TYPE_CHECKING

from edgec.errors import PassError
from edgec.passes.prune_graph import name_matches
from edgec.passes.prune_structured import Plan

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from edgec.data import Split

_ADDS = {operator.add, operator.iadd}
_ACTIVATIONS = {"relu", "relu6", "gelu", "silu", "hardswish", "leaky_relu", "elu"}


def residual_blocks(model: nn.Module) -> list[str]:
    """Names of the modules whose forward returns [act](x + f(x)); the innermost when nested."""
    found = [name for name, module in model.named_modules() if name and _is_residual(module)]
    return [n for n in found if not any(o.startswith(n + ".") for o in found)]


def _is_residual(module: nn.Module) -> bool:
    import torch
    import torch.fx

    if not any(True for _ in module.parameters()):
        return False
    try:
        graph = torch.fx.symbolic_trace(module).graph
    except Exception:  # dynamic control flow, custom ops: not a block we can reason about
        return False
    inputs = [n for n in graph.nodes if n.op == "placeholder"]
    outputs = [n for n in graph.nodes if n.op == "output"]
    if len(inputs) != 1 or len(outputs) != 1 or not hasattr(outputs[0].args[0], "op"):
        return False
    node = outputs[0].args[0]
    if _activation(node, module):
        node = node.args[0]
    is_add = ((node.op == "call_function" and (node.target in _ADDS or node.target is torch.add))
              or (node.op == "call_method" and node.target in ("add", "add_")))
    return is_add and inputs[0] in [_through_identity(a, module) for a in node.args[:2]]


def _through_identity(node, module: nn.Module):
    """The node an ``nn.Identity`` shortcut passes on (fx keeps it as a call of a leaf module)."""
    import torch

    while (getattr(node, "op", None) == "call_module"
           and isinstance(module.get_submodule(node.target), torch.nn.Identity)):
        node = node.args[0]
    return node


def _activation(node, module: nn.Module) -> bool:
    if node.op == "call_module":
        return type(module.get_submodule(node.target)).__name__.lower() in _ACTIVATIONS
    name = getattr(node.target, "__name__", str(node.target)).rstrip("_").lower()
    return node.op in ("call_function", "call_method") and name in _ACTIVATIONS


class BlockPruner:
    """Same protocol as ChannelPruner: score → plan(ratio) → apply (a copy without the blocks)."""

    def __init__(self, model: nn.Module, example: torch.Tensor, importance: str, ignore,
                 train: Split | None, samples: int, seed: int):
        self.example, self.importance, self.train = example, importance, train
        self.samples, self.seed = samples, seed
        found = residual_blocks(model)
        self.protected = {n: "in ignore:" for n in found if name_matches(n, ignore)}
        self.blocks = [n for n in found if n not in self.protected]
        self.untraceable: dict[str, str] = {}
        self.influence: dict[str, float] = {}
        if not self.blocks:
            why = "every one is in ignore:" if found else "none was found"
            raise PassError(
                f"prune: structure: block removes residual blocks (modules whose output adds their "
                f"own input, x + f(x)), but {why}. Use structure: channel, "
                + ("or shorten ignore:." if found else "or check that torch.fx can trace the "
                   "blocks (no data-dependent control flow in their forward).")
            )

    def score(self, model: nn.Module) -> dict[str, float]:
        """Influence (or a seeded random score) of every block still in the model."""
        import torch

        present = [n for n in self.blocks if not isinstance(model.get_submodule(n),
                                                             torch.nn.Identity)]
        if self.importance == "random":
            gen = torch.Generator().manual_seed(self.seed)
            return {n: float(torch.rand(1, generator=gen)) for n in present}
        scores = _block_influence(model, present, self._inputs())
        self.influence.update(scores)
        return scores

    def _inputs(self) -> torch.Tensor:
        import numpy as np
        import torch

        if self.train is None or not len(self.train):
            raise PassError("prune: importance: influence needs training inputs to compare each "
                            "block's input and output; this run's data has none. Use data: "
                            "digits, an npz file or an image folder, or importance: random.")
        idx = np.random.default_rng(self.seed).permutation(len(self.train))[: self.samples]
        return torch.from_numpy(self.train.x[idx])

    def plan(self, scores: dict[str, float], ratio: float, progress: float = 1.0) -> Plan:
        gone = len(self.blocks) - len(scores)
        wanted = min(math.floor(len(self.blocks) * ratio + 0.5), len(self.blocks))
        order = sorted(scores, key=lambda n: (scores[n], n))
        remove = order[: max(wanted - gone, 0)]
        return Plan({n: [] for n in remove}, tuple(sorted(remove)))

    def apply(self, model: nn.Module, scores, plan: Plan) -> nn.Module:
        import torch

        pruned = copy.deepcopy(model)
        for name in plan.remove:
            parent, _, child = name.rpartition(".")
            setattr(pruned.get_submodule(parent) if parent else pruned, child, torch.nn.Identity())
        return pruned

    def check(self, model: nn.Module, pruned: nn.Module, scores, plan: Plan) -> bool:
        """The output shape must not change; the values do, by design (recovery training)."""
        import torch

        with torch.no_grad():
            before, after = model.eval()(self.example), pruned.eval()(self.example)
        if before.shape != after.shape:
            raise PassError(f"prune: removing blocks {', '.join(plan.remove)} changed the output "
                            f"shape {tuple(before.shape)} → {tuple(after.shape)}; put them in "
                            "ignore:.")
        return True

    def removed(self, model: nn.Module) -> list[str]:
        import torch

        return [n for n in self.blocks if isinstance(model.get_submodule(n), torch.nn.Identity)]


def _block_influence(model: nn.Module, names: list[str], inputs: torch.Tensor) -> dict[str, float]:
    """1 − mean cosine(input, output) per block over ``inputs`` (eval mode, batches of 64)."""
    import torch

    sums = dict.fromkeys(names, 0.0)
    hooks = []

    def hook(name):
        def record(_module, args, output):
            x, y = args[0].flatten(1).float(), output.flatten(1).float()
            sums[name] += float(torch.nn.functional.cosine_similarity(x, y, dim=1).sum())
        return record

    for name in names:
        hooks.append(model.get_submodule(name).register_forward_hook(hook(name)))
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(inputs), 64):
                model(inputs[i:i + 64])
    finally:
        for h in hooks:
            h.remove()
    return {n: round(1.0 - sums[n] / len(inputs), 6) for n in names}
