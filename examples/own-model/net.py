"""Your own model, as edgec sees it: any function (or class) that returns a torch.nn.Module.

The recipe points at it with `model: {source: python, callable: "net.py:build", kwargs: {...}}`.
"""

import torch.nn as nn


def build(num_classes: int = 10, width: int = 32) -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, width), *block(width, 2 * width), nn.MaxPool2d(2), *block(2 * width, 2 * width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes),
    )
