"""Fake quantization for QAT, placed like onnxruntime's static QDQ quantizer places it.

The model is traced with torch.fx. Each Conv/Linear becomes a ``FakeQuantConv2d`` /
``FakeQuantLinear`` (per-output-channel symmetric int8 weights, range ±127 with the scale of
onnxruntime's symmetric weights), and one ``ActivationFakeQuant`` (uint8, asymmetric, EMA min/max
observer) is inserted per *tensor* that an int8 kernel reads or writes: the input of every
Conv/Linear, the end of every Conv/Linear[→BN][→ReLU] chain, and the inputs and (ReLU'd) output of
residual adds. A ReLU is inside the chain, so the quantized range starts at 0 exactly like
onnxruntime's QDQ graphs (where the Q after a Conv makes a following Relu redundant).

Exported with torch.onnx (TorchScript), each fake-quant becomes QuantizeLinear→DequantizeLinear
with constant scales, which onnxruntime fuses into QLinearConv / QGemm / QLinearAdd.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

if TYPE_CHECKING:
    import torch.fx as fx

# Symmetric int8 weights in [-127, 127], onnxruntime's symmetric weight range; 63 (7 bits) when
# reduce_range is on: x86 without VNNI sums u8×s8 pairs in saturating int16 (vpmaddubsw), and
# full-range weights then make onnxruntime's int8 kernels disagree with the trained model.
WEIGHT_QMAX, WEIGHT_QMAX_REDUCED = 127, 63
_RELUS = {F.relu, torch.relu}
_ADDS = {operator.add, torch.add}


def weight_fake_quant(w: torch.Tensor, qmax: int = WEIGHT_QMAX) -> torch.Tensor:
    """Per-output-channel symmetric int8 fake quantization (straight-through gradient)."""
    scale = (w.detach().abs().amax(dim=tuple(range(1, w.ndim))) / qmax).clamp_min(1e-12)
    zero = torch.zeros(scale.shape, dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -128, 127)


class FakeQuantConv2d(nn.Conv2d):
    weight_qmax = WEIGHT_QMAX

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, weight_fake_quant(self.weight, self.weight_qmax), self.bias)


class FakeQuantLinear(nn.Linear):
    weight_qmax = WEIGHT_QMAX

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight_fake_quant(self.weight, self.weight_qmax), self.bias)


class ActivationFakeQuant(nn.Module):
    """uint8 fake quantization with a min/max observer: exponential moving average of batch
    extremes (``momentum``) or running extremes (``momentum=None``).

    ``observe``: update the range from batches seen in training mode (or in calibration).
    ``enabled``: apply the rounding (off while the observer is first calibrated)."""

    def __init__(self, momentum: float | None = 0.01):
        super().__init__()
        self.momentum = momentum
        self.observe, self.enabled = True, True
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("seen", torch.tensor(False))

    def qparams(self) -> tuple[float, int]:
        lo, hi = min(float(self.lo), 0.0), max(float(self.hi), 0.0)  # zero must be exact
        scale = max((hi - lo) / 255.0, 1e-8)
        return scale, int(min(max(round(-lo / scale), 0), 255))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observe and (self.training or not bool(self.seen)):
            with torch.no_grad():
                lo, hi = x.detach().min(), x.detach().max()
                if bool(self.seen) and self.momentum is None:
                    lo, hi = torch.minimum(self.lo, lo), torch.maximum(self.hi, hi)
                elif bool(self.seen):
                    lo = self.lo + self.momentum * (lo - self.lo)
                    hi = self.hi + self.momentum * (hi - self.hi)
                self.lo.copy_(lo)
                self.hi.copy_(hi)
                self.seen.fill_(True)
        if not self.enabled:
            return x
        scale, zero = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


def prepare_qat(model: nn.Module, skip: set[str], weight_qmax: int = WEIGHT_QMAX,
                ) -> tuple[fx.GraphModule, list[str], list[tuple[str, str]]]:
    """fx-trace ``model`` and insert fake quantization; returns (module, quantized layers,
    (conv, bn) pairs to fold later). ``skip``: layer names (module paths) kept in float."""
    import torch.fx as fx

    gm = fx.symbolic_trace(model)
    modules = dict(gm.named_modules())
    graph = gm.graph
    quantized: dict[fx.Node, fx.Node] = {}
    layers, bn_pairs = [], []
    counter = [0]

    def ensure_fq(node: fx.Node) -> None:
        if node in quantized or (node.op == "call_module" and isinstance(
                modules.get(node.target), ActivationFakeQuant)):
            return
        if _keeps_grid(node, modules) and isinstance(node.args[0], fx.Node) \
                and node.args[0] in quantized:
            return  # max-pool / flatten of int8 values stays on the grid (onnxruntime propagates)
        name = f"act_fq_{counter[0]}"
        counter[0] += 1
        fq = ActivationFakeQuant()
        gm.add_submodule(name, fq)
        modules[name] = fq
        with graph.inserting_after(node):
            new = graph.call_module(name, (node,))
        node.replace_all_uses_with(new, delete_user_cb=lambda user: user is not new)
        quantized[node] = new
        quantized[new] = new

    def chain_end(node: fx.Node) -> fx.Node:
        """Follow single-user BN and ReLU after a layer or add."""
        while len(node.users) == 1:
            user = next(iter(node.users))
            mod = modules.get(user.target) if user.op == "call_module" else None
            if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d, nn.ReLU)) or (
                    user.op == "call_function" and user.target in _RELUS) or (
                    user.op == "call_method" and user.target == "relu"):
                if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)) and node.op == "call_module" \
                        and isinstance(modules.get(node.target), nn.Conv2d):
                    bn_pairs.append((node.target, user.target))
                node = user
            else:
                break
        return node

    for node in list(graph.nodes):
        mod = modules.get(node.target) if node.op == "call_module" else None
        is_layer = type(mod) in (nn.Conv2d, nn.Linear)
        is_add = node.op == "call_function" and node.target in _ADDS and all(
            isinstance(a, fx.Node) for a in node.args[:2])
        if is_layer and node.target not in skip:
            _swap_fake_quant(gm, node.target, mod)
            modules[node.target] = gm.get_submodule(node.target)
            modules[node.target].weight_qmax = weight_qmax
            layers.append(node.target)
            ensure_fq(node.args[0])
            ensure_fq(chain_end(node))
        elif is_add:
            for a in node.args[:2]:
                ensure_fq(a)
            ensure_fq(chain_end(node))
        elif is_layer:
            chain_end(node)  # still fold its BN
    graph.lint()
    gm.recompile()
    return gm, layers, bn_pairs


def _keeps_grid(node: fx.Node, modules: dict) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(node.target), (nn.MaxPool2d, nn.Flatten))
    if node.op == "call_function":
        return node.target in (torch.flatten, F.max_pool2d)
    return node.op == "call_method" and node.target in ("flatten", "view", "reshape")


def _swap_fake_quant(gm: nn.Module, path: str, mod: nn.Module) -> None:
    cls = FakeQuantConv2d if isinstance(mod, nn.Conv2d) else FakeQuantLinear
    new = cls.__new__(cls)
    new.__dict__ = mod.__dict__  # same parameters and settings, fake-quant forward
    parent, _, name = path.rpartition(".")
    setattr(gm.get_submodule(parent) if parent else gm, name, new)


def fold_batchnorms(gm: nn.Module, pairs: list[tuple[str, str]]) -> int:
    """Fold each BN's running statistics into its conv (BN becomes Identity); returns the count.
    After this, the weights fake-quantized in training are exactly the exported ones."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    done = 0
    for conv_path, bn_path in pairs:
        conv, bn = gm.get_submodule(conv_path), gm.get_submodule(bn_path)
        if not isinstance(bn, (nn.BatchNorm2d, nn.BatchNorm1d)):
            continue
        w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                    bn.eps, bn.weight, bn.bias)
        conv.weight, conv.bias = w, b
        parent, _, name = bn_path.rpartition(".")
        setattr(gm.get_submodule(parent) if parent else gm, name, nn.Identity())
        done += 1
    return done


def set_observers(gm: nn.Module, *, observe: bool | None = None, enabled: bool | None = None) -> None:
    for m in gm.modules():
        if isinstance(m, ActivationFakeQuant):
            if observe is not None:
                m.observe = observe
            if enabled is not None:
                m.enabled = enabled
