import textwrap

import pytest
import torch
import torch.nn as nn
from pydantic import TypeAdapter, ValidationError

from edgec.errors import ModelLoadError
from edgec.models import ModelSpec, load_model, load_weights

SPEC = TypeAdapter(ModelSpec)
SHAPE = [1, 1, 8, 8]


def spec(**fields):
    return SPEC.validate_python({"input_shape": SHAPE, **fields})


def tiny(**kwargs):
    return spec(source="python", callable="tiny_models.py:tiny_cnn", **kwargs)


def tiny_module(width=8):
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width * 2, 3, padding=1), nn.BatchNorm2d(width * 2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(width * 2 * 4, 10),
    )


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- python source -----------------------------------------------------------------------------

def test_python_file_callable_loads_in_eval_mode(recipe_dir):
    model = load_model(tiny(kwargs={"width": 4}), recipe_dir)
    assert not model.training
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert model[0].out_channels == 4  # kwargs reached the callable


def test_python_module_callable_resolves_against_recipe_dir(recipe_dir):
    model = load_model(spec(source="python", callable="tiny_models:tiny_cnn"), recipe_dir)
    assert isinstance(model, nn.Module)


def test_model_is_converted_to_float32(recipe_dir):
    (recipe_dir / "double.py").write_text(
        "import torch.nn as nn\n"
        "def build():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).double()\n")
    model = load_model(spec(source="python", callable="double.py:build"), recipe_dir)
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize(
    ("callable_", "pattern"),
    [
        ("tiny_models.py:raises", r"raised RuntimeError: boom from the user's code"),
        ("tiny_models.py:not_a_module", r"returned a int, not a torch.nn.Module"),
        ("tiny_models.py:TupleOutput", r"returns a tuple.*single tensor output.*Wrap it"),
        ("tiny_models.py:nope", r"has no 'nope'. It defines: .*tiny_cnn"),
        ("missing.py:fn", r"file '.*missing.py' does not exist"),
        ("no_such_module:fn", r"importing 'no_such_module' failed with ModuleNotFoundError"),
    ],
)
def test_python_source_errors(recipe_dir, callable_, pattern):
    with pytest.raises(ModelLoadError, match=pattern):
        load_model(spec(source="python", callable=callable_), recipe_dir)


def test_python_syntax_error_and_dict_output(recipe_dir):
    (recipe_dir / "broken.py").write_text("def build(:\n")
    with pytest.raises(ModelLoadError, match=r"importing 'broken.py' failed with SyntaxError"):
        load_model(spec(source="python", callable="broken.py:build"), recipe_dir)
    (recipe_dir / "dictout.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        class Seg(nn.Module):
            def forward(self, x):
                return {"out": x}
    """))
    with pytest.raises(ModelLoadError, match=r"returns a dict.*single tensor"):
        load_model(spec(source="python", callable="dictout.py:Seg"), recipe_dir)


def test_a_callable_that_calls_sys_exit_is_a_model_error(recipe_dir):
    """sys.exit() in the model's code (its build, or its module's top level) is that code's
    failure, named with its exit code: it ended edgec (exit 1, "a budget was missed"), and a
    sweep's other variants with it."""
    (recipe_dir / "quits.py").write_text("import sys\ndef build():\n    sys.exit('no width 13')\n")
    with pytest.raises(ModelLoadError, match=r"model.callable 'quits.py:build' called "
                       r"sys.exit\('no width 13'\) \(exit code 1\) instead of returning a model"):
        load_model(spec(source="python", callable="quits.py:build"), recipe_dir)
    (recipe_dir / "script.py").write_text("import sys\nsys.exit(2)\ndef build(): pass\n")
    with pytest.raises(ModelLoadError, match=r"importing 'script.py' called sys.exit\(2\) "
                       r"\(exit code 2\)") as info:
        load_model(spec(source="python", callable="script.py:build"), recipe_dir)
    assert "__main__" in info.value.hint


def test_wrong_input_shape_names_it(recipe_dir):
    with pytest.raises(ModelLoadError, match=r"input_shape \[1, 3, 8, 8\]: RuntimeError"):
        load_model(tiny(input_shape=[1, 3, 8, 8]), recipe_dir)


# --- weights (shared by python / torchvision / checkpoint) ----------------------------------------

@pytest.mark.parametrize("wrap", ["raw", "state_dict", "model", "dataparallel"])
def test_weights_file_formats(recipe_dir, wrap):
    saved = tiny_module()
    state = saved.state_dict()
    obj = {"raw": state, "state_dict": {"state_dict": state, "epoch": 3}, "model": {"model": state},
           "dataparallel": {f"module.{k}": v for k, v in state.items()}}[wrap]
    torch.save(obj, recipe_dir / "w.pt")
    model = load_model(tiny(weights="w.pt"), recipe_dir)
    assert same_weights(model, saved)


