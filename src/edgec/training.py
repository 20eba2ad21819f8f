"""The one supervised training loop, shared by finetune, prune schedules, distillation and QAT.

A pass describes *how* to train with a ``TrainingConfig`` (its family base config) and calls
``train``. The loop is deterministic for a given seed (its own generator shuffles the data; the
global RNG, used by dropout, is seeded inside a fork so the caller's state is untouched).

The best epoch is picked on a hold-out slice of the *training* split, never on the eval split:
choosing a checkpoint by its eval accuracy and then reporting that same accuracy would overstate
it. ``loss_fn(model, x, y)`` lets distillation swap in its own loss while keeping the rest.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from edgec.config import ConfigModel
from edgec.errors import DataError, PassError

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from edgec.data import DataSplits, Split
    from edgec.progress import Progress

LossFn = Callable[["nn.Module", "torch.Tensor", "torch.Tensor | None"], "torch.Tensor"]


class TrainingConfig(ConfigModel):
    """How to train: optimizer, learning rate and its schedule. Passes that train inherit it."""

    lr: float = Field(0.01, gt=0, le=10, description="Peak learning rate.")
    optimizer: Literal["sgd", "adam", "adamw"] = Field(
        "sgd", description="sgd (with momentum; the usual choice for recovering conv nets), adam "
        "or adamw (decoupled weight decay).",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (ignored by adam/adamw).")
    weight_decay: float = Field(5e-4, ge=0, le=1, description="L2 penalty / decoupled decay.")
    batch_size: int = Field(64, ge=1, le=65536, description="Training batch size.")
    lr_schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="cosine: decay the learning rate to 0 over the run (per batch); "
        "constant: keep it fixed.",
    )
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="Cross-entropy label smoothing (0: none)."
    )
    val_fraction: float = Field(
        0.1, ge=0, lt=0.5, description="Fraction of the training split held out to pick the best "
        "epoch (the eval split is never used for that, so reported accuracy stays unbiased). "
        "0: train on everything and keep the last epoch.",
    )


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # [{epoch, loss, val_accuracy}]
    best_accuracy: float | None = None  # on the hold-out slice
    best_epoch: int | None = None  # 1-based; None when nothing picked (no hold-out / no epochs)
    seconds: float = 0.0


def labelled_train_split(data: DataSplits, purpose: str) -> Split:
    """The training split, or a DataError saying why ``purpose`` cannot run on this data."""
    if data.train is None or data.train.y is None or len(data.train) == 0:
        raise DataError(
            f"{purpose} needs labelled training data, but this run's data has "
            f"{'no training split' if data.train is None else 'no labels'}. Use data: digits, "
            "an npz file with x and y arrays, or an imagefolder."
        )
    return data.train


def holdout(split: Split, fraction: float, seed: int) -> tuple[Split, Split | None]:
    """Split off a seeded random ``fraction`` of ``split`` for validation."""
    import numpy as np

    from edgec.data import Split

    n_val = round(len(split) * fraction)
    if n_val < 1 or len(split) - n_val < 1:
        return split, None
    order = np.random.default_rng(seed).permutation(len(split))
    val, rest = order[:n_val], order[n_val:]
    y = split.y

    def take(idx):
        return Split(split.x[idx], None if y is None else y[idx])

    return take(rest), take(val)


def evaluate_accuracy(model: nn.Module, split: Split | None, batch_size: int = 256) -> float | None:
    """Top-1 accuracy of ``model`` on ``split``; None when the split is missing or unlabelled."""
    import torch

    if split is None or split.y is None or len(split) == 0:
        return None
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in split.batches(batch_size):
            pred = model(torch.from_numpy(x)).argmax(1)
            correct += int((pred == torch.from_numpy(y)).sum())
    model.train(was_training)
    return correct / len(split)


def _optimizer(model: nn.Module, cfg: TrainingConfig):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def train(
    model: nn.Module, train_split: Split, val: Split | None, cfg: TrainingConfig, *, epochs: int,
    seed: int, progress: Progress, loss_fn: LossFn | None = None, description: str = "training",
) -> TrainResult:
    """Train ``model`` in place for ``epochs``; restores the best epoch on ``val`` if labelled.

    The model is left in eval mode. ``loss_fn`` defaults to (label-smoothed) cross-entropy, which
    needs labels; a custom one may accept ``y=None``.
    """
    import torch

    result = TrainResult()
    if epochs == 0:
        return result
    if loss_fn is None:
        if train_split.y is None:
            raise DataError(f"{description}: cross-entropy training needs labels, the split has none.")
        criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

        def loss_fn(m, x, y):
            return criterion(m(x), y)

    start = time.perf_counter()
    n = len(train_split)
    per_epoch = math.ceil(n / cfg.batch_size)
    total = epochs * per_epoch
    optimizer = _optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        (lambda step: 0.5 * (1 + math.cos(math.pi * step / total))) if cfg.lr_schedule == "cosine"
        else (lambda step: 1.0),
    )
    generator = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(train_split.x)
    y_all = None if train_split.y is None else torch.from_numpy(train_split.y)
    best_state = None
    shown: dict[str, float] = {}
    with torch.random.fork_rng(devices=[]), progress.task(description, total=total) as advance:
        torch.manual_seed(seed)  # dropout and friends, inside the fork
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(n, generator=generator)
            loss_sum, seen = 0.0, 0
            for i in range(0, n, cfg.batch_size):
                idx = order[i:i + cfg.batch_size]
                if len(idx) < 2 and seen:  # BatchNorm cannot train on a batch of one
                    advance(1)
                    continue
                loss = loss_fn(model, x_all[idx], None if y_all is None else y_all[idx])
                if not torch.isfinite(loss):
                    raise PassError(
                        f"{description}: the loss became {loss.item()} in epoch {epoch}; training "
                        f"diverged. Lower lr (now {cfg.lr}) or use optimizer: adamw."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += loss.item() * len(idx)
                seen += len(idx)
                advance(1, epoch=epoch, loss=loss_sum / seen, **shown)
            accuracy = evaluate_accuracy(model, val)
            if accuracy is not None:  # the last hold-out accuracy stays beside the bar
                shown["val_acc"] = accuracy
                advance(0, epoch=epoch, loss=loss_sum / max(seen, 1), **shown)
            result.history.append({"epoch": epoch, "loss": round(loss_sum / max(seen, 1), 5),
                                   "val_accuracy": accuracy})
            # Ties go to the later epoch: a hold-out of ~100 images moves in 1% steps, so ties are
            # common, and the later epoch has trained longer at a lower (cosine) learning rate.
            # Taking the first measured 1-3 points worse on the eval split of the pruned ResNet.
            if accuracy is not None and (result.best_accuracy is None or accuracy >= result.best_accuracy):
                result.best_accuracy, result.best_epoch = accuracy, epoch
                best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = round(time.perf_counter() - start, 3)
    return result
