"""Data-free distillation: synthesize training inputs from the teacher alone (DeepInversion).

Yin et al. 2020, "Dreaming to Distill". Start from noise and optimize a batch of inputs so that
1. every BatchNorm layer of the teacher sees the same per-channel mean and variance on them as its
   running statistics remember from the real training data (the strongest cue: it pins down what
   real inputs look like layer by layer),
2. the teacher classifies each input confidently as its assigned target class (cross-entropy),
3. image priors keep them natural: total variation (smoothness) and an L2 penalty (bounded range).
Random shifts ("jitter") between steps keep the images from overfitting pixel-exact to the teacher.

A teacher without BatchNorm gives no statistics to match: synthesis then only has the class and
prior terms and its images are much weaker (``bn_layers`` in the result says so).

Everything here is a plain function of (teacher, settings) so other passes can reuse it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from edgec.config import ConfigModel
from edgec.errors import PassError

if TYPE_CHECKING:
    import numpy as np
    import torch
    import torch.nn as nn

    from edgec.passes.distill_metadata import Metadata
    from edgec.progress import Progress


class SynthesisConfig(ConfigModel):
    """How synthetic inputs are generated from the teacher (data-free distillation)."""

    FILE_FIELDS = ("metadata",)

    # Defaults measured on digits (benchmarks/distill_digits.py): with the student trained long
    # enough on them, 100 steps match the BN statistics as usefully as 200 (same student accuracy
    # at half the time), and 1,536 images, as in the feasibility check, cost ~1.5 min.
    images: int = Field(1536, ge=2, le=200_000, description="How many synthetic inputs to make.")
    iterations: int = Field(100, ge=1, le=100_000, description="Optimization steps per batch.")
    batch_size: int = Field(256, ge=2, le=65536, description="Inputs optimized together (BatchNorm "
                            "statistics are matched per batch, so not too small).")
    lr: float = Field(0.1, gt=0, le=10, description="Adam learning rate on the inputs.")
    bn_weight: float = Field(1.0, ge=0, description="Weight of the BatchNorm-statistics loss.")
    class_weight: float = Field(1.0, ge=0, description="Weight of the cross-entropy to target classes.")
    tv_weight: float = Field(1e-3, ge=0, description="Weight of the total-variation (smoothness) prior.")
    l2_weight: float = Field(1e-4, ge=0, description="Weight of the L2 prior on input values.")
    jitter: int = Field(1, ge=0, le=64, description="Random shift in pixels applied each step.")
    balance: bool = Field(True, description="Equal numbers of every class (else targets are drawn "
                          "at random).")
    method: Literal["deepinversion", "dream"] = Field(
        "deepinversion", description="deepinversion: match the teacher's BatchNorm statistics; "
        "dream: also match penultimate activations sampled from metadata (made where the data "
        "lives with `edgec metadata`; works for teachers without BatchNorm).",
    )
    metadata: str | None = Field(None, description="Metadata .npz for method: dream (relative to "
                                 "the recipe's folder).")
    feature_weight: float = Field(1.0, ge=0, description="Weight of the activation-matching loss "
                                  "(method: dream).")

    @model_validator(mode="after")
    def _dream_needs_metadata(self) -> SynthesisConfig:
        if (self.method == "dream") != (self.metadata is not None):
            raise ValueError("method: dream needs metadata: <file.npz> (from `edgec metadata`), and "
                             "metadata: is only used by method: dream")
        return self


@dataclass
class SyntheticSet:
    x: np.ndarray  # float32 N×C×H×W, in the model's input space
    y: np.ndarray  # int64 target classes
    bn_layers: int
    bn_loss_start: float  # mean BN-statistics loss at initialization …
    bn_loss_end: float  # … and after optimization (lower: closer to the real data's statistics)
    teacher_agreement: float  # fraction the teacher classifies as their target
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {"images": len(self.x), "bn_layers": self.bn_layers,
                "bn_loss_start": round(self.bn_loss_start, 5), "bn_loss_end": round(self.bn_loss_end, 5),
                "teacher_hits_target": round(self.teacher_agreement, 4), "seconds": round(self.seconds, 2)}


class BNStatistics:
    """Forward hooks on every BatchNorm that measure how far a batch's statistics are from the
    layer's running ones: sum over layers of ‖μ_batch − μ_run‖₂ + ‖σ²_batch − σ²_run‖₂."""

    def __init__(self, model: nn.Module):
        import torch.nn as nn

        self.losses: list[torch.Tensor] = []
        self.layers = [m for m in model.modules()
                       if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers]

    def _hook(self, module, inputs, output):
        x = inputs[0]
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dims)
        var = x.var(dims, unbiased=False)
        self.losses.append(
            (mean - module.running_mean).norm(2) + (var - module.running_var).norm(2))

    def pop(self):
        """The summed loss of the last forward pass (0 when there is no BatchNorm)."""
        total = sum(self.losses) if self.losses else None
        self.losses = []
        return total

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def bn_statistics_loss(teacher: nn.Module, x: torch.Tensor) -> float:
    """Mean per-layer BN-statistics distance of ``x`` through ``teacher`` (a diagnostic)."""
    import torch

    stats = BNStatistics(teacher)
    try:
        with torch.no_grad(), frozen(teacher):
            teacher(x)
        total = stats.pop()
    finally:
        stats.remove()
    return 0.0 if total is None else float(total) / len(stats.layers)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (anisotropic TV), per image."""
    if x.dim() < 4:
        return x.new_zeros(())
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).mean()
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).mean()
    return dh + dw


def target_classes(n: int, num_classes: int, balance: bool, generator) -> torch.Tensor:
    """``n`` class targets: round-robin (balanced) or uniformly random, then shuffled."""
    import torch

    y = torch.arange(n) % num_classes if balance else torch.randint(num_classes, (n,), generator=generator)
    return y[torch.randperm(n, generator=generator)]


def synthesize(teacher: nn.Module, input_shape: tuple[int, ...], num_classes: int,
               cfg: SynthesisConfig, seed: int, progress: Progress,
               metadata: Metadata | None = None) -> SyntheticSet:
    """DeepInversion: optimize ``cfg.images`` inputs against the frozen teacher (see module doc).

    With ``metadata`` (Dream Distillation) each input also gets a target penultimate activation
    sampled around its class's centroids, which the teacher's activation must match."""
    import time

    import numpy as np
    import torch
    import torch.nn.functional as F

    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    y_all = target_classes(cfg.images, num_classes, cfg.balance, generator)
    stats = BNStatistics(teacher)
    tap = None
    if metadata is not None:
        from edgec.passes.distill_metadata import InputTap

        tap = InputTap(teacher, metadata.layer)
        targets_all = metadata.sample(y_all, generator)
    xs, history = [], []
    bn_start = bn_end = 0.0
    batches = math.ceil(cfg.images / cfg.batch_size)
    try:
        with frozen(teacher), progress.task("synthesizing data", total=batches * cfg.iterations) as advance:
            for b in range(batches):
                y = y_all[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                x = torch.randn((len(y), *input_shape[1:]), generator=generator).requires_grad_(True)
                optimizer = torch.optim.Adam([x], lr=cfg.lr, betas=(0.5, 0.9))
                schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.iterations)
                for step in range(cfg.iterations):
                    shifted = jitter_shift(x, cfg.jitter, generator)
                    logits = teacher(shifted)
                    bn = stats.pop()
                    loss = cfg.class_weight * F.cross_entropy(logits, y)
                    if bn is not None:
                        loss = loss + cfg.bn_weight * bn
                    loss = loss + cfg.tv_weight * total_variation(x) + cfg.l2_weight * x.pow(2).mean()
                    if tap is not None:
                        target = targets_all[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                        if tap.value.shape != target.shape:
                            raise PassError(f"distill: the metadata's activations have {target.shape[1]} "
                                            f"values, the teacher's '{metadata.layer}' input "
                                            f"{tap.value.shape[1]}: it was made for another model.")
                        loss = loss + cfg.feature_weight * F.mse_loss(tap.value, target)
                    if not torch.isfinite(loss):
                        raise PassError(f"distill: data synthesis diverged (loss {loss.item()}). "
                                        f"Lower synthetic.lr (now {cfg.lr}).")
                    if step == 0 and bn is not None:
                        bn_start += float(bn.detach()) / len(stats.layers) * len(y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    advance(1, batch=b + 1, loss=loss.item())
                xs.append(x.detach())
                with torch.no_grad():
                    teacher(x)
                    bn = stats.pop()
                if bn is not None:
                    bn_end += float(bn) / len(stats.layers) * len(y)
                history.append({"batch": b + 1, "final_loss": round(loss.item(), 5)})
    finally:
        stats.remove()
        if tap is not None:
            tap.remove()
    x = torch.cat(xs)
    with torch.no_grad():
        hits = float((_predict(teacher, x) == y_all).float().mean())
    return SyntheticSet(x.numpy().astype(np.float32), y_all.numpy().astype(np.int64), len(stats.layers),
                        bn_start / cfg.images, bn_end / cfg.images, hits,
                        time.perf_counter() - start, history)


def jitter_shift(x: torch.Tensor, pixels: int, generator) -> torch.Tensor:
    """Roll the images by a random offset of up to ``pixels`` in each spatial direction."""
    import torch

    if pixels == 0 or x.dim() < 4:
        return x
    dh, dw = (int(v) for v in torch.randint(-pixels, pixels + 1, (2,), generator=generator))
    return torch.roll(x, shifts=(dh, dw), dims=(2, 3))


def _predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    import torch

    return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients for the duration, restored afterwards, so optimizing
    inputs through a model (or a teacher's forward in a training loss) never touches its weights."""
    training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(training)


def save_synthetic(result: SyntheticSet, folder: Path, stem: str) -> list[Path]:
    """Write ``<stem>.npz`` (x, y) and a ``<stem>.png`` grid of samples for a person to look at."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    npz = folder / f"{stem}.npz"
    np.savez_compressed(npz, x=result.x, y=result.y)
    paths = [npz]
    if result.x.ndim == 4 and result.x.shape[1] in (1, 3):
        paths.append(_save_grid(result, folder / f"{stem}.png"))
    return paths


def _save_grid(result: SyntheticSet, path: Path, per_class: int = 8) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt
    import numpy as np

    classes = sorted(set(result.y.tolist()))[:20]
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class, len(classes)), squeeze=False)
    for row, c in enumerate(classes):
        idx = np.flatnonzero(result.y == c)[:per_class]
        for col in range(per_class):
            ax = axes[row][col]
            ax.axis("off")
            if col < len(idx):
                img = result.x[idx[col]].transpose(1, 2, 0)
                img = (img - img.min()) / max(float(img.max() - img.min()), 1e-8)
                ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray")
        axes[row][0].set_title(str(c), fontsize=7, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
