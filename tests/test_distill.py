"""The distill pass: KD loss math, feature taps and adapters, students, data-free synthesis, recipes."""

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner
from pydantic import ValidationError

from edgec.data import DataSplits, Split, digits_splits
from edgec.errors import PassError, RecipeError
from edgec.passes import PASSES
from edgec.passes.base import PassContext
from edgec.passes.distill import DistillConfig, DistillPass, agreement, distillation_objective
from edgec.passes.distill_datafree import (
    SynthesisConfig,
    bn_statistics_loss,
    frozen,
    synthesize,
    total_variation,
)
from edgec.passes.distill_losses import (
    FeatureTaps,
    attention_loss,
    distillation_loss,
    feature_mse,
    kd_loss,
    make_adapter,
)
from edgec.passes.distill_models import width_scaled_copy
from edgec.progress import Progress
from edgec.recipe import validate_recipe
from edgec.training import TrainingConfig, train


def tiny_cnn(width: int = 8, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width * 2, 3, padding=1), nn.BatchNorm2d(width * 2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(width * 8, 10),
    ).eval()


@pytest.fixture(scope="module")
def data():
    return digits_splits()


@pytest.fixture(scope="module")
def teacher(data):
    """A tiny CNN trained 3 epochs on digits (~90% accurate): real BN statistics, real knowledge."""
    model = tiny_cnn(16)
    train(model, data.train, None, TrainingConfig(lr=0.05), epochs=3, seed=0, progress=Progress())
    return model.eval()


def context(data, baseline, tmp_path, shape=(1, 1, 8, 8)) -> PassContext:
    return PassContext(data=data, baseline=baseline, input_shape=shape, seed=0, run_dir=tmp_path,
                       recipe_dir=tmp_path, progress=Progress())


def test_registered_as_torch_pass():
    assert PASSES["distill"] is DistillPass and DistillPass.stage == "torch"


# --- losses -----------------------------------------------------------------------------------

def test_kd_loss_matches_hand_computation_with_t_squared():
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])
    # T = 1: p_t = (3/4, 1/4), p_s = (1/2, 1/2)
    assert kd_loss(s, t, 1.0).item() == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    # T = 2: p_t ∝ (√3, 1); the KL is multiplied by T² = 4
    pt = np.array([math.sqrt(3), 1.0]) / (math.sqrt(3) + 1)
    expected = 4 * float((pt * np.log(pt / 0.5)).sum())
    assert kd_loss(s, t, 2.0).item() == pytest.approx(expected, rel=1e-5)
    assert kd_loss(t, t, 3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_distillation_loss_mixes_hard_labels_by_alpha():
    torch.manual_seed(0)
    s, t, y = torch.randn(5, 4), torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    kd, ce = kd_loss(s, t, 4.0), nn.functional.cross_entropy(s, y)
    assert distillation_loss(s, t, y, 4.0, 0.7).item() == pytest.approx((0.7 * kd + 0.3 * ce).item())
    assert distillation_loss(s, t, None, 4.0, 1.0).item() == pytest.approx(kd.item())
    with pytest.raises(PassError, match="alpha: 1"):
        distillation_loss(s, t, None, 4.0, 0.5)


def test_label_smoothing_reaches_the_hard_label_term():
    # logits (ln 2, 0, 0) → p = (1/2, 1/4, 1/4); label 0 smoothed by 0.3 over 3 classes → q = (0.8,
    # 0.1, 0.1); CE = −(0.8 ln ½ + 0.2 ln ¼) = 1.2 ln 2 (vs ln 2 unsmoothed). Teacher = student, so
    # the KD term is 0 and the loss is (1 − alpha) × CE.
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([math.log(2.0), 0.0, 0.0]))
    logits, y = model(torch.zeros(2, 4)), torch.tensor([0, 0])
    expected = 0.5 * 1.2 * math.log(2.0)
    assert distillation_loss(logits, logits, y, 4.0, 0.5, 0.3).item() == pytest.approx(expected)
    assert distillation_loss(logits, logits, y, 4.0, 0.5).item() == pytest.approx(0.5 * math.log(2.0))
    # and the pass's objective passes the recipe's label_smoothing through
    cfg = DistillConfig(alpha=0.5, label_smoothing=0.3).for_data(synthetic=False)
    wrapper, loss_fn = distillation_objective(model, copy.deepcopy(model), cfg, (1, 4))
    assert loss_fn(wrapper, torch.zeros(2, 4), y).item() == pytest.approx(expected)
    wrapper.release()


