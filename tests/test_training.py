"""The shared training loop: learns, is deterministic, keeps the best epoch, accepts a custom loss."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgec.data import DataSplits, Split, digits_splits
from edgec.errors import DataError, PassError
from edgec.progress import Progress
from edgec.training import (
    TrainingConfig,
    evaluate_accuracy,
    holdout,
    labelled_train_split,
    train,
)


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Dropout(0.1),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 10),
    )


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return digits_splits()


def test_training_learns_digits(digits):
    model = small_cnn()
    before = evaluate_accuracy(model, digits.eval)
    fit, val = holdout(digits.train, 0.1, seed=0)
    result = train(model, fit, val, TrainingConfig(lr=0.05), epochs=4, seed=0, progress=Progress())
    after = evaluate_accuracy(model, digits.eval)
    assert before < 0.3 and after > 0.6  # four short epochs; 0.78–0.82 measured over seeds
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert not model.training  # left ready for export


def test_same_seed_same_weights_other_seed_differs(digits):
    def weights(seed):
        model = small_cnn()
        train(model, digits.train, None, TrainingConfig(), epochs=1, seed=seed, progress=Progress())
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(weights(3), weights(3))
    assert not torch.equal(weights(3), weights(4))


def test_does_not_touch_the_callers_random_state(digits):
    model = small_cnn()  # (seeds the global RNG itself)
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    train(model, Split(digits.train.x[:64], digits.train.y[:64]), None, TrainingConfig(),
          epochs=1, seed=0, progress=Progress())
    assert torch.equal(torch.rand(1), expected)


def test_best_epoch_weights_are_restored(digits):
    model = small_cnn()
    fit, val = holdout(digits.train, 0.2, seed=1)
    cfg = TrainingConfig(lr=0.5, optimizer="sgd", lr_schedule="constant")  # noisy on purpose
    result = train(model, fit, val, cfg, epochs=4, seed=0, progress=Progress())
    accuracies = [h["val_accuracy"] for h in result.history]
    assert result.best_accuracy == max(accuracies)
    assert result.best_epoch == accuracies.index(max(accuracies)) + 1
    assert evaluate_accuracy(model, val) == result.best_accuracy


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_every_optimizer_reduces_the_loss(optimizer, digits):
    split = Split(digits.train.x[:256], digits.train.y[:256])
    cfg = TrainingConfig(optimizer=optimizer, lr=0.01, batch_size=32, label_smoothing=0.1)
    result = train(small_cnn(), split, None, cfg, epochs=3, seed=0, progress=Progress())
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.best_epoch is None  # no hold-out: the last epoch is kept


def test_custom_loss_hook_without_labels():
    calls = []

    def loss_fn(model, x, y):
        calls.append(y)
        return model(x).pow(2).mean()  # e.g. distillation towards a teacher's zeros

    x = np.random.default_rng(0).standard_normal((40, 1, 8, 8)).astype(np.float32)
    model = small_cnn()
    train(model, Split(x), None, TrainingConfig(batch_size=16), epochs=2, seed=0,
          progress=Progress(), loss_fn=loss_fn)
    assert len(calls) == 6 and all(y is None for y in calls)
    with pytest.raises(DataError, match="needs labels"):
        train(model, Split(x), None, TrainingConfig(), epochs=1, seed=0, progress=Progress())


def test_diverging_loss_is_a_clear_error():
    x = np.zeros((8, 1, 8, 8), np.float32)
    with pytest.raises(PassError, match=r"diverged\. Lower lr"):
        train(small_cnn(), Split(x), None, TrainingConfig(), epochs=1, seed=0, progress=Progress(),
              loss_fn=lambda m, x, y: m(x).sum() * float("nan"))


def test_zero_epochs_is_a_no_op(digits):
    model = small_cnn()
    before = [p.clone() for p in model.parameters()]
    result = train(model, digits.train, None, TrainingConfig(), epochs=0, seed=0, progress=Progress())
    assert result.history == []
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_progress_is_advanced_per_batch():
    seen = []

    class Recording(Progress):
        def task(self, description, total=None):
            from contextlib import contextmanager

            @contextmanager
            def cm():
                seen.append((description, total))
                yield lambda n=1, **fields: seen.append(fields)

            return cm()

    x = np.zeros((20, 1, 8, 8), np.float32)
    y = np.zeros(20, np.int64)
    train(small_cnn(), Split(x, y), None, TrainingConfig(batch_size=10), epochs=2, seed=0,
          progress=Recording(), description="fine-tuning")
    assert seen[0] == ("fine-tuning", 4)
    assert {"epoch", "loss"} <= set(seen[-1])


def test_evaluate_accuracy_only_with_labels(digits):
    assert evaluate_accuracy(small_cnn(), Split(digits.eval.x)) is None
    assert evaluate_accuracy(small_cnn(), None) is None
    assert 0 <= evaluate_accuracy(small_cnn(), digits.eval) <= 1


def test_holdout_is_seeded_and_disjoint(digits):
    fit, val = holdout(digits.train, 0.1, seed=0)
    assert len(fit) + len(val) == len(digits.train) and len(val) == round(0.1 * len(digits.train))
    again, _ = holdout(digits.train, 0.1, seed=0)
    assert np.array_equal(fit.x, again.x)
    rows = {r.tobytes() for r in fit.x}
    assert not any(r.tobytes() in rows for r in val.x[:50])
    assert holdout(digits.train, 0.0, seed=0) == (digits.train, None)


def test_labelled_train_split_refuses_synthetic_data():
    x = np.zeros((4, 1, 8, 8), np.float32)
    with pytest.raises(DataError, match=r"finetune needs labelled training data.*no training split"):
        labelled_train_split(DataSplits(None, Split(x), Split(x), None), "finetune")
    with pytest.raises(DataError, match="no labels"):
        labelled_train_split(DataSplits(Split(x), Split(x), Split(x), None), "finetune")


def test_config_is_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        TrainingConfig(lr=0)
    with pytest.raises(ValidationError):
        TrainingConfig.model_validate({"optimizer": "rmsprop"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        TrainingConfig.model_validate({"learning_rate": 0.1})
