"""Training the NoNN students: what the teacher shows them, and the loss they learn from.

The teacher runs once over the training inputs; its logits and final feature maps are kept, and
the students train on them for every epoch (the teacher is frozen and the inputs are not
augmented, so recomputing it per batch would give the same numbers at several times the cost).

All students and the head train together, as one system, on
- KD from the teacher's logits to the head's (``kd_loss``, mixed with the hard labels by alpha),
- for each student, transfer from *its community's* teacher filters only: attention transfer
  (Zagoruyko & Komodakis 2017) between the student's last feature map and the teacher's maps of
  those filters, and an MSE between the student's map lifted by a learned 1×1 adapter and those
  filters themselves (FitNets). The adapters exist only in training and are not exported.
So each student learns one coherent part of the teacher's final features, and the head learns to
combine the parts. The shared loop of ``edgec.training`` runs it (optimizer, schedule, best epoch on
a hold-out slice of the training data, progress).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgec.errors import PassError

if TYPE_CHECKING:
    from edgec.data import Split
    from edgec.partition_students import NonnSystem
    from edgec.passes.partition_settings import NonnSettings
    from edgec.progress import Progress
    from edgec.training import TrainResult


@dataclass
class TeacherView:
    """The teacher's outputs on the training inputs."""

    layer: str  # module whose output are the final-conv filters
    logits: np.ndarray  # N×classes
    features: np.ndarray  # N×C×H×W, that module's output

    @property
    def activations(self) -> np.ndarray:
        """N×C: each filter's spatial mean per sample (the co-activation graph's input)."""
        return self.features.mean((2, 3))


def feature_layer(teacher: nn.Module, input_shape: tuple[int, ...],
                  name: str | None = None) -> tuple[str, tuple, int]:
    """The teacher module whose output holds its final convolution filters: ``name``, or the
    last module to produce an N×C×H×W map larger than 1×1 (for a ResNet, its last stage after
    the final residual add and ReLU, i.e. what global pooling reads). Returns (name, its output
    shape at batch 1, the teacher's number of classes)."""
    from edgec.passes.distill_losses import unknown_layer_message

    modules = dict(teacher.named_modules())
    if name is not None and (not name or name not in modules):
        raise PassError(unknown_layer_message(name, list(modules), "teacher").replace(
            "distill.features", "partition.feature_layer"))
    seen: list[tuple[str, tuple]] = []
    hooks = [m.register_forward_hook(lambda mod, i, out, n=n: seen.append((n, _shape_of(out))))
             for n, m in modules.items() if n]
    try:
        with torch.no_grad():
            out = teacher.eval()(torch.zeros((1, *input_shape[1:])))
    finally:
        for h in hooks:
            h.remove()
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] < 2:
        raise PassError(f"partition (nonn): the teacher must be a classifier (logits N×classes), but "
                        f"it outputs {list(_shape_of(out)) or type(out).__name__}.")
    if name is not None:
        shape = next((s for n, s in seen if n == name), None)
        if shape is None or len(shape) != 4:
            raise PassError(f"partition.feature_layer: '{name}' outputs {list(shape or [])}, not an "
                            "N×C×H×W feature map.", hint="Name a convolutional layer or block.")
        return name, shape, int(out.shape[1])
    maps = [(n, s) for n, s in seen if len(s) == 4 and s[2] * s[3] > 1]
    if not maps:
        raise PassError("partition (nonn): the teacher has no layer with a spatial feature map "
                        "(N×C×H×W), so there are no convolution filters to share among students.",
                        hint="NoNN needs a CNN teacher; use method: layerwise for other models.")
    return maps[-1][0], maps[-1][1], int(out.shape[1])


def _shape_of(out) -> tuple:
    return tuple(out.shape) if isinstance(out, torch.Tensor) else ()


def teacher_view(teacher: nn.Module, x: np.ndarray, layer: str, batch_size: int = 256) -> TeacherView:
    from edgec.passes.distill_losses import FeatureTaps

    logits, maps = [], []
    with FeatureTaps(teacher, [layer], "teacher") as taps, torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits.append(teacher.eval()(torch.from_numpy(x[i:i + batch_size])).numpy())
            maps.append(taps[layer].numpy().copy())
    return TeacherView(layer, np.concatenate(logits), np.concatenate(maps))


def train_students(system: NonnSystem, communities: list[list[int]], view: TeacherView,
                   x: np.ndarray, labels: np.ndarray | None, val: Split | None,
                   settings: NonnSettings, seed: int, progress: Progress) -> TrainResult:
    """Train ``system`` in place (best hold-out epoch restored); returns the loop's result."""
    from edgec.data import Split
    from edgec.passes.distill_losses import attention_loss, distillation_loss, make_adapter
    from edgec.training import train

    logits_all = torch.from_numpy(view.logits)
    feats_all = torch.from_numpy(view.features)
    labels_all = None if labels is None else torch.from_numpy(labels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        adapters = nn.ModuleList(make_adapter(s.feature_dim, len(c), spatial=True)
                                 for s, c in zip(system.students, communities, strict=True))

    class Trainable(nn.Module):
        """The system plus the adapters, so the optimizer and the best-epoch copy cover both."""

        def __init__(self):
            super().__init__()
            self.system, self.adapters = system, adapters

        def forward(self, xb):
            return self.system(xb)

    def loss_fn(model, xb, rows):
        # ``rows`` are row numbers into the teacher's stored outputs (see the Split below)
        maps = [s.features(xb) for s in model.system.students]
        logits = model.system.head(*(F.adaptive_avg_pool2d(m, 1).flatten(1) for m in maps))
        hard = None if labels_all is None else labels_all[rows]
        loss = distillation_loss(logits, logits_all[rows], hard, settings.temperature, settings.alpha)
        for m, filters, adapter in zip(maps, communities, model.adapters, strict=True):
            target = feats_all[rows][:, filters]
            if settings.attention_weight:
                loss = loss + settings.attention_weight * attention_loss(m, target)
            if settings.feature_weight:
                lifted = adapter(m)
                if lifted.shape[2:] != target.shape[2:]:
                    lifted = F.adaptive_avg_pool2d(lifted, target.shape[2:])
                loss = loss + settings.feature_weight * F.mse_loss(lifted, target)
        return loss

    # The loop hands loss_fn the split's y per batch: here the row numbers, so the loss can look
    # up the teacher's outputs (and the labels) of exactly the rows in the batch.
    rows = Split(x, np.arange(len(x), dtype=np.int64))
    return train(Trainable(), rows, val, settings, epochs=settings.epochs, seed=seed,
                 progress=progress, loss_fn=loss_fn, description="training NoNN students")
