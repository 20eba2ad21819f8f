"""The ``prune`` pass: channel pruning, unstructured sparsity or block removal, one-shot or iterative.

How much to remove is given one way: ``amount`` (a fraction of channels / weights), ``target_macs``
or ``target_params`` (a budget, the way users think: the pass searches the smallest cumulative
ratio that meets it), or only per-layer ``layers:`` entries. An iterative ``schedule`` reaches the
amount (or budget) in equal steps with optional fine-tuning after each, which recovers far more
accuracy than one cut. The config lives in prune_config.py, the engines in prune_structured.py
(channels), prune_unstructured.py (weights) and prune_blocks.py (residual blocks); this module
holds the schedule and the budget search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgec.errors import PassError
from edgec.passes.base import PassContext, TorchPass
from edgec.passes.prune_config import PruneConfig, resolve_round_to
from edgec.passes.registry import register_pass

if TYPE_CHECKING:
    import torch.nn as nn

    from edgec.data import Split

@register_pass
class PrunePass(TorchPass):
    name = "prune"
    Config = PruneConfig

    def apply(self, model: nn.Module, ctx: PassContext) -> nn.Module:
        import torch

        from edgec.passes.prune_report import describe, measure
        from edgec.training import evaluate_accuracy, holdout, labelled_train_split, train

        cfg: PruneConfig = self.config  # type: ignore[assignment]
        gen = torch.Generator().manual_seed(ctx.seed)
        example = torch.randn(1, *ctx.input_shape[1:], generator=gen)
        model.eval()
        needs_data = cfg.importance == "taylor" or cfg.schedule.finetune_epochs > 0
        train_split = labelled_train_split(ctx.data, "prune") if needs_data else None
        before = measure(model, example)
        accuracy_before = evaluate_accuracy(model, ctx.data.eval)
        engine = self._engine(model, example, ctx.seed, ctx.data.train)
        metric, budget = self._budget(before)
        steps, history, ratio, verified = cfg.schedule.steps, [], 0.0, True
        for step in range(1, steps + 1):
            if cfg.importance == "taylor":
                _accumulate_gradients(model, train_split, cfg.taylor_samples, ctx.seed)
            scores = engine.score(model)
            model.zero_grad(set_to_none=True)
            if not scores:
                raise PassError(_nothing_to_prune(engine))
            if budget is None:
                ratio = (cfg.amount or 0.0) * step / steps
                plan = engine.plan(scores, ratio, step / steps)
                pruned = engine.apply(model, scores, plan)
            else:
                goal = before[metric] - (before[metric] - budget) * step / steps
                pruned, ratio, plan = _search(engine, model, scores, example, metric, goal, ratio,
                                              cfg.max_per_layer, step / steps)
            verified = engine.check(model, pruned, scores, plan) and verified
            model = pruned
            row = {"step": step, "ratio": round(ratio, 4), **measure(model, example)}
            if cfg.schedule.finetune_epochs:
                fit, val = holdout(train_split, cfg.schedule.val_fraction, ctx.seed)
                result = train(model, fit, val, cfg.schedule, epochs=cfg.schedule.finetune_epochs,
                               seed=ctx.seed + step, progress=ctx.progress,
                               description=f"fine-tuning after pruning step {step}/{steps}")
                row["val_accuracy"] = result.best_accuracy
            history.append(row)
        if cfg.structure == "unstructured":
            from edgec.passes.prune_unstructured import make_permanent

            make_permanent(model)
        describe(self, cfg, engine, before, measure(model, example), model, history, metric, budget)
        self.details["cut_verified"] = verified
        if accuracy_before is not None:
            after = evaluate_accuracy(model, ctx.data.eval)
            self.details.update(eval_accuracy_before=accuracy_before, eval_accuracy_after=after)
            self.note(f"eval accuracy {accuracy_before:.2%} → {after:.2%} after pruning"
                      + (" and fine-tuning" if cfg.schedule.finetune_epochs else ""))
        if not verified:
            self.note("could not prove the cut exact (LayerNorm/GroupNorm in a pruned group): "
                      "check the accuracy after pruning")
        return model

    def _engine(self, model, example, seed: int, train: Split | None = None):
        cfg: PruneConfig = self.config  # type: ignore[assignment]
        if cfg.structure == "block":
            from edgec.passes.prune_blocks import BlockPruner

            return BlockPruner(model, example, cfg.importance, cfg.ignore, train,
                               cfg.taylor_samples, seed)
        if cfg.structure == "unstructured":
            from edgec.passes.prune_unstructured import SparsitySettings, WeightPruner

            return WeightPruner(model, SparsitySettings(
                cfg.importance, cfg.global_ranking, cfg.max_per_layer, cfg.ignore, dict(cfg.layers),
            ), seed)
        from edgec.passes.prune_structured import ChannelPruner, ChannelSettings

        return ChannelPruner(model, example, ChannelSettings(
            cfg.importance, cfg.global_ranking, cfg.max_per_layer, resolve_round_to(cfg.round_to),
            cfg.ignore, dict(cfg.layers),
        ), seed)

    def _budget(self, before: dict) -> tuple[str, float | None]:
        """Which measurement the budget limits, and the budget as an absolute number."""
        cfg: PruneConfig = self.config  # type: ignore[assignment]
        if cfg.target_macs is not None:
            metric, value = "macs", cfg.target_macs
        elif cfg.target_params is not None:
            metric = "nonzero_params" if cfg.structure == "unstructured" else "params"
            value = cfg.target_params
        else:
            return "macs", None
        return metric, value * before[metric] if value <= 1 else value


def _search(engine, model, scores, example, metric: str, goal: float, lo: float, hi: float,
            progress: float):
    """The smallest cumulative ratio in [lo, hi] whose pruned model has ``metric`` <= ``goal``.

    Bisection over the ratio, each trial a one-shot cut of a copy; plans that cut the same number
    of units everywhere are measured once. Returns (pruned model, ratio, plan).
    """
    from edgec.passes.prune_report import measure
    from edgec.passes.prune_structured import Plan

    if measure(model, example)[metric] <= goal:
        return model, lo, Plan({}, ())
    seen: dict[tuple, float] = {}

    def trial(r: float):
        try:
            plan = engine.plan(scores, r, progress)
        except PassError:  # this ratio would empty a layer: treat as not allowed
            return None, float("inf")
        if plan.key in seen and seen[plan.key] > goal:
            return None, seen[plan.key]
        pruned = engine.apply(model, scores, plan)
        seen[plan.key] = measure(pruned, example)[metric]
        return pruned, seen[plan.key]

    best, value = trial(hi)
    if value > goal:
        reachable = "no ratio" if value == float("inf") else f"{value:,.0f} at max_per_layer {hi:g}"
        raise PassError(
            f"prune: cannot bring {metric} down to {goal:,.0f}; the most this pass may remove leaves "
            f"{reachable}. Raise max_per_layer, shorten ignore:, or relax the target."
        )
    best_r = hi
    for _ in range(16):  # about 10 halvings reach the 1e-3 resolution; 16 bounds the loop
        if hi - lo < 1e-3:
            break
        mid = (lo + hi) / 2
        pruned, value = trial(mid)
        if value <= goal:
            hi, best_r = mid, mid
            best = pruned if pruned is not None else best
        else:
            lo = mid
    plan = engine.plan(scores, best_r, progress)
    if best is None:  # the winning plan was measured before but not kept: rebuild it
        best = engine.apply(model, scores, plan)
    return best, best_r, plan


def _nothing_to_prune(engine) -> str:
    if engine.untraceable:
        where, why = list(engine.untraceable.items())[-1]  # the innermost module that failed
        return (f"prune: Torch-Pruning cannot trace '{where}' ({why}), and no part of the model "
                "that has prunable channels traces on its own. Use structure: unstructured, which "
                "needs no tracing, or restructure that module's forward (e.g. move a channel "
                "shuffle into its own nn.Module).")
    return ("prune: nothing to prune: every conv/linear layer either produces the model output or "
            "is in ignore:. Shorten ignore:, or use structure: unstructured.")


def _accumulate_gradients(model: nn.Module, split: Split, samples: int, seed: int) -> None:
    """Loss gradients over ``samples`` training examples, for Taylor importance (eval mode: the
    BatchNorm running statistics must not move)."""
    import numpy as np
    import torch

    model.eval()
    model.zero_grad(set_to_none=True)
    idx = np.random.default_rng(seed).permutation(len(split))[:samples]
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    for i in range(0, len(idx), 64):
        batch = idx[i:i + 64]
        x, y = torch.from_numpy(split.x[batch]), torch.from_numpy(split.y[batch])
        (loss_fn(model(x), y) / len(idx)).backward()
