"""Settings of the NoNN students (``method: nonn`` of the partition pass and `edgec partition`).

Kept apart from the pass and from ``edgec.partition_nonn`` so both can import it without a cycle
through the pass registry, and without torch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgec.passes.distill_datafree import SynthesisConfig
from edgec.training import TrainingConfig


class NonnSettings(TrainingConfig):
    """How the NoNN students are found and trained (method: nonn only)."""

    epochs: int = Field(30, ge=1, le=10000, description="Training epochs of the students and head.")
    lr: float = Field(0.05, gt=0, le=10, description="Peak learning rate.")
    temperature: float = Field(4.0, gt=0, le=100, description="Softmax temperature of the KD loss.")
    alpha: float = Field(0.9, ge=0, le=1, description="Weight of the KD loss against cross-entropy "
                         "on the labels (1: soft targets only, no labels needed).")
    attention_weight: float = Field(1.0, ge=0, le=1e6, description="Weight of attention transfer "
                                    "from each student's community of teacher filters.")
    feature_weight: float = Field(0.1, ge=0, le=1e6, description="Weight of the MSE between each "
                                  "student's features (through a 1×1 adapter) and its filters.")
    feature_layer: str | None = Field(None, description="Teacher module whose output holds the final "
                                      "conv filters (default: the last one with a spatial map).")
    max_width: int = Field(256, ge=1, le=4096, description="Largest student width tried.")
    data: Literal["auto", "real", "synthetic"] = Field(
        "auto", description="Training inputs: real (the training split), synthetic (made from the "
        "teacher, data-free), auto (real when there is a training split).")
    synthetic: SynthesisConfig = Field(default_factory=SynthesisConfig,
                                       description="Data-free synthesis settings (data: synthetic).")
