"""The ``prune`` pass: structured channel pruning or unstructured sparsity, one-shot or iterative.

How much to remove is given one way: ``amount`` (a fraction of channels / weights), ``target_macs``
or ``target_params`` (a budget, the way users think: the pass searches the smallest cumulative
ratio that meets it), or only per-layer ``layers:`` entries. An iterative ``schedule`` reaches the
amount (or budget) in equal steps with optional fine-tuning after each, which recovers far more
accuracy than one cut. The engines live in prune_structured.py and prune_unstructured.py; this
module holds the config, the schedule and the budget search.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from edgec.errors import PassError
from edgec.passes.base import PassConfig, PassContext, TorchPass
from edgec.passes.registry import register_pass
from edgec.training import TrainingConfig

if TYPE_CHECKING:
    import torch.nn as nn

    from edgec.data import Split

# Measured with benchmarks/round_to.py and benchmarks/prune_torchvision.py (onnxruntime 1.31, 1 thread,
# AVX-512 host). A 3×3 conv stack took 0.377 ms at 64 channels but 0.520 ms at 63 and 0.451 at 57,
# while 56 and 60 cost the same as 64: only multiples of 16 (MLAS's NCHWc block on AVX-512; 8 on
# AVX2) get the fast conv path; at or below one block latency simply follows MACs. Pruning 60% of
# torchvision nets: round_to 1 left MobileNetV2 1.06× and MobileNetV3-small 0.92× the unpruned
# speed; 16 beat 8 on ResNet-18 (4.66× vs 4.22×; at 40%: 2.58× vs 2.00×), 8 beat 16 on
# MobileNetV2 (2.65× vs 2.39×). The block size is the default; depthwise-heavy nets may prefer 8.
AVX512_BLOCK, AVX2_BLOCK = 16, 8

TargetValue = Annotated[float, Field(gt=0)]


class PruneScheduleConfig(TrainingConfig):
    """When to prune: one cut, or ``steps`` equal cuts with fine-tuning after each."""

    steps: int = Field(1, ge=1, le=100, description="Reach the amount (or budget) in this many "
                       "equal steps. 1: one-shot.")
    finetune_epochs: int = Field(0, ge=0, le=1000, description="Fine-tuning epochs after each "
                                 "step, on the recipe's training data (0: none). The training "
                                 "fields (lr, optimizer, …) of this section apply.")


class PruneConfig(PassConfig):
    model_config = ConfigDict(serialize_by_alias=True)  # `global` is a Python keyword

    type: Literal["prune"] = "prune"
    structure: Literal["channel", "unstructured", "block"] = Field(
        "channel", description="channel: physically remove filters and everything coupled to them "
        "(smaller and faster). unstructured: zero single weights (smaller when compressed, not "
        "faster: onnxruntime's CPU kernels are dense). block: remove whole residual blocks "
        "(x + f(x) becomes x): fewer nodes and MACs where channels can shrink no further.",
    )
    importance: Literal["l1", "l2", "taylor", "bn_scale", "influence", "random"] = Field(
        "l2", description="What to remove first: smallest l1/l2 weight norm, smallest |weight × "
        "gradient| on training data (taylor), smallest BatchNorm scale (bn_scale, channel only), "
        "the block that changes its input least on training data (influence: block only, and its "
        "default), or random (a baseline).",
    )
    amount: float | None = Field(
        None, gt=0, lt=1, description="Fraction of channels (or weights, or residual blocks) "
        "removed from each layer, or from all layers together with global: true. Channel MACs "
        "fall by about 1-(1-a)².",
    )
    target_macs: TargetValue | None = Field(
        None, description="Prune until MACs (batch 1) are at most this: an absolute count (> 1) "
        "or a fraction of the model's MACs (<= 1, e.g. 0.4). Channel pruning only.",
    )
    target_params: TargetValue | None = Field(
        None, description="Prune until parameters (non-zero ones for unstructured) are at most "
        "this: an absolute count (> 1) or a fraction of the current count (<= 1).",
    )
    global_ranking: bool = Field(
        False, alias="global", description="Rank channels (weights) across all layers instead of "
        "taking the same fraction from each: spends the removal where it hurts least.",
    )
    ignore: tuple[str, ...] = Field(
        (), description="Layers whose output channels (weights) are never pruned, or residual "
        "blocks never removed (structure: block): module names as in named_modules(), or regular "
        "expressions matching whole names. Layers producing the model output are always kept.",
    )
    layers: dict[str, Annotated[float, Field(ge=0, lt=1)]] = Field(
        default_factory=dict, description="Per-layer fraction, overriding amount and global "
        "ranking for the layers it names (name or regex → fraction), e.g. {'layer4.*': 0.7}.",
    )
    max_per_layer: float = Field(
        0.9, gt=0, le=1, description="Largest fraction removed from any one layer, whatever the "
        "ranking or budget asks (a layer always keeps at least one channel); for structure: "
        "block, the largest fraction of the residual blocks removed.",
    )
    round_to: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = Field(
        "auto", description="Channel counts above this are rounded to a multiple of it (channel "
        "only). auto: 16 on AVX-512 CPUs, else 8 — onnxruntime's fast conv path wants multiples "
        "of that block; with 1 (off), odd counts made a pruned MobileNet slower than the original. "
        "Depthwise-heavy nets measured ~10% faster with 8 than 16 on AVX-512, ResNets 10–29% slower.",
    )
    schedule: PruneScheduleConfig = Field(
        default_factory=PruneScheduleConfig, description="One-shot, or iterative with fine-tuning."
    )
    taylor_samples: int = Field(256, ge=1, description="Training samples that score "
                                "importance: taylor (loss gradients) and influence (block input "
                                "vs output).")

    @model_validator(mode="after")
    def _check(self) -> PruneConfig:
        how = [k for k in ("amount", "target_macs", "target_params") if getattr(self, k) is not None]
        if len(how) > 1:
            raise ValueError(f"give one of amount, target_macs, target_params (got {', '.join(how)})")
        if not how and not self.layers:
            raise ValueError("say how much to prune: amount, target_macs, target_params or layers")
        if self.structure == "block":
            _check_block(self)
        elif self.importance == "influence":
            raise ValueError("importance: influence ranks residual blocks: structure: block only")
        if self.structure == "unstructured":
            wrong = {"importance: bn_scale": self.importance == "bn_scale",
                     "target_macs (sparsity does not change MACs on dense kernels)":
                         self.target_macs is not None,
                     "round_to": "round_to" in self.model_fields_set}
            bad = [k for k, v in wrong.items() if v]
            if bad:
                raise ValueError(f"{bad[0]} only applies to structure: channel")
        for pattern in (*self.ignore, *self.layers):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"'{pattern}' is not a valid regular expression: {exc}") from None
        local = {"amount": None if self.global_ranking else self.amount, **self.layers}
        too_much = {k: v for k, v in local.items() if v is not None and v > self.max_per_layer}
        if too_much:
            k, v = next(iter(too_much.items()))
            raise ValueError(f"{k} {v} exceeds max_per_layer {self.max_per_layer}; raise max_per_layer")
        return self

    def trains_weights(self) -> bool:
        return self.schedule.finetune_epochs > 0

    def data_requirement(self) -> str | None:
        if self.structure == "block" and self.importance == "influence":
            return "training data (importance: influence compares each block's input and output)"
        if self.importance == "taylor":
            return "labelled training data (importance: taylor scores by loss gradients)"
        if self.schedule.finetune_epochs:
            return "labelled training data (schedule.finetune_epochs fine-tunes between steps)"
        return None


def _check_block(cfg: PruneConfig) -> None:
    """Block pruning ranks blocks by influence (its default) or at random; per-channel options
    mean nothing to it and are refused rather than ignored."""
    if "importance" not in cfg.model_fields_set:
        object.__setattr__(cfg, "importance", "influence")  # frozen model: set once, here
    if cfg.importance not in ("influence", "random"):
        raise ValueError(f"importance: {cfg.importance} ranks channels or weights; structure: "
                         "block takes influence (the default) or random")
    wrong = [k for k in ("round_to", "layers", "global_ranking") if k in cfg.model_fields_set]
    if wrong:
        name = "global" if wrong[0] == "global_ranking" else wrong[0]
        raise ValueError(f"{name} applies to channel or unstructured pruning, not structure: block")


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


def resolve_round_to(value: int | str) -> int:
    if value != "auto":
        return int(value)
    from edgec.cpu import cpu_flags

    return AVX512_BLOCK if "avx512f" in cpu_flags() else AVX2_BLOCK


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
