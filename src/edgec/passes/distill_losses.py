"""Distillation losses and feature taps, as plain functions reusable outside the distill pass.

- ``kd_loss``: Hinton et al. 2015 soft targets. KL(teacher_T || student_T) × T², where _T means
  softmax at temperature T. The T² keeps the gradient scale independent of T (soft-target
  gradients shrink as 1/T²), so ``alpha`` means the same thing at any temperature.
- ``attention_loss``: Zagoruyko & Komodakis 2017 attention transfer. A feature map's spatial
  attention is the channel-mean of its squared activations, flattened and L2-normalized; the loss
  is the squared distance between the student's and teacher's maps. It is channel-count free, so
  it needs no adapter.
- ``FeatureTaps``: forward hooks that record named modules' outputs during a normal forward pass,
  so the model's own ``forward`` stays untouched (and exportable).
- ``make_adapter``: a learned 1×1 conv (or linear) lifting student features to the teacher's
  channel count for plain MSE (FitNets, Romero et al. 2015).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgec.errors import PassError

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft-target loss KL(p_t || p_s) at ``temperature``, times T², averaged over the batch."""
    import torch.nn.functional as F

    t = float(temperature)
    log_p_s = F.log_softmax(student_logits / t, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / t, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * (t * t)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor | None, temperature: float, alpha: float,
                      label_smoothing: float = 0.0) -> torch.Tensor:
    """alpha × kd_loss + (1 − alpha) × cross-entropy on ``labels`` (skipped when alpha is 1).

    ``label_smoothing`` applies to the hard-label term only, as in plain fine-tuning; the soft
    targets are already smooth, so smoothing them again would just raise their temperature."""
    import torch.nn.functional as F

    loss = kd_loss(student_logits, teacher_logits, temperature)
    if alpha >= 1.0:
        return loss
    if labels is None:
        raise PassError("distill: alpha < 1 mixes in the hard-label loss, but the training data "
                        "has no labels. Set alpha: 1 (soft targets only) or use labelled data.")
    ce = F.cross_entropy(student_logits, labels, label_smoothing=label_smoothing)
    return alpha * loss + (1 - alpha) * ce


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """N×C×H×W → N×(H·W): channel-mean of squared activations, L2-normalized per sample."""
    import torch.nn.functional as F

    if features.dim() < 3:
        raise PassError(f"distill: attention transfer needs spatial feature maps (N×C×H×W), got "
                        f"shape {list(features.shape)}. Use loss: mse for vector features.")
    return F.normalize(features.pow(2).mean(1).flatten(1), dim=1)


def attention_loss(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """Squared L2 distance between normalized attention maps, averaged over the batch (0..4)."""
    s, t = match_spatial(student_features, teacher_features)
    return (attention_map(s) - attention_map(t.detach())).pow(2).sum(1).mean()


def feature_mse(student_features: torch.Tensor, teacher_features: torch.Tensor,
                adapter: nn.Module | None = None) -> torch.Tensor:
    """MSE between (adapted) student features and the teacher's, after matching spatial size."""
    import torch.nn.functional as F

    s = student_features if adapter is None else adapter(student_features)
    s, t = match_spatial(s, teacher_features)
    return F.mse_loss(s, t.detach())


def match_spatial(s: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool the larger of two N×C×H×W maps to the other's H×W (no-op when equal)."""
    import torch.nn.functional as F

    if s.dim() != 4 or s.shape[2:] == t.shape[2:]:
        return s, t
    if s.shape[2] * s.shape[3] > t.shape[2] * t.shape[3]:
        return F.adaptive_avg_pool2d(s, t.shape[2:]), t
    return s, F.adaptive_avg_pool2d(t, s.shape[2:])


def make_adapter(student_channels: int, teacher_channels: int, spatial: bool) -> nn.Module:
    """1×1 conv (spatial maps) or linear (vectors) from student to teacher channels; identity if equal."""
    import torch.nn as nn

    if student_channels == teacher_channels:
        return nn.Identity()
    if spatial:
        return nn.Conv2d(student_channels, teacher_channels, kernel_size=1, bias=False)
    return nn.Linear(student_channels, teacher_channels, bias=False)


class FeatureTaps:
    """Records the outputs of named submodules on every forward pass (``taps[name]``).

    Use as a context manager so the hooks are always removed, e.g.::

        with FeatureTaps(model, ["layer3"]) as taps:
            model(x); taps["layer3"]
    """

    def __init__(self, model: nn.Module, names: list[str], role: str = "model"):
        self.outputs: dict[str, torch.Tensor] = {}
        modules = dict(model.named_modules())
        self._handles = []
        for name in names:
            if name not in modules or not name:
                raise PassError(unknown_layer_message(name, list(modules), role))
            self._handles.append(modules[name].register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def record(module, inputs, output):
            self.outputs[name] = output
        return record

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.outputs[name]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> FeatureTaps:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def unknown_layer_message(name: str, known: list[str], role: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, [k for k in known if k], n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    examples = ", ".join(k for k in known if k and "." not in k)[:200]
    return (f"distill.features: the {role} has no layer '{name}'.{hint} Names are module paths as "
            f"in model.named_modules(); top-level ones here: {examples or 'none'}.")
