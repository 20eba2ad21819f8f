"""Your own model, built by your own code: edgec calls `build(**kwargs)` from the recipe.

Any function or class returning a torch.nn.Module works; weights can come from `weights:` (a
state dict file) or, as here, from training it yourself first (edgec's finetune pass does that).
"""

import torch.nn as nn


def build(width: int = 16, num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes),
    )