def test_kd_gradient_scale_does_not_vanish_with_temperature():
    torch.manual_seed(0)
    t = torch.randn(8, 10) * 3
    norms = []
    for temp in (2.0, 8.0):
        s = torch.zeros(8, 10, requires_grad=True)
        kd_loss(s, t, temp).backward()
        norms.append(s.grad.norm().item())
    assert 0.2 < norms[1] / norms[0] < 5  # without T² it would shrink ~16×


def test_attention_loss_ignores_channels_and_scale_but_sees_location():
    torch.manual_seed(0)
    f = torch.rand(2, 4, 6, 6)
    assert attention_loss(f * 3, f).item() == pytest.approx(0.0, abs=1e-6)
    wide = torch.cat([f, f], 1)  # different channel counts are fine for attention transfer
    assert attention_loss(wide, f).item() == pytest.approx(0.0, abs=1e-6)
    moved = torch.roll(f, 3, dims=3)
    assert attention_loss(moved, f).item() > 0.01
    assert attention_loss(torch.rand(2, 4, 12, 12), f).item() >= 0  # pooled to 6×6
    with pytest.raises(PassError, match="loss: mse"):
        attention_loss(torch.rand(2, 4), torch.rand(2, 4))


def test_adapters_lift_student_channels_to_the_teacher():
    conv = make_adapter(8, 16, spatial=True)
    assert conv(torch.rand(3, 8, 4, 4)).shape == (3, 16, 4, 4)
    assert make_adapter(5, 7, spatial=False)(torch.rand(3, 5)).shape == (3, 7)
    assert isinstance(make_adapter(8, 8, spatial=True), nn.Identity)
    assert feature_mse(torch.rand(2, 8, 4, 4), torch.rand(2, 16, 2, 2), conv).item() > 0


def test_feature_taps_record_named_layers_and_refuse_unknown_names():
    model = tiny_cnn()
    with FeatureTaps(model, ["3", "4"]) as taps:
        model(torch.zeros(2, 1, 8, 8))
        assert taps["3"].shape == (2, 16, 8, 8)
    assert not model[3]._forward_hooks  # removed on exit
    with pytest.raises(PassError, match="no layer 'layer9'"):
        FeatureTaps(model, ["layer9"], "student")


# --- students ---------------------------------------------------------------------------------

