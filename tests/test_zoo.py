"""The zoo: names, cache location, training (digits_cnn only: the ResNets are built, never trained here).

The session-wide EDGEC_CACHE_DIR from conftest is a temporary folder, so digits_cnn trains at most
once per test session (a few seconds) and every other test that needs it reuses the cache.
"""

import os
import subprocess
import sys

import pytest
import torch

from edgec import zoo
from edgec.data import digits_splits
from edgec.errors import ModelLoadError
from edgec.models import ModelSpec, load_model
from edgec.zoo import (
    ZOO_NAMES,
    build_zoo_model,
    evaluate_accuracy,
    load_zoo_model,
    train_zoo_model,
    zoo_cache_path,
    zoo_entry,
)


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_names_and_entries():
    assert {"digits_cnn", "resnet20_digits", "resnet56_digits"} <= set(ZOO_NAMES)
    assert zoo_entry("digits_cnn").input_shape == (1, 1, 8, 8) and zoo_entry("digits_cnn").resize is None
    entry = zoo_entry("resnet20_digits")
    assert entry.input_shape == (1, 1, 32, 32) and entry.resize == 32 and "ResNet-20" in entry.description
    with pytest.raises(ModelLoadError, match="Did you mean 'resnet20_digits'"):
        zoo_entry("resnet20_digit")


def test_zoo_names_need_no_torch():
    code = "import sys\nfrom edgec.zoo import ZOO_NAMES, zoo_entry\nzoo_entry(ZOO_NAMES[0])\n" \
           "print(any(m in sys.modules for m in ('torch', 'sklearn', 'numpy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cache_path_order(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEC_CACHE_DIR", str(tmp_path / "env"))
    assert zoo_cache_path("digits_cnn", tmp_path / "arg") == tmp_path / "arg" / "zoo" / "digits_cnn-v1.pt"
    assert zoo_cache_path("digits_cnn").parent == tmp_path / "env" / "zoo"
    monkeypatch.delenv("EDGEC_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert zoo_cache_path("digits_cnn").parent == tmp_path / "home" / ".cache" / "edgec" / "zoo"


@pytest.mark.parametrize(("name", "low", "high"),
                         [("resnet20_digits", 0.26e6, 0.28e6), ("resnet56_digits", 0.84e6, 0.87e6)])
def test_resnets_build_without_training(name, low, high):
    model = build_zoo_model(name).eval()
    assert model(torch.zeros(2, *zoo_entry(name).input_shape[1:])).shape == (2, 10)
    assert low < sum(p.numel() for p in model.parameters()) < high
    # option-B shortcuts: the stage transitions use 1×1 conv projections
    assert isinstance(model.layer2[0].shortcut[0], torch.nn.Conv2d)


def test_digits_cnn_trains_accurately_and_is_cached(monkeypatch):
    path = zoo_cache_path("digits_cnn")
    model = load_zoo_model("digits_cnn")  # trains on first use in this session, else reuses
    assert path.is_file() and not model.training
    eval_split = digits_splits(None).eval
    assert evaluate_accuracy(model, eval_split.x, eval_split.y) >= 0.95
    stamp = path.stat().st_mtime_ns
    monkeypatch.setattr(zoo, "train_zoo_model", lambda *a, **k: pytest.fail("retrained"))
    again = load_zoo_model("digits_cnn")  # a cache hit: no retraining
    assert path.stat().st_mtime_ns == stamp and same_weights(again, model)
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    meta = torch.load(path, weights_only=True)["meta"]
    assert meta["eval_accuracy"] >= 0.95 and meta["epochs"] == zoo_entry("digits_cnn").epochs


def test_zoo_through_load_model():
    from pydantic import TypeAdapter

    spec = TypeAdapter(ModelSpec).validate_python(
        {"source": "zoo", "name": "digits_cnn", "input_shape": [1, 1, 8, 8]})
    model = load_model(spec, base_dir=os.getcwd())
    assert same_weights(model, load_zoo_model("digits_cnn"))


def test_training_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, info = train_zoo_model("digits_cnn", epochs=1)
    assert torch.equal(torch.get_rng_state(), before)
    b, _ = train_zoo_model("digits_cnn", epochs=1)
    assert same_weights(a, b) and info["epochs"] == 1 and 0 <= info["eval_accuracy"] <= 1


def test_damaged_cache_is_retrained(tmp_path, monkeypatch):
    calls = []

    def fake_train(name, progress=None):
        calls.append(name)
        return build_zoo_model(name), {"train_seconds": 0.0, "eval_accuracy": 0.0}

    monkeypatch.setattr(zoo, "train_zoo_model", fake_train)
    path = zoo_cache_path("resnet20_digits", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a checkpoint")
    load_zoo_model("resnet20_digits", tmp_path)
    assert calls == ["resnet20_digits"]
    load_zoo_model("resnet20_digits", tmp_path)  # now readable: no second training
    assert calls == ["resnet20_digits"]


def test_unwritable_cache_still_returns_the_model(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "train_zoo_model",
                        lambda name, progress=None: (build_zoo_model(name), {"train_seconds": 0.0,
                                                                             "eval_accuracy": 0.0}))
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    model = load_zoo_model("resnet20_digits", blocker)
    assert isinstance(model, torch.nn.Module)