def test_mismatched_state_dict_lists_keys(recipe_dir):
    state = tiny_module().state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["8.bias"]
    torch.save(state, recipe_dir / "w.pt")
    with pytest.raises(ModelLoadError, match=r"missing keys \(1\): 8.bias; unexpected keys \(1\): "
                                             r"extra.weight.*architecture"):
        load_model(tiny(weights="w.pt"), recipe_dir)
    torch.save(tiny_module(width=4).state_dict(), recipe_dir / "w4.pt")
    with pytest.raises(ModelLoadError, match=r"shape mismatches \(\d+\): 0.weight: file \[4, 1, 3, 3\] "
                                             r"vs model \[8, 1, 3, 3\]"):
        load_model(tiny(weights="w4.pt"), recipe_dir)


def test_unreadable_weights(recipe_dir):
    torch.save(tiny_module().state_dict(), recipe_dir / "w.pt")
    data = (recipe_dir / "w.pt").read_bytes()
    (recipe_dir / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"trunc.pt.*not a readable PyTorch checkpoint.*truncated"):
        load_model(tiny(weights="trunc.pt"), recipe_dir)
    (recipe_dir / "text.pt").write_text("hello")
    with pytest.raises(ModelLoadError, match="not a readable PyTorch checkpoint"):
        load_model(tiny(weights="text.pt"), recipe_dir)
    with pytest.raises(ModelLoadError, match=r"nope.pt' \(model.weights\) does not exist"):
        load_model(tiny(weights="nope.pt"), recipe_dir)
    torch.save(tiny_module(), recipe_dir / "whole.pt")
    with pytest.raises(ModelLoadError, match="source: checkpoint and trust_pickle: true"):
        load_model(tiny(weights="whole.pt"), recipe_dir)
    torch.save({"lr": torch.tensor(0.1), "step": 3}, recipe_dir / "notsd.pt")
    with pytest.raises(ModelLoadError, match="does not hold a state dict of tensors"):
        load_model(tiny(weights="notsd.pt"), recipe_dir)


