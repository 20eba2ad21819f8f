"""Reference models trained by edgec itself on real bundled data: deterministic, cached, never downloaded.

On first use a zoo model is trained on the train split of scikit-learn's digits (see
``edgec.data.digits_splits``; seed 0), then its state dict is cached at
``<cache>/zoo/<name>-v<version>.pt``, where <cache> is the ``cache_dir`` argument, else
``$EDGEC_CACHE_DIR``, else ``~/.cache/edgec``. Bump an entry's ``version`` whenever its network or
training changes, so stale caches are never loaded.

This module's top level imports nothing heavy: recipe validation reads ``ZOO_NAMES`` and
``zoo_entry`` without loading torch.
"""

from __future__ import annotations

import difflib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import ModelLoadError
from edgec.progress import Progress

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


@dataclass(frozen=True)
class ZooEntry:
    name: str
    builder: str  # function in edgec.zoo_nets that builds the untrained network
    input_shape: tuple[int, ...]
    resize: int | None  # the digits were resized to this for training (None: native 8×8)
    epochs: int
    lr: float
    version: int
    description: str


_ENTRIES = {
    entry.name: entry
    for entry in (
        ZooEntry("digits_cnn", "digits_cnn", (1, 1, 8, 8), None, epochs=30, lr=0.05, version=1,
                 description="Small CNN (3 conv-BN-ReLU blocks, ~94k params) on 8×8 digits."),
        ZooEntry("resnet20_digits", "resnet20", (1, 1, 32, 32), 32, epochs=30, lr=0.1, version=1,
                 description="CIFAR-style ResNet-20 (~0.27M params) on digits resized to 32×32."),
        ZooEntry("resnet56_digits", "resnet56", (1, 1, 32, 32), 32, epochs=30, lr=0.1, version=1,
                 description="CIFAR-style ResNet-56 (~0.86M params) on digits resized to 32×32."),
    )
}
ZOO_NAMES: tuple[str, ...] = tuple(_ENTRIES)

BATCH_SIZE = 64


def zoo_entry(name: str) -> ZooEntry:
    """The zoo's record for ``name``. Raises ModelLoadError with a did-you-mean for unknown names."""
    try:
        return _ENTRIES[name]
    except KeyError:
        raise ModelLoadError(unknown_zoo_name_message(name)) from None