def test_width_scaled_copy_halves_channels_and_trains_a_step(teacher):
    student = width_scaled_copy(teacher, 0.5, (1, 1, 8, 8), seed=0)
    assert [m.out_channels for m in student if isinstance(m, nn.Conv2d)] == [8, 16]
    n_t, n_s = (sum(p.numel() for p in m.parameters()) for m in (teacher, student))
    assert n_s < 0.4 * n_t
    x = torch.randn(4, 1, 8, 8)
    assert student(x).shape == (4, 10)
    cfg = DistillConfig(features=[{"teacher": "3", "student": "3", "loss": "mse"}]).for_data(False)
    from edgec.passes.distill import distillation_objective

    wrapper, loss_fn = distillation_objective(student, teacher, cfg, (1, 1, 8, 8))
    assert wrapper.adapters["0"].weight.shape == (32, 16, 1, 1)  # 1×1 conv, student → teacher
    loss = loss_fn(wrapper, x, torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert student[0].weight.grad is not None and wrapper.adapters["0"].weight.grad is not None
    wrapper.release()
    assert all(not m._forward_hooks for m in (*teacher.modules(), *student.modules()))


def test_kd_student_learns_to_agree_with_the_teacher(teacher, data, tmp_path):
    p = DistillPass(DistillConfig(student={"width": 0.5, "init": "random"}, epochs=3, lr=0.05,
                                  batch_size=32, features=[{"teacher": "4", "student": "4"}]))
    student = p.apply(tiny_cnn(16), context(data, teacher, tmp_path))
    d = p.details
    assert d["agreement_after"] > d["agreement_before"] + 0.3 and d["agreement_after"] > 0.7
    assert d["student_params"] < d["teacher_params"] / 3
    assert d["teacher_accuracy"] > 0.8 and d["student_accuracy_after"] > d["student_accuracy_before"]
    assert len(d["epochs"]) == 3 and d["best_epoch"] in (1, 2, 3)
    assert agreement(student, teacher, data.eval.x) == pytest.approx(d["agreement_after"])
    assert "distilled: student accuracy" in p.notes[-1]
    assert not any(m._forward_hooks for m in teacher.modules())
    assert all(p.requires_grad for p in teacher.parameters())  # frozen only while training


# --- data-free --------------------------------------------------------------------------------

def test_synthesis_moves_bn_statistics_toward_the_teacher(teacher):
    cfg = SynthesisConfig(images=40, iterations=40, batch_size=20, lr=0.1)
    made = synthesize(teacher, (1, 1, 8, 8), 10, cfg, seed=0, progress=Progress())
    assert made.x.shape == (40, 1, 8, 8) and made.x.dtype == np.float32 and np.isfinite(made.x).all()
    assert np.bincount(made.y, minlength=10).tolist() == [4] * 10  # balanced classes
    assert made.bn_layers == 2
    assert made.bn_loss_end < 0.5 * made.bn_loss_start
    noise = torch.randn(40, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    assert bn_statistics_loss(teacher, torch.from_numpy(made.x)) < bn_statistics_loss(teacher, noise)
    assert made.teacher_agreement > 0.8
    assert all(p.requires_grad for p in teacher.parameters())


def test_total_variation_prefers_smooth_images():
    smooth = torch.linspace(0, 1, 8).repeat(1, 1, 8, 1)
    assert total_variation(smooth) < total_variation(torch.rand(1, 1, 8, 8))


def test_frozen_restores_mode_and_gradients():
    model = tiny_cnn().train()
    with frozen(model):
        assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_data_free_pass_saves_the_set_and_feeds_calibration(teacher, data, tmp_path):
    x = data.eval.x[:64]
    no_data = DataSplits(train=None, calib=Split(x), eval=Split(x), num_classes=None)
    ctx = context(no_data, teacher, tmp_path)
    p = DistillPass(DistillConfig(student={"width": 0.5}, epochs=2, alpha=1.0,
                                  synthetic={"images": 60, "iterations": 20, "batch_size": 30}))
    p.apply(copy.deepcopy(teacher), ctx)
    assert p.details["data"] == "synthetic" and p.details["synthetic"]["images"] == 60
    saved = np.load(tmp_path / "distill-synthetic.npz")
    assert saved["x"].shape == (60, 1, 8, 8) and (tmp_path / "distill-synthetic.png").is_file()
    assert ctx.data.calib.x.shape == (60, 1, 8, 8)  # later passes calibrate on the synthetic set
    assert p.details["student_accuracy_after"] is None and 0 <= p.details["agreement_after"] <= 1
    assert p.details["train_samples"] == 60 and p.details["best_epoch"] is None  # no hold-out


def test_epochs_and_holdout_defaults_depend_on_the_data():
    real, synthetic = DistillConfig().for_data(False), DistillConfig().for_data(True)
    assert (real.epochs, real.val_fraction, real.temperature) == (20, 0.1, 4.0)
    assert (synthetic.epochs, synthetic.val_fraction, synthetic.temperature) == (60, 0.0, 8.0)
    chosen = DistillConfig(epochs=5, val_fraction=0.2, temperature=2).for_data(True)
    assert (chosen.epochs, chosen.val_fraction, chosen.temperature) == (5, 0.2, 2.0)


# --- recipes ----------------------------------------------------------------------------------

def _recipe(passes, data=None):
    raw = {"version": 1, "model": {"source": "python", "callable": "m.py:f", "input_shape": [1, 1, 8, 8]},
           "passes": passes}
    if data:
        raw["data"] = data
    return validate_recipe(raw)


def test_data_free_distill_is_allowed_with_synthetic_data_but_real_is_not():
    r = _recipe([{"type": "distill", "student": {"width": 0.5}}])
    assert r.passes[0].teacher == "baseline" and r.passes[0].student.width == 0.5
    _recipe([{"type": "distill", "data": "synthetic", "student": {"width": 0.5}}])
    with pytest.raises(RecipeError, match="passes\\[0\\] \\(distill\\) needs training data"):
        _recipe([{"type": "distill", "data": "real", "student": {"width": 0.5}}])
    _recipe([{"type": "distill", "data": "real", "student": {"width": 0.5}}], data={"source": "digits"})


def test_static_quantization_may_calibrate_on_data_free_distillation():
    quant, half = {"type": "quantize", "mode": "static"}, {"width": 0.5}
    _recipe([{"type": "distill", "student": half}, quant])  # synthetic data: the distill pass calibrates
    with pytest.raises(RecipeError, match="passes\\[0\\] \\(quantize\\) needs calibration"):
        _recipe([quant])
    with pytest.raises(RecipeError, match="passes\\[1\\] \\(quantize\\) needs calibration"):
        _recipe([{"type": "distill", "use_synthetic_for_calibration": False, "student": half}, quant])
    with pytest.raises(RecipeError, match="passes\\[1\\] \\(finetune\\) needs labelled"):
        _recipe([{"type": "distill", "student": half}, {"type": "finetune"}, quant])


def test_distilling_the_unchanged_model_into_itself_is_refused():
    with pytest.raises(RecipeError, match=r"passes\[0\] \(distill\) would train the model to mimic "
                       r"itself.*student: \{width: 0.5\}"):
        _recipe([{"type": "distill", "data": "synthetic"}])
    _recipe([{"type": "prune", "amount": 0.3}, {"type": "distill", "data": "synthetic"}])


def test_student_and_teacher_errors_speak_of_the_meant_form_only():
    def problems(fields):
        with pytest.raises(RecipeError) as info:
            _recipe([{"type": "distill", **fields}])
        return info.value.problems

    assert problems({"student": {"source": "zoo", "nam": "x"}}) == [
        "passes[0].student.name: required key is missing",
        "passes[0].student.nam: unknown key 'nam'; did you mean 'name'? Allowed here: source, name."]
    assert problems({"student": {"width": 0.5, "inti": "random"}}) == [
        "passes[0].student.inti: unknown key 'inti'; did you mean 'init'? Allowed here: width, init."]
    [wrong] = problems({"student": 5, "teacher": "baseline"})
    assert wrong.startswith("passes[0].student: must be 'current', {width: 0.5} or a model spec")
    [wrong] = problems({"teacher": 7, "student": {"width": 0.5}})
    assert wrong.startswith("passes[0].teacher: must be 'baseline' or a model spec")


@pytest.mark.parametrize("fields", [
    {"temperature": 0}, {"alpha": 1.5}, {"student": {"width": 1.5}}, {"student": "smaller"},
    {"teacher": "original"}, {"features": [{"teacher": "a", "student": "b", "loss": "kl"}]},
    {"features": [{"teacher": "a"}]}, {"data": "real", "synthetic": {"images": 10}},
    {"synthetic": {"images": 1}}, {"teacher": {"source": "zoo", "name": "resnet9000"}},
])
def test_invalid_configs_are_refused(fields):
    with pytest.raises(ValidationError):
        DistillConfig.model_validate({"type": "distill", **fields})


def test_teacher_and_student_specs_parse():
    cfg = DistillConfig.model_validate({
        "type": "distill", "teacher": {"source": "zoo", "name": "digits_cnn"},
        "student": {"source": "torchvision", "name": "mobilenet_v3_small", "num_classes": 10}})
    assert cfg.teacher.name == "digits_cnn" and cfg.student.name == "mobilenet_v3_small"


# --- end to end -------------------------------------------------------------------------------

E2E = """\
version: 1
model: {source: python, callable: "tiny_models.py:tiny_cnn", kwargs: {width: 16}, input_shape: [1, 1, 8, 8]}
data: {source: digits}
passes:
  - {type: prune, amount: 0.5}
  - {type: distill, epochs: 2, features: [{teacher: "3", student: "3", loss: mse}]}
  - {type: quantize, mode: static, samples: 32}
benchmark: {threads: 1, runs: 5, warmup: 1}
"""


def test_prune_distill_quantize_through_the_cli(write_recipe, tmp_path):
    from edgec.cli import cli

    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["compress", str(write_recipe(E2E)), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    distill = next(p for p in report["passes"] if p["type"] == "distill")
    d = distill["details"]
    assert {"teacher_accuracy", "student_accuracy_before", "student_accuracy_after",
            "agreement_before", "agreement_after"} <= set(d)
    assert distill["params_after"] == distill["params_before"]  # the pruned model is the student
    assert "distill" in (out / "report.md").read_text()


def test_data_free_recipe_runs_without_any_data(write_recipe, tmp_path):
    from edgec.cli import cli

    text = E2E.replace("data: {source: digits}\n", "").replace(
        "features: [{teacher: \"3\", student: \"3\", loss: mse}]",
        "alpha: 1, synthetic: {images: 40, iterations: 10, batch_size: 20}")
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["compress", str(write_recipe(text)), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert (out / "distill-synthetic.npz").is_file()
    report = json.loads((out / "report.json").read_text())
    assert any("calibrate on 40 synthetic inputs" in n for p in report["passes"] for n in p["notes"])


# --- metadata route (Dream Distillation) ------------------------------------------------------

def test_metadata_holds_class_summaries_not_images(teacher, data):
    from edgec.passes.distill_metadata import collect_metadata

    meta = collect_metadata(teacher, data.train, clusters=2, components=4)
    assert meta.layer == "8" and meta.centroids.shape[1] == 128
    assert sorted(set(meta.classes.tolist())) == list(range(10)) and len(meta.centroids) <= 20
    assert meta.components.shape == (len(meta.centroids), 4, 128)
    assert meta.counts.sum() == len(data.train)
    targets = meta.sample(torch.tensor([0, 0, 3]), torch.Generator().manual_seed(0))
    assert targets.shape == (3, 128) and torch.isfinite(targets).all()


def test_dream_synthesis_from_metadata_made_by_the_cli(write_recipe, teacher, tmp_path):
    from edgec.cli import cli
    from edgec.passes.distill_metadata import Metadata

    recipe = write_recipe(E2E)
    out = tmp_path / "meta.npz"
    result = CliRunner().invoke(cli, ["metadata", str(recipe), "-o", str(out), "--clusters", "2"])
    assert result.exit_code == 0, result.output
    meta = Metadata.load(out)
    assert "clusters over 10 classes" in result.output
    cfg = SynthesisConfig(images=20, iterations=20, batch_size=20, method="dream", metadata=str(out))
    model = tiny_cnn(16)  # same architecture as the recipe's model, so the metadata fits
    made = synthesize(model, (1, 1, 8, 8), 10, cfg, 0, Progress(), meta)
    assert np.isfinite(made.x).all() and made.x.shape == (20, 1, 8, 8)
    with pytest.raises(ValidationError, match="method: dream needs metadata"):
        SynthesisConfig(method="dream")


def test_metadata_writes_the_file_named_and_refuses_a_bad_path_before_any_work(
        write_recipe, tmp_path, monkeypatch):
    """numpy appended .npz to a name without it (-o m.txt wrote m.txt.npz, said m.txt); a folder
    or a file as the parent was found only after the work, as an internal error."""
    from edgec.cli import cli
    from edgec.passes.distill_metadata import Metadata

    recipe = write_recipe(E2E)
    out = tmp_path / "meta.txt"
    result = CliRunner().invoke(cli, ["metadata", str(recipe), "-o", str(out), "--clusters", "2"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and not (tmp_path / "meta.txt.npz").exists()
    assert result.output.startswith(f"{out}: ") and Metadata.load(out).layer
    (tmp_path / "adir.onnx").mkdir()
    (tmp_path / "afile.onnx").write_text("")

    def no_work(*args, **kwargs):
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr("edgec.models.load_model", no_work)
    for bad, message in ((tmp_path / "adir.onnx", "is a folder; give a file path"),
                         (tmp_path / "afile.onnx" / "m.npz", "afile.onnx' is a file, not a folder")):
        result = CliRunner().invoke(cli, ["metadata", str(recipe), "-o", str(bad)])
        assert result.exit_code == 2 and message in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("a")) == [
        "adir.onnx", "afile.onnx"]  # nothing written beside them (no adir.onnx.npz)