def test_nan_weights_refused(recipe_dir):
    state = tiny_module().state_dict()
    state["3.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, recipe_dir / "w.pt")
    with pytest.raises(ModelLoadError, match=r"'3.weight' holds NaN or infinite"):
        load_model(tiny(weights="w.pt"), recipe_dir)


def test_load_weights_directly():
    model = tiny_module()
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_weights(model, __import__("pathlib").Path("/nonexistent/w.pt"), "test")


# --- checkpoint source ---------------------------------------------------------------------------

def test_checkpoint_with_architecture(recipe_dir):
    saved = tiny_module()
    torch.save({"state_dict": saved.state_dict()}, recipe_dir / "ck.pt")
    arch = {"source": "python", "callable": "tiny_models.py:tiny_cnn"}
    model = load_model(spec(source="checkpoint", path="ck.pt", architecture=arch), recipe_dir)
    assert same_weights(model, saved)
    # a whole pickled model's weights, into the architecture: only with the opt-in
    torch.save(saved, recipe_dir / "whole.pt")
    cfg = spec(source="checkpoint", path="whole.pt", architecture=arch, trust_pickle=True)
    assert same_weights(load_model(cfg, recipe_dir), saved)


def test_checkpoint_with_zoo_architecture_needs_no_training(tmp_path):
    from edgec.zoo import build_zoo_model

    saved = build_zoo_model("digits_cnn")
    torch.save(saved.state_dict(), tmp_path / "ck.pt")
    cfg = spec(source="checkpoint", path="ck.pt", architecture={"source": "zoo", "name": "digits_cnn"})
    assert same_weights(load_model(cfg, tmp_path, cache_dir=tmp_path / "empty-cache"), saved)
    assert not (tmp_path / "empty-cache").exists()


def test_whole_pickled_model_needs_opt_in(tmp_path):
    saved = tiny_module()
    torch.save(saved, tmp_path / "whole.pt")
    with pytest.raises(ModelLoadError, match=r"runs code.*set model.trust_pickle: true"):
        load_model(spec(source="checkpoint", path="whole.pt"), tmp_path)
    model = load_model(spec(source="checkpoint", path="whole.pt", trust_pickle=True), tmp_path)
    assert same_weights(model, saved) and not model.training


def test_corrupt_checkpoint_is_not_mistaken_for_a_pickle(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all " * 8)
    with pytest.raises(ModelLoadError, match=r"not a readable PyTorch checkpoint") as info:
        load_model(spec(source="checkpoint", path="junk.pt"), tmp_path)
    assert "trust_pickle" not in str(info.value)


def test_random_bytes_are_called_corrupt_without_torchs_unsafe_advice(tmp_path):
    """torch's safe loader wraps garbage in "Re-running torch.load with weights_only set to False
    will likely succeed": unsafe, and wrong for a file that is no checkpoint at all."""
    import random

    (tmp_path / "model.pt").write_bytes(random.Random(0).randbytes(2000))
    arch = {"source": "zoo", "name": "digits_cnn"}
    for cfg in (spec(source="checkpoint", path="model.pt", architecture=arch),
                spec(source="checkpoint", path="model.pt")):
        with pytest.raises(ModelLoadError, match=r"model.pt' \(model.path\) is not a readable "
                           r"PyTorch checkpoint: it is corrupt or truncated") as info:
            load_model(cfg, tmp_path)
        text = str(info.value)
        assert "weights_only" not in text and "trust_pickle" not in text, text
        assert "Unsupported operand" in text  # the unpickler's own reason is kept


def test_state_dict_without_architecture(tmp_path):
    torch.save(tiny_module().state_dict(), tmp_path / "sd.pt")
    for trust in (False, True):
        with pytest.raises(ModelLoadError, match=r"holds a state dict.*Add model.architecture"):
            load_model(spec(source="checkpoint", path="sd.pt", trust_pickle=trust), tmp_path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ModelLoadError, match=r"gone.pt' \(model.path\) does not exist"):
        load_model(spec(source="checkpoint", path="gone.pt"), tmp_path)


# --- torchvision source --------------------------------------------------------------------------

def test_torchvision_by_name_with_local_weights(tmp_path):
    cfg = spec(source="torchvision", name="resnet18", num_classes=10, input_shape=[1, 3, 32, 32])
    model = load_model(cfg, tmp_path)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    torch.save(model.state_dict(), tmp_path / "r18.pt")
    again = load_model(cfg.model_copy(update={"weights": "r18.pt"}), tmp_path)
    assert same_weights(again, model)


def test_torchvision_names_are_read_without_importing_torchvision():
    """The validator reads torchvision's @register_model decorators; they must name exactly what
    list_models() lists, or a new torchvision would cost validate an import on every name."""
    import torchvision.models as tvm

    from edgec.torchvision_names import _scanned_names, unknown_model_message

    assert _scanned_names() == set(tvm.list_models())
    assert unknown_model_message("mobilenet_v3_small") is None
    assert "Close matches: resnet18" in unknown_model_message("resnet19")


def test_torchvision_errors(tmp_path):
    bad = spec(source="torchvision", name="resnet18", kwargs={"wings": 2}, input_shape=[1, 3, 32, 32])
    with pytest.raises(ModelLoadError, match=r"could not be built.*wings"):
        load_model(bad, tmp_path)


# --- config validation (before any work) -------------------------------------------------------

@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        ({"source": "zoo", "name": "digit_cnn"}, "Did you mean 'digits_cnn'"),
        ({"source": "zoo", "name": "digits_cnn", "input_shape": [1, 1, 32, 32]},
         r"takes inputs of shape \[1, 1, 8, 8\]"),
        ({"source": "python", "callable": "no_colon"}, "must look like 'package.module:function'"),
        ({"source": "torchvision", "name": "resnet18", "kwargs": {"pretrained": True}},
         "would download"),
        ({"source": "torchvision", "name": "resnet19"}, r"no model 'resnet19'. Close matches: .*resnet18"),
        ({"source": "checkpoint", "path": "c.pt", "architecture": {"source": "torchvision",
          "name": "mobilenet_v4"}}, r"no model 'mobilenet_v4'"),
        ({"source": "checkpoint", "path": "c.pt",
          "architecture": {"source": "torchvision", "name": "resnet18", "weights": "w.pt"}},
         "architecture.weights is not used"),
        ({"source": "zoo", "name": "digits_cnn", "input_shape": [1, 0, 8, 8]}, "greater than or equal"),
        ({"source": "zoo", "name": "digits_cnn", "input_shape": [8]}, "at least 2 items"),
        ({"source": "zoo", "name": "digits_cnn", "dtype": "float16"}, "float32"),
    ],
)
def test_config_validation(fields, pattern):
    with pytest.raises(ValidationError, match=pattern):
        SPEC.validate_python({"input_shape": SHAPE, **fields})


def test_zoo_name_validation_does_not_import_torch():
    import subprocess
    import sys

    code = ("from pydantic import TypeAdapter\nfrom edgec.models import ModelSpec\n"
            "TypeAdapter(ModelSpec).validate_python({'source': 'zoo', 'name': 'resnet20_digits', "
            "'input_shape': [1, 1, 32, 32]})\nimport sys\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
