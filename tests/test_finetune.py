"""The finetune pass: supervised recovery on the recipe's training split, recorded per epoch."""

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
from pydantic import ValidationError

from edgec.data import DataSplits, Split, digits_splits
from edgec.errors import DataError
from edgec.passes import PASSES
from edgec.passes.base import PassContext
from edgec.passes.finetune import FinetuneConfig, FinetunePass
from edgec.progress import Progress


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 10),
    ).eval()


def context(data: DataSplits, model, tmp_path) -> PassContext:
    return PassContext(data=data, baseline=model, input_shape=(1, 1, 8, 8), seed=0, run_dir=tmp_path,
                       recipe_dir=tmp_path, progress=Progress())


def test_registered_with_its_config():
    assert PASSES["finetune"] is FinetunePass and PASSES["finetune"].stage == "torch"


def test_finetune_recovers_accuracy_and_records_epochs(tmp_path):
    data = digits_splits()
    model = tiny_cnn()
    p = FinetunePass(FinetuneConfig(epochs=3, lr=0.05))
    out = p.apply(copy.deepcopy(model), context(data, model, tmp_path))
    d = p.details
    assert d["eval_accuracy_before"] < 0.3 and d["eval_accuracy_after"] > 0.85
    assert [e["epoch"] for e in d["epochs"]] == [1, 2, 3]
    assert all(0 <= e["val_accuracy"] <= 1 for e in d["epochs"])
    assert d["best_epoch"] in (1, 2, 3)
    assert d["val_samples"] == round(0.1 * len(data.train))
    assert d["train_samples"] + d["val_samples"] == len(data.train)
    assert "fine-tuned 3 epochs" in p.notes[0] and "→" in p.notes[0]
    assert not out.training


def test_finetune_needs_labelled_training_data(tmp_path):
    x = np.zeros((8, 1, 8, 8), np.float32)
    synthetic = DataSplits(train=None, calib=Split(x), eval=Split(x), num_classes=None)
    model = tiny_cnn()
    with pytest.raises(DataError, match="finetune needs labelled training data"):
        FinetunePass(FinetuneConfig()).apply(model, context(synthetic, model, tmp_path))
    assert "labelled training data" in FinetuneConfig().data_requirement()


@pytest.mark.parametrize("fields", [{"epochs": 0}, {"lr": -1}, {"optimizer": "lbfgs"}, {"epoch": 3},
                                    {"lr_schedule": "step"}])
def test_invalid_configs_are_refused(fields):
    with pytest.raises(ValidationError):
        FinetuneConfig.model_validate({"type": "finetune", **fields})


def test_shares_the_training_family_fields():
    from edgec.passes.prune_config import PruneScheduleConfig
    from edgec.training import TrainingConfig

    shared = set(TrainingConfig.model_fields)
    assert shared <= set(FinetuneConfig.model_fields) and shared <= set(PruneScheduleConfig.model_fields)


def test_finetune_keeps_pruned_weights_at_zero(tmp_path):
    model = tiny_cnn()
    with torch.no_grad():  # as left by an unstructured prune pass: masks already folded
        model[3].weight[model[3].weight.abs() < 0.05] = 0
    zeros = model[3].weight == 0
    assert zeros.float().mean() > 0.3
    p = FinetunePass(FinetuneConfig(epochs=1, lr=0.05))
    out = p.apply(model, context(digits_splits(), model, tmp_path))
    assert torch.equal(out[3].weight == 0, zeros)  # no regrowth, and nothing newly zeroed
    assert not any(hasattr(m, "weight_orig") or m._forward_pre_hooks for m in out.modules())
    assert any("kept the zero weights of 1 sparse layer" in n for n in p.notes)
