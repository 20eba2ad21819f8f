"""The ``prune`` pass's recipe section: what to prune, how much, in which steps; what is refused.

Validated before any work: options that belong to another structure (``round_to`` for sparsity,
``layers`` for blocks, …) are refused rather than silently ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from edgec.passes.base import PassConfig
from edgec.training import TrainingConfig

# Measured with benchmarks/round_to.py and benchmarks/prune_torchvision.py (onnxruntime 1.31, 1 thread,
# AVX-512 host). A 3×3 conv stack took 0.377 ms at 64 channels but 0.520 ms at 63 and 0.451 at 57,
# while 56 and 60 cost the same as 64: only multiples of 16 (MLAS's NCHWc block on AVX-512; 8 on
# AVX2) get the fast conv path. Below one block no count does, and not every count pays for its
# MACs (benchmarks/sub_block_widths.py, ResNet-20 at 32×32, first stage narrowed from 16, speed vs the
# unpruned fp32 model, p1): fp32 16 1.56×, 14 1.25×, 12 1.54×, 9 1.93×, 8 2.04×, 4 2.69×; static
# int8 16 2.18×, 14 1.52×, 12 1.71×, 9 1.67×, 8 1.79×, 4 1.97× — so counts below a block are rounded to
# its halvings (8, 4, 2, 1), and int8 convs were fastest left at a whole block. Pruning 60% of
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
        "auto", description="Channel counts above this are rounded to a multiple of it, counts "
        "below it to a halving of it (8, 4, 2, 1 for 16; channel only). auto: 16 on AVX-512 CPUs, "
        "else 8 — onnxruntime's fast conv path wants multiples of that block; with 1 (off), odd "
        "counts made a pruned MobileNet slower than the original. "
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


def resolve_round_to(value: int | str) -> int:
    if value != "auto":
        return int(value)
    from edgec.cpu import cpu_flags

    return AVX512_BLOCK if "avx512f" in cpu_flags() else AVX2_BLOCK