def unknown_zoo_name_message(name: str) -> str:
    close = difflib.get_close_matches(name, ZOO_NAMES, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"unknown zoo model '{name}'.{hint} The zoo has: {', '.join(ZOO_NAMES)}."


def eval_images_trained_on(data_seed: int) -> tuple[int, int]:
    """(how many eval images of the digits split ``data_seed`` are in the train split every zoo
    model learnt, how many eval images there are). Compared by pixels, at the native 8×8."""
    from edgec.data import digits_splits

    learnt = {image.tobytes() for image in digits_splits(None, seed=0).train.x}
    eval_x = digits_splits(None, seed=data_seed).eval.x
    return sum(image.tobytes() in learnt for image in eval_x), len(eval_x)


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """edgec's user-wide cache: ``cache_dir``, else $EDGEC_CACHE_DIR, else ~/.cache/edgec."""
    base = cache_dir or os.environ.get("EDGEC_CACHE_DIR") or Path.home() / ".cache" / "edgec"
    return Path(base).expanduser()


def zoo_cache_path(name: str, cache_dir: Path | str | None = None) -> Path:
    return cache_root(cache_dir) / "zoo" / f"{name}-v{zoo_entry(name).version}.pt"


def build_zoo_model(name: str) -> nn.Module:
    """The untrained network of zoo model ``name`` (initialized from the global torch RNG)."""
    from edgec import zoo_nets

    return getattr(zoo_nets, zoo_entry(name).builder)()


def load_zoo_model(name: str, cache_dir: Path | str | None = None,
                   progress: Progress | None = None) -> nn.Module:
    """The trained zoo model in eval mode: from the cache, or trained now and cached."""
    progress = progress or Progress()
    path = zoo_cache_path(name, cache_dir)
    model = _read_cache(name, path, progress)
    if model is None:
        progress.log(f"edgec: training zoo model '{name}' on first use (cached at {path})…")
        model, info = train_zoo_model(name, progress=progress)
        progress.log(f"edgec: trained '{name}' in {info['train_seconds']:.0f} s, "
                     f"eval accuracy {info['eval_accuracy']:.2%}")
        _write_cache(path, model, info, progress)
    return model.eval()


def train_zoo_model(name: str, *, epochs: int | None = None, seed: int = 0,
                    progress: Progress | None = None) -> tuple[nn.Module, dict]:
    """Train zoo model ``name`` from scratch, deterministically; returns (model, info).

    ``epochs`` overrides the entry's (tests train a tiny version). Leaves the caller's RNG state
    untouched. SGD with Nesterov momentum, one-cycle schedule (warm-up, then cosine annealing), and
    random sub-pixel shifts / small rotations of the digits, which are worth about a point here.
    """
    import torch
    import torch.nn.functional as F

    from edgec.data import digits_splits

    entry = zoo_entry(name)
    epochs = entry.epochs if epochs is None else epochs
    progress = progress or Progress()
    splits = digits_splits(entry.resize, seed=0)  # always seed 0: the split the docs promise
    x, y = torch.from_numpy(splits.train.x), torch.from_numpy(splits.train.y)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = build_zoo_model(name)
        opt = torch.optim.SGD(model.parameters(), lr=entry.lr, momentum=0.9, nesterov=True,
                              weight_decay=5e-4)
        steps_per_epoch = -(-len(x) // BATCH_SIZE)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=entry.lr, total_steps=max(1, epochs * steps_per_epoch), pct_start=0.15)
        background = float(x.min())  # a blank pixel after normalization
        with progress.task(f"training {name}", total=epochs) as advance:
            for _ in range(epochs):
                model.train()
                order = torch.randperm(len(x), generator=gen)
                seen = correct = 0
                total_loss = 0.0
                for i in range(0, len(x), BATCH_SIZE):
                    idx = order[i:i + BATCH_SIZE]
                    if len(idx) < 2:  # BatchNorm cannot train on a batch of one
                        continue
                    logits = model(_augment(x[idx], gen, background))
                    loss = F.cross_entropy(logits, y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    seen += len(idx)
                    total_loss += loss.item() * len(idx)
                    correct += int((logits.argmax(1) == y[idx]).sum())
                advance(1, loss=total_loss / max(seen, 1), train_acc=correct / max(seen, 1))
    model.eval()
    info = {
        "name": name, "version": entry.version, "epochs": epochs, "seed": seed,
        "train_seconds": round(time.perf_counter() - start, 2),
        "eval_accuracy": evaluate_accuracy(model, splits.eval.x, splits.eval.y),
        "torch": str(torch.__version__),  # TorchVersion would need unpickling
    }
    return model, info


def evaluate_accuracy(model: nn.Module, x, y, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on numpy arrays ``x``, ``y``."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(torch.as_tensor(x[i:i + batch_size]))
            correct += int((logits.argmax(1) == torch.as_tensor(y[i:i + batch_size])).sum())
    return correct / len(x)


def _augment(x: torch.Tensor, gen: torch.Generator, background: float) -> torch.Tensor:
    """Random shift (±1 original digit pixel), rotation (±10°) and scale (±8%) per image."""
    import math

    import torch
    import torch.nn.functional as F

    n = len(x)
    u = torch.rand(n, 4, generator=gen) * 2 - 1  # uniform in [-1, 1)
    angle, scale = u[:, 0] * math.radians(10), 1 + u[:, 1] * 0.08
    shift = u[:, 2:] * 0.25  # grid units: the image spans [-1, 1], so 0.25 = one pixel of eight
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with zeros; shift so that zero is the blank background
    return F.grid_sample(x - background, grid, align_corners=False) + background


def _read_cache(name: str, path: Path, progress: Progress) -> nn.Module | None:
    if not path.is_file():
        return None
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = build_zoo_model(name)
        model.load_state_dict(state["state_dict"])
    except Exception as exc:  # a damaged cache is ours to repair: retrain rather than fail
        progress.log(f"edgec: cached zoo model {path} is unreadable ({type(exc).__name__}); "
                     "retraining it.")
        return None
    return model


def _write_cache(path: Path, model: nn.Module, info: dict, progress: Progress) -> None:
    """Atomic write: a reader (or a second edgec training at the same time) sees the old file or
    the complete new one, never a partial file."""
    import torch

    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            torch.save({"state_dict": model.state_dict(), "meta": info}, f)
        os.replace(tmp, path)
    except OSError as exc:  # the model is trained and usable; only the cache failed
        progress.log(f"edgec: could not cache the zoo model at {path} ({exc}); it will be "
                     "retrained next time. Set EDGEC_CACHE_DIR to a writable folder.")
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
