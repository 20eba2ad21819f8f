"""The ``cluster`` pass: weight sharing, the "trained quantization" of Deep Compression.

Each conv/linear layer's weights are clustered with k-means into at most ``clusters`` shared values
(Han et al. 2016: linear initialization over [min, max]), then optionally fine-tuned with every
weight tied to its centroid, so training moves the centroids and never a single weight off them.

The model is exported as ordinary float32 ONNX: same raw size, same speed, but each layer holds at
most k distinct values, so the file compresses far better (the gzip'd size in the report). With a
codebook format (log2 k bits per weight plus a table) the saving would be realized without gzip;
the report gives that estimate too. BatchNorm is folded into the conv before clustering, because
the exporter folds it anyway and would otherwise rescale each channel's shared values.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from edgec.errors import PassError
from edgec.passes.base import PassConfig, PassContext, TorchPass
from edgec.passes.registry import register_pass
from edgec.training import TrainingConfig

if TYPE_CHECKING:
    import torch.nn as nn

Clusters = Annotated[int, Field(ge=2, le=256)]


class ClusterFinetuneConfig(TrainingConfig):
    """Fine-tuning of the shared centroids after clustering (0 epochs: k-means only)."""

    epochs: int = Field(0, ge=0, le=1000, description="Epochs of fine-tuning with the weights tied "
                        "to their centroids, on the recipe's training data (0: none).")
    # A centroid's gradient is the SUM of its weights' gradients (thousands of them in a big
    # layer), so SGD at a weight-sized lr overshoots (ResNet-20 digits, 16 clusters: SGD at 1e-3
    # fell to chance); Adam's per-parameter scaling does not care about that sum. 3 epochs of Adam
    # there: lr 1e-4 → 98.33%, 3e-4 → 98.70%, from 93.88% after k-means (fp32: 99.26%).
    optimizer: Literal["sgd", "adam", "adamw"] = Field(
        "adam", description="adam (default: insensitive to the size of a centroid's summed "
        "gradient), adamw, or sgd with momentum (then use a much lower lr).",
    )
    lr: float = Field(3e-4, gt=0, le=10, description="Peak learning rate of the centroids (and "
                      "of biases and norms, which train with them).")
    # The model starts close to converged, so the hold-out slice of the training data sits at
    # 100% from the first epoch and cannot pick an epoch (ties keep the first); the last epoch,
    # at the end of the cosine schedule, measured better.
    val_fraction: float = Field(
        0.0, ge=0, lt=0.5, description="Fraction of the training split held out to pick the best "
        "epoch. 0 (default): train on everything and keep the last epoch.",
    )
    weight_decay: float = Field(0.0, ge=0, le=1, description="L2 penalty; 0 by default, as decay "
                                "would pull every shared value towards zero at once.")


class ClusterConfig(PassConfig):
    type: Literal["cluster"] = "cluster"
    clusters: Clusters = Field(
        16, description="Shared values per layer (2..256): 16 means 4-bit indices, 256 8-bit. "
        "Fewer: smaller compressed file, more accuracy lost before fine-tuning.",
    )
    layers: dict[str, Clusters] = Field(
        default_factory=dict, description="Per-layer cluster counts overriding clusters for the "
        "layers they name (module name or regex matching whole names → k), e.g. {'fc': 64}.",
    )
    ignore: tuple[str, ...] = Field(
        (), description="Conv/linear layers left unclustered: module names as in named_modules(), "
        "or regular expressions matching whole names.",
    )
    init: Literal["linear", "density", "random"] = Field(
        "linear", description="Initial centroids: linear (evenly over [min, max]; keeps the rare "
        "large weights, Deep Compression's best), density (weight quantiles) or random weights.",
    )
    iterations: int = Field(50, ge=1, le=1000, description="Largest number of k-means (Lloyd) "
                            "iterations per layer; stops earlier when the centroids settle.")
    finetune: ClusterFinetuneConfig = Field(
        default_factory=ClusterFinetuneConfig, description="Fine-tune the centroids after "
        "clustering (recovers the accuracy k-means alone loses at 16 or fewer clusters).",
    )

    @model_validator(mode="after")
    def _check(self) -> ClusterConfig:
        for pattern in (*self.ignore, *self.layers):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"'{pattern}' is not a valid regular expression: {exc}") from None
        both = sorted(set(self.ignore) & set(self.layers))
        if both:
            raise ValueError(f"'{both[0]}' is both in ignore and in layers; keep one")
        return self

    def data_requirement(self) -> str | None:
        if self.finetune.epochs:
            return "labelled training data (finetune.epochs fine-tunes the centroids)"
        return None


@register_pass
class ClusterPass(TorchPass):
    name = "cluster"
    Config = ClusterConfig

    def apply(self, model: nn.Module, ctx: PassContext) -> nn.Module:
        import torch

        from edgec.passes.cluster_report import Snapshot, describe
        from edgec.passes.cluster_weights import make_permanent, share_weights
        from edgec.passes.fold_bn import fold_batchnorms
        from edgec.training import evaluate_accuracy, holdout, labelled_train_split, train

        cfg: ClusterConfig = self.config  # type: ignore[assignment]
        tune = cfg.finetune
        train_split = labelled_train_split(ctx.data, "cluster (finetune)") if tune.epochs else None
        targets = self._targets(model)
        gen = torch.Generator().manual_seed(ctx.seed)
        example = torch.randn(4, *ctx.input_shape[1:], generator=gen)
        accuracy = {"before": evaluate_accuracy(model, ctx.data.eval)}
        model, folded = fold_batchnorms(model.eval(), example, set(targets))
        before = Snapshot.of(model, targets)
        try:
            layers = {name: share_weights(model.get_submodule(name), k, cfg.init, cfg.iterations, gen)
                      for name, k in targets.items()}
            accuracy["clustered"] = evaluate_accuracy(model, ctx.data.eval)
            result = None
            if tune.epochs:
                fit, val = holdout(train_split, tune.val_fraction, ctx.seed)
                result = train(model, fit, val, tune, epochs=tune.epochs, seed=ctx.seed,
                               progress=ctx.progress, description="fine-tuning shared centroids")
        finally:
            make_permanent(model)  # also on failure: never leave hooks on a model
        if tune.epochs:
            accuracy["finetuned"] = evaluate_accuracy(model, ctx.data.eval)
        describe(self, cfg, before, Snapshot.of(model, targets), layers, folded, accuracy, result)
        return model.eval()

    def _targets(self, model: nn.Module) -> dict[str, int]:
        """Layer name → k for every conv/linear layer the config clusters."""
        from collections import Counter

        import torch.nn as nn

        from edgec.passes.prune_graph import layer_types, name_matches

        cfg: ClusterConfig = self.config  # type: ignore[assignment]
        candidates = {n: m for n, m in model.named_modules() if isinstance(m, layer_types())
                      and isinstance(getattr(m, "weight", None), nn.Parameter)}
        for field, patterns in (("ignore", cfg.ignore), ("layers", cfg.layers)):
            for pattern in patterns:
                if not any(pattern == n or re.fullmatch(pattern, n) for n in candidates):
                    shown = ", ".join(list(candidates)[:8]) + (", …" if len(candidates) > 8 else "")
                    raise PassError(f"cluster: '{pattern}' in {field} matches no conv/linear layer. "
                                    f"The layers are: {shown}.")
        # a weight tied between modules (shared embeddings) cannot be tied to two codebooks
        tied = Counter(id(m.weight) for m in candidates.values())
        targets, skipped = {}, 0
        for name, module in candidates.items():
            if name_matches(name, cfg.ignore) is not None:
                continue
            if tied[id(module.weight)] > 1:
                skipped += 1
                continue
            pattern = name_matches(name, cfg.layers)
            targets[name] = cfg.layers[pattern] if pattern is not None else cfg.clusters
        if skipped:
            self.note(f"skipped {skipped} layers whose weight is tied to another layer's")
        if not targets:
            raise PassError("cluster: nothing to cluster: every conv/linear layer is in ignore: (or "
                            "has a tied weight). Shorten ignore:.")
        return targets
