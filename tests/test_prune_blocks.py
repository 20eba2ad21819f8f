"""Depth pruning (structure: block): which modules are residual blocks, which go first, what the
pass refuses, and that the smaller model keeps its output shape and exports."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from pydantic import ValidationError
from test_prune import SHAPE, Block, make_model, onnx_matches_torch, run

from edgec.data import DataSplits, Split
from edgec.errors import PassError
from edgec.passes.prune_blocks import residual_blocks
from edgec.passes.prune_config import PruneConfig

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Inverted(nn.Module):  # MobileNetV2-style: x + f(x), no activation after the add
    def __init__(self, c):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(c, 2 * c, 1), nn.ReLU6(), nn.Conv2d(2 * c, c, 1))

    def forward(self, x):
        return x + self.f(x)


class Plain(nn.Module):  # same shape in and out, but no shortcut: not a block
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x))


class DeepNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.stage = nn.Sequential(Block(16, 16), Block(16, 16), Block(16, 16), Inverted(16))
        self.plain = Plain(16)
        self.down = Block(16, 32, stride=2)  # projection shortcut: changes the shape
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(self.down(self.plain(self.stage(self.stem(x)))).mean((2, 3)))


def deep_net():
    return make_model(DeepNet)


@pytest.fixture(scope="module")
def data() -> DataSplits:  # random inputs: influence compares a block's input and output only
    x = np.random.default_rng(1).standard_normal((64, *SHAPE[1:])).astype(np.float32)
    y = np.arange(64, dtype=np.int64) % 10
    return DataSplits(train=Split(x, y), calib=Split(x), eval=Split(x[:32], y[:32]), num_classes=10)


def test_finds_identity_shortcut_blocks_only():
    assert residual_blocks(deep_net()) == ["stage.0", "stage.1", "stage.2", "stage.3"]


def test_torchvision_blocks_are_found():
    torchvision = pytest.importorskip("torchvision")
    assert residual_blocks(torchvision.models.resnet18()) == [
        "layer1.0", "layer1.1", "layer2.1", "layer3.1", "layer4.1"]
    assert len(residual_blocks(torchvision.models.mobilenet_v2())) == 10


def test_least_influential_blocks_go_first_and_the_model_exports(data, tmp_path):
    model = deep_net()
    with torch.no_grad():  # stage.1's branch outputs zero: it changes nothing, so it goes first
        model.stage[1].bn2.weight.zero_()
        model.stage[1].bn2.bias.zero_()
    pruned, p = run(model, data, tmp_path, structure="block", amount=0.25)
    blocks = p.details["blocks"]
    assert [n for n, b in blocks.items() if b["removed"]] == ["stage.1"]
    assert blocks["stage.1"]["influence"] == pytest.approx(0.0, abs=1e-6)
    assert min(b["influence"] for n, b in blocks.items() if n != "stage.1") > 0.01
    assert isinstance(pruned.stage[1], nn.Identity)
    assert p.details["macs_after"] < p.details["macs_before"]
    assert p.details["params_after"] < p.details["params_before"]
    x = torch.randn(3, *SHAPE[1:])
    with torch.no_grad():  # removing a block that added zero (after a ReLU) changes nothing
        np.testing.assert_allclose(pruned(x).numpy(), model(x).numpy(), atol=1e-5)
    onnx_matches_torch(pruned, tmp_path / "pruned.onnx")
    assert "removed 1 of 4 residual blocks (stage.1)" in " ".join(p.notes)


def test_amount_target_and_ignore(data, tmp_path):
    model = deep_net()
    pruned, p = run(model, data, tmp_path, structure="block", amount=0.5, ignore=["stage.0"])
    removed = [n for n, b in p.details["blocks"].items() if b["removed"]]
    assert len(removed) == 2 and "stage.0" not in removed  # half of the 3 it may remove, rounded
    assert p.details["protected"] == {"stage.0": "in ignore:"}
    pruned, p = run(model, data, tmp_path, structure="block", target_macs=0.8,
                    schedule={"steps": 2})
    assert p.details["macs_after"] <= 0.8 * p.details["macs_before"]
    assert pruned(torch.randn(2, *SHAPE[1:])).shape == (2, 10)


def test_random_ranking_is_seeded(data, tmp_path):
    model = deep_net()
    picks = [[n for n, b in run(model, data, tmp_path, structure="block", importance="random",
                                amount=0.5)[1].details["blocks"].items() if b["removed"]]
             for _ in range(2)]
    assert picks[0] == picks[1] and len(picks[0]) == 2


def test_a_model_without_blocks_is_refused_clearly(data, tmp_path):
    with pytest.raises(PassError, match="none was found"):
        run(make_model("conv_head"), data, tmp_path, structure="block", amount=0.5)


@pytest.mark.parametrize("fields, message", [
    ({"importance": "l2"}, "block takes influence"),
    ({"round_to": 8}, "round_to applies to channel"),
    ({"global": True}, "global applies to channel"),
    ({"layers": {"stage.0": 0.5}}, "layers applies to channel"),
])
def test_channel_options_are_refused_for_blocks(fields, message):
    with pytest.raises(ValidationError, match=message):
        PruneConfig.model_validate({"type": "prune", "structure": "block", "amount": 0.5, **fields})


def test_influence_is_the_block_default_and_block_only():
    cfg = PruneConfig.model_validate({"type": "prune", "structure": "block", "amount": 0.5})
    assert cfg.importance == "influence"
    assert "training data" in cfg.data_requirement()
    with pytest.raises(ValidationError, match="structure: block only"):
        PruneConfig.model_validate({"type": "prune", "importance": "influence", "amount": 0.5})
