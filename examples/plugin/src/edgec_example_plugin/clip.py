"""``type: clip_weights``: clip every Conv/Linear weight at a percentile of its own magnitudes.

A handful of outlier weights stretch a layer's int8 range and waste its resolution; clipping them
first often helps per-tensor quantization. A torch-stage pass, so it runs before export.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgec.passes import PassConfig, PassContext, TorchPass, register_pass


class ClipWeightsConfig(PassConfig):
    """Clip weights at a percentile of |w|, per layer."""

    type: Literal["clip_weights"] = "clip_weights"
    percentile: float = Field(99.9, gt=50, le=100, description="Per layer, weights whose magnitude "
                              "exceeds this percentile of |w| are clipped to it.")
    layers: Literal["conv", "linear", "all"] = Field("all", description="Which layers to clip.")


@register_pass
class ClipWeightsPass(TorchPass):
    """Clip Conv/Linear weights at a percentile of their magnitudes (outlier control)."""

    name = "clip_weights"
    Config = ClipWeightsConfig

    def apply(self, model, ctx: PassContext):
        import torch
        import torch.nn as nn

        cfg: ClipWeightsConfig = self.config  # type: ignore[assignment]
        kinds = {"conv": (nn.Conv2d,), "linear": (nn.Linear,), "all": (nn.Conv2d, nn.Linear)}
        clipped = total = 0
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, kinds[cfg.layers]):
                    w = module.weight
                    limit = torch.quantile(w.abs().flatten().float(), cfg.percentile / 100)
                    clipped += int((w.abs() > limit).sum())
                    total += w.numel()
                    w.clamp_(-limit, limit)
        self.details.update(clipped_weights=clipped, weights=total)
        self.note(f"clipped {clipped} of {total} weights at the {cfg.percentile:g}th percentile")
        return model
