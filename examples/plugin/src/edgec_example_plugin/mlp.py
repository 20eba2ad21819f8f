"""``source: mlp``: a model source that builds a small multilayer perceptron."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edgec.plugins import ModelSourceConfig


class MlpModelConfig(ModelSourceConfig):
    """A Flatten → (Linear → ReLU)* → Linear network; random weights, seeded."""

    source: Literal["mlp"] = Field(description="A small MLP from the example plugin.")
    hidden: list[Annotated[int, Field(ge=1)]] = Field([64], description="Hidden layer widths.")
    num_classes: int = Field(10, ge=1, description="Output classes.")

    def build(self, base_dir, cache_dir, progress):
        import itertools
        import math

        import torch
        import torch.nn as nn

        torch.manual_seed(0)
        widths = [math.prod(self.input_shape[1:]), *self.hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(widths[-1], self.num_classes))
