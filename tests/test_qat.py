"""QAT: fake-quantized fine-tuning exports a QDQ graph that onnxruntime runs as int8 and that
matches the torch fake-quant model within a few output quantization steps."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edgec.data import DataSplits, Split, digits_splits
from edgec.passes.base import PassContext
from edgec.passes.qat import QatConfig, QatPass
from edgec.progress import Progress

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SHAPE = (1, 1, 8, 8)


@pytest.fixture(scope="module")
def setup():
    import torch

    from edgec.training import TrainingConfig, train
    from tests.fixtures.tiny_models import tiny_cnn

    full = digits_splits()
    data = DataSplits(train=Split(full.train.x[:300], full.train.y[:300]), calib=full.calib,
                      eval=Split(full.eval.x[:200], full.eval.y[:200]), num_classes=10)
    torch.manual_seed(0)
    model = tiny_cnn()
    train(model, data.train, None, TrainingConfig(lr=0.05), epochs=2, seed=0,
          progress=Progress(enabled=False))
    return model.eval(), data


def _qat(setup, tmp_path, **fields):
    model, data = setup
    ctx = PassContext(data=data, baseline=model, input_shape=SHAPE, seed=0, run_dir=tmp_path,
                      recipe_dir=tmp_path, progress=Progress(enabled=False))
    fields = {"epochs": 2, "freeze_bn_after": 1, "batch_size": 64, **fields}
    p = QatPass(QatConfig(type="qat", **fields))
    return p, p.apply(copy.deepcopy(model), ctx)


def _export(model, path: Path) -> Path:
    from edgec.export import export_onnx
    from edgec.recipe import ExportConfig

    export_onnx(model, SHAPE, path, ExportConfig())
    return path


def _optimized_ops(path: Path, tmp_path: Path) -> Counter:
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    opts.log_severity_level = 3
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return Counter(n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)


def test_qat_export_runs_as_int8_and_matches_torch(setup, tmp_path):
    import torch

    from edgec.export import check_parity
    from edgec.graph_stats import analyze_onnx

    p, qat = _qat(setup, tmp_path, teacher="baseline")
    d = p.details
    assert d["quantized_layers"] == 3 and d["batchnorms_folded"] == 2
    assert [h["phase"] for h in d["epochs"]] == ["QAT (BN learning)", "QAT (BN folded)"]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in qat.modules())
    path = _export(qat, tmp_path / "qat.onnx")
    stats = analyze_onnx(path)
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(stats.op_counts)
    assert stats.weight_dtypes.get("int8", 0) > 0.9 * stats.params  # weights stored as int8
    ops = _optimized_ops(path, tmp_path)
    assert ops["QLinearConv"] == 2 and ops["QGemm"] + ops["QLinearMatMul"] == 1
    x = setup[1].eval.x[:128]
    parity = check_parity(qat, path, x, qat.edgec_parity_atol)  # raises beyond the tolerance
    assert parity.top1_agreement >= 0.97
    step = qat.edgec_parity_atol / 8
    assert parity.max_abs_diff <= 4 * step  # a few output steps, not a different model
    assert d["eval_accuracy_qat"] >= d["eval_accuracy_float"] - 0.05
    with torch.no_grad():  # eval mode must not move the observed ranges
        before = qat(torch.from_numpy(x)).numpy()
        after = qat(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(before, after)


def test_excluded_layers_stay_float(setup, tmp_path):
    p, qat = _qat(setup, tmp_path, exclude_layers=["8"])
    assert p.details["quantized_layers"] == 2 and p.details["float_layers"] == ["8"]
    ops = _optimized_ops(_export(qat, tmp_path / "q.onnx"), tmp_path)
    assert ops["QLinearConv"] == 2 and ops["QGemm"] == 0
    from edgec.errors import PassError

    with pytest.raises(PassError, match="no module named 'fc'"):
        _qat(setup, tmp_path, exclude_layers=["fc"])


@pytest.mark.parametrize(("vnni", "setting", "qmax"), [
    (True, "auto", 127), (False, "auto", 63), (True, True, 63), (False, False, 127)])
def test_reduce_range_follows_the_cpu(setup, tmp_path, monkeypatch, vnni, setting, qmax):
    from edgec import cpu
    from edgec.passes import qat as qat_module
    from edgec.passes.qat_modules import FakeQuantConv2d
    from edgec.training import TrainResult

    monkeypatch.setattr(cpu, "has_vnni", lambda flags=None: vnni)
    monkeypatch.setattr(cpu, "is_x86", lambda: True)
    monkeypatch.setattr(qat_module, "train", lambda *a, **k: TrainResult())  # no training cost
    p, qat = _qat(setup, tmp_path, reduce_range=setting)
    assert {m.weight_qmax for m in qat.modules() if isinstance(m, FakeQuantConv2d)} == {qmax}
    assert p.details["reduce_range"] is (qmax == 63)


def test_recipe_rejects_passes_after_qat():
    from edgec.errors import RecipeError
    from edgec.recipe import validate_recipe

    base = {"version": 1, "model": {"source": "zoo", "name": "digits_cnn",
                                    "input_shape": [1, 1, 8, 8]}, "data": {"source": "digits"}}
    with pytest.raises(RecipeError, match=r"comes after passes\[0\] \(qat\).*move it before"):
        validate_recipe(dict(base, passes=[{"type": "qat"}, {"type": "finetune"}]))
    with pytest.raises(RecipeError, match=r"\(quantize\) comes after .*qat.*remove it"):
        validate_recipe(dict(base, passes=[{"type": "qat"}, {"type": "quantize"}]))
    ok = validate_recipe(dict(base, passes=[{"type": "finetune"}, {"type": "qat"}]))
    assert [p.type for p in ok.passes] == ["finetune", "qat"]
    with pytest.raises(ValueError, match="freeze_bn_after"):
        QatConfig(type="qat", epochs=2, freeze_bn_after=3)


def test_compress_with_qat_end_to_end(write_recipe, tmp_path):
    from click.testing import CliRunner

    from edgec.cli import cli

    recipe = write_recipe("""\
        version: 1
        model: {source: python, callable: "tiny_models.py:tiny_cnn", input_shape: [1, 1, 8, 8]}
        data: {source: digits}
        passes:
          - {type: qat, epochs: 1, freeze_bn_after: 0, calibration_samples: 64}
        benchmark: {threads: 1, runs: 10, warmup: 2}
        """)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["compress", str(recipe), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads((out / "report.json").read_text())
    assert report["compressed"]["weight_dtypes"].get("int8", 0) > 0
    # int8 in the graph (QDQ), not float; the parity may be exactly 0 on a VNNI CPU, where
    # onnxruntime's int8 kernels reproduce the fake-quant arithmetic bit for bit
    import onnx

    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops, ops
    assert report["export"]["parity"]["compressed"]["top1_agreement"] >= 0.9


def test_training_after_bn_folding_uses_a_tenth_of_lr(setup, tmp_path, monkeypatch):
    # With BN folded nothing renormalizes the weights: at the unfolded lr a pruned ResNet-20
    # diverged (accuracy 10%). The folded phase must train at lr * FOLDED_LR_SCALE.
    import edgec.passes.qat as qat_module

    seen = []
    real_train = qat_module.train

    def spy(model, train_split, val, cfg, **kw):
        seen.append(cfg.lr)
        return real_train(model, train_split, val, cfg, **kw)

    monkeypatch.setattr(qat_module, "train", spy)
    _qat(setup, tmp_path, lr=0.02, epochs=2, freeze_bn_after=1)
    assert seen == [pytest.approx(0.02), pytest.approx(0.02 * qat_module.FOLDED_LR_SCALE)]
