"""Supervised recovery training (``type: finetune``), typically right after pruning.

Trains on the recipe's training split with the shared loop in ``edgec.training``; the best epoch is
chosen on a hold-out slice of the training data, and the eval accuracy before and after is recorded
so the report shows what the fine-tuning recovered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from edgec.passes.base import PassConfig, PassContext, TorchPass
from edgec.passes.prune_unstructured import zeros_kept
from edgec.passes.registry import register_pass
from edgec.training import TrainingConfig, evaluate_accuracy, holdout, labelled_train_split, train

if TYPE_CHECKING:
    import torch.nn as nn


class FinetuneConfig(PassConfig, TrainingConfig):
    type: Literal["finetune"] = "finetune"
    epochs: int = Field(5, ge=1, le=10000, description="Passes over the training split.")

    def data_requirement(self) -> str | None:
        return "labelled training data (fine-tuning is supervised)"

    def trains_weights(self) -> bool:
        return True


@register_pass
class FinetunePass(TorchPass):
    name = "finetune"
    Config = FinetuneConfig

    def apply(self, model: nn.Module, ctx: PassContext) -> nn.Module:
        cfg: FinetuneConfig = self.config  # type: ignore[assignment]
        train_split, val = holdout(labelled_train_split(ctx.data, "finetune"), cfg.val_fraction, ctx.seed)
        before = evaluate_accuracy(model, ctx.data.eval)
        with zeros_kept(model) as sparse_layers:  # after unstructured pruning: no regrowth
            result = train(model, train_split, val, cfg, epochs=cfg.epochs, seed=ctx.seed,
                           progress=ctx.progress, description="fine-tuning")
        if sparse_layers:
            self.note(f"kept the zero weights of {sparse_layers} sparse layer(s) at zero")
        after = evaluate_accuracy(model, ctx.data.eval)
        self.details.update(
            epochs=result.history, best_epoch=result.best_epoch, best_val_accuracy=result.best_accuracy,
            train_samples=len(train_split), val_samples=0 if val is None else len(val),
            eval_accuracy_before=before, eval_accuracy_after=after,
        )
        if before is not None and after is not None:
            picked = f", kept epoch {result.best_epoch}" if result.best_epoch else ""
            self.note(f"fine-tuned {cfg.epochs} epochs{picked}: eval accuracy "
                      f"{before:.2%} → {after:.2%}")
        return model
