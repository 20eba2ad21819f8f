"""Tracing for channel pruning: what Torch-Pruning can see of a model, and which channels are pinned.

Pinned channels are the ones a cut must never change: those that reach the model's (or a traced
part's) output, and those that are its input. When Torch-Pruning cannot trace the whole model
(torchvision's ShuffleNetV2 fails inside its channel-shuffle reshape), the model is split into
the largest submodules that do trace, each pruned on its own with its boundary channels pinned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch.nn as nn


@dataclass
class Scope:
    """A part of the model traced on its own: the whole model, or a submodule when TP cannot
    trace the whole. Its inputs and outputs keep their channels."""

    prefix: str
    example: tuple


def name_matches(name: str, patterns) -> str | None:
    """The first pattern equal to ``name`` or fully matching it as a regex."""
    return next((p for p in patterns if p == name or re.fullmatch(p, name)), None)


def layer_types():
    from torch_pruning import ops

    return (ops.TORCH_CONV, ops.TORCH_LINEAR)


def is_depthwise(module) -> bool:
    import torch.nn as nn

    return isinstance(module, nn.modules.conv._ConvNd) and module.groups > 1 \
        and module.groups == module.out_channels


def build_graph(module, example: tuple):
    import torch_pruning as tp

    return tp.DependencyGraph().build_dependency(module, example_inputs=example, verbose=False)


def output_layers(graph) -> set:
    """Layers whose output channels reach a model (scope) output: pruning them changes its shape.

    Walks back from the graph's terminal nodes through channel-preserving ops (activations, norms,
    pooling, reshapes, concatenations, depthwise convs) and stops at the first conv/linear on each
    path. Works whatever the head is: a Linear, or a Conv2d classifier as in SqueezeNet.
    """
    return {node.module for node in _walk_to_layers(graph, backwards=True) if _is_layer(node)}


def input_coupled(graph, modules: set) -> set:
    """Modules whose channels are the scope's input channels (a BatchNorm or depthwise conv right
    after the input, as when a submodule is pruned on its own): cutting them would change the
    input the scope expects. Walks forward from the input until the first conv/linear."""
    # only ``modules``: not TP's own op nodes (e.g. a Linear's weight transpose)
    return {node.module for node in _walk_to_layers(graph, backwards=False)
            if not _is_layer(node) and node.module in modules}


def _is_layer(node) -> bool:
    return isinstance(node.module, layer_types()) and not is_depthwise(node.module)


def _walk_to_layers(graph, backwards: bool) -> list:
    """The nodes reached from the graph's ends (its outputs when ``backwards``, else its inputs)
    along paths that stop at the first conv/linear layer, which is included."""
    nodes = graph.module2node.values()
    stack = [n for n in nodes if not (n.outputs if backwards else n.inputs)]
    seen: dict = {}  # insertion-ordered, as the walk met them
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen[node] = None
        if not _is_layer(node):
            stack.extend(node.inputs if backwards else node.outputs)
    return list(seen)


def channel_groups(graph, group, modules: set) -> int:
    # Grouped (not depthwise) convs need every group to keep the same width: score per unit.
    counts = [1]
    for dep, _ in group:
        m = dep.target.module
        if m not in modules or is_depthwise(m):
            continue
        pruner = graph.get_pruner_of_module(m)
        if pruner is not None:
            out = graph.is_out_channel_pruning_fn(dep.handler)
            counts.append(pruner.get_out_channel_groups(m) if out else pruner.get_in_channel_groups(m))
    return max(counts)


def find_scopes(module: nn.Module, prefix: str, example: tuple, untraceable: dict) -> list[Scope]:
    """The largest parts of ``module`` Torch-Pruning can trace; failures go into ``untraceable``."""
    try:
        build_graph(module, example)
        return [Scope(prefix, example)]
    except Exception as exc:  # TP cannot trace this part: prune inside its children instead
        children = list(module.named_children())
        untraceable.setdefault(prefix or "<model>", f"{type(exc).__name__}: {exc}")
        if not children:
            return []
    inputs = _capture_inputs(module, example, [c for _, c in children])
    scopes = []
    for name, child in children:
        if child in inputs:
            scopes += find_scopes(child, f"{prefix}.{name}" if prefix else name, inputs[child], untraceable)
    return scopes


def run_forward(model: nn.Module, example: tuple) -> Any:
    import torch

    model.eval()
    with torch.no_grad():
        return model(*example)


def output_shapes(output) -> list:
    import torch

    if isinstance(output, torch.Tensor):
        return [tuple(output.shape)]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [s for o in output for s in output_shapes(o)]
    return []


def _capture_inputs(module: nn.Module, example: tuple, children: list) -> dict:
    """The positional inputs each child receives on one forward pass (the first call wins)."""
    import torch

    seen: dict = {}

    def hook(child, args):
        if child not in seen and all(isinstance(a, torch.Tensor) for a in args) and args:
            seen[child] = tuple(a.detach() for a in args)

    handles = [c.register_forward_pre_hook(hook) for c in children]
    try:
        run_forward(module, example)
    finally:
        for h in handles:
            h.remove()
    return seen


def channel_counts(model: nn.Module) -> dict[str, int]:
    """Output channels (features) of every conv and linear layer, by module name."""
    import torch.nn as nn

    return {name: m.out_channels if isinstance(m, nn.modules.conv._ConvNd) else m.out_features
            for name, m in model.named_modules() if isinstance(m, layer_types())}
