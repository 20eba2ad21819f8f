"""Fold BatchNorm into the convolution before it, in torch, the way the ONNX exporter will.

The TorchScript exporter folds every Conv → BatchNormalization pair (eval mode) into one Conv whose
weights are scaled per output channel. A pass that shapes the *values* of conv weights (clustering
to k shared values) must therefore work on the folded weights: k values scaled by 16 different
channel factors would export as up to 16·k. Pairs are found by running the model once with hooks
(no tracing, so any forward works): a BatchNorm whose input is exactly the output tensor of a conv,
each called once. The folded model is checked against the original on the same input; if another
consumer of a conv's output made the fold change the result, nothing is folded.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


def conv_bn_pairs(model: nn.Module, example: torch.Tensor, convs: set[str]) -> list[tuple[str, str]]:
    """(conv path, BatchNorm path) for each BN that directly normalizes one of ``convs``."""
    import torch
    import torch.nn as nn

    outputs: dict[int, tuple[str, torch.Tensor]] = {}  # the tensors are kept so ids stay unique
    calls: dict[str, int] = {}
    found: list[tuple[str, str]] = []
    handles = []

    def after_conv(name):
        def hook(module, args, out):
            calls[name] = calls.get(name, 0) + 1
            outputs[id(out)] = (name, out)
        return hook

    def before_bn(name):
        def hook(module, args):
            calls[name] = calls.get(name, 0) + 1
            source = outputs.get(id(args[0]))
            if source is not None and source[1] is args[0]:
                found.append((source[0], name))
        return hook

    for name, module in model.named_modules():
        if name in convs and type(module) in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
            handles.append(module.register_forward_hook(after_conv(name)))
        elif type(module) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
            handles.append(module.register_forward_pre_hook(before_bn(name)))
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for h in handles:
            h.remove()
    return [(c, b) for c, b in found if calls.get(c) == 1 and calls.get(b) == 1]


def fold_batchnorms(model: nn.Module, example: torch.Tensor, convs: set[str]) -> tuple[nn.Module, int]:
    """(model with each BN after one of ``convs`` folded into it and replaced by Identity, folds)."""
    import torch

    from edgec.passes.qat_modules import fold_batchnorms as fold_pairs  # the one fold loop

    pairs = conv_bn_pairs(model, example, convs)
    if not pairs:
        return model, 0
    folded = copy.deepcopy(model)
    fold_pairs(folded, pairs)
    with torch.no_grad():
        before, after = model.eval()(example), folded.eval()(example)
    if not isinstance(before, torch.Tensor):
        return model, 0  # a structured output: not checked, so not folded
    scale = float(before.abs().max()) + 1e-6
    if not torch.allclose(before, after, rtol=1e-4, atol=1e-4 * scale):
        return model, 0  # a conv output read elsewhere too: folding would change the model
    return folded, len(pairs)
