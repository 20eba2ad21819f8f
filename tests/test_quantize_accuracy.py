"""Accuracy-aware static quantization and the per-layer error table, on a model built to break.

The model's first conv has one output channel with a huge constant activation that nothing reads:
int8 must stretch that layer's output scale over it, so the informative channels round to zero and
accuracy collapses. Returning that one layer to float fixes it, so the fallback loop must pick it
first (largest added noise) and stop there.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgec.data import Split
from edgec.passes.base import PassContext
from edgec.passes.quantize import Quantize, QuantizeConfig
from edgec.passes.quantize_errors import errors_markdown
from edgec.progress import Progress

SHAPE = (1, 1, 8, 8)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _outlier_model(path: Path) -> Path:
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 64, 10),
    ).eval()
    with torch.no_grad():
        model[0].weight[7].zero_()
        model[0].bias[7] = 5000.0  # a dead, huge channel: ruins the per-tensor activation scale
        model[2].weight[:, 7].zero_()
    torch.onnx.export(model, torch.randn(*SHAPE), str(path), input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"input": {0: "batch"}})
    return path


def _labels_from(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0].argmax(1)


@pytest.fixture(scope="module")
def outlier(tmp_path_factory) -> tuple[Path, PassContext]:
    tmp = tmp_path_factory.mktemp("outlier")
    src = _outlier_model(tmp / "fp32.onnx")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, *SHAPE[1:])).astype(np.float32)
    ex = rng.standard_normal((128, *SHAPE[1:])).astype(np.float32)
    # labels = the float model's own predictions: float accuracy is 100%, any drop is int8's
    data = SimpleNamespace(calib=Split(x), eval=Split(ex, _labels_from(src, ex)), train=None)
    ctx = PassContext(data=data, baseline=None, input_shape=SHAPE, seed=0, run_dir=tmp,
                      recipe_dir=tmp, progress=Progress(enabled=False))
    return src, ctx


def _quantize(src: Path, ctx: PassContext, tmp_path: Path, **fields) -> Quantize:
    p = Quantize(QuantizeConfig(type="quantize", samples=96, **fields))
    p.apply(src, tmp_path / "out.onnx", ctx)
    return p


def test_error_table_blames_the_outlier_layer(outlier, tmp_path):
    src, ctx = outlier
    p = _quantize(src, ctx, tmp_path)
    rows = p.details["layer_errors"]
    assert [r["op_type"] for r in rows] == ["Conv", "Conv", "Gemm"]
    assert all(r["int8"] for r in rows) and p.details["int8_mac_share"] == 1.0
    worst = max(rows, key=lambda r: r["added_noise"])
    assert worst["name"] == rows[0]["name"]  # the first conv's output scale is the problem
    assert rows[0]["sqnr_db"] < 10  # noise as large as the signal in the live channels
    md = "\n".join(errors_markdown(p.details))
    assert "Per-layer quantization error" in md and rows[0]["name"] in md
    assert "float_layers" not in p.details  # no fallback without max_accuracy_drop


def test_fallback_returns_the_worst_layer_and_stops_at_the_limit(outlier, tmp_path):
    src, ctx = outlier
    p = _quantize(src, ctx, tmp_path, max_accuracy_drop=0.05)
    d = p.details
    assert d["accuracy_float"] == 1.0
    assert d["accuracy_float"] - d["accuracy_all_int8"] > 0.05  # the model really breaks in int8
    assert d["limit_met"] and d["accuracy_float"] - d["accuracy_final"] <= 0.05
    names = [r["name"] for r in d["layer_errors"]]
    # worst first; its consumer follows (a tensor stays int8 while any reader is int8), then stop
    assert d["float_layers"] == names[:2]
    history = d["fallback_history"]
    assert len(history) == 3 and [h["float_layer"] for h in history[1:]] == names[:2]
    assert all(h["drop"] > 0.05 for h in history[:-1]) and history[-1]["drop"] <= 0.05
    assert [r["int8"] for r in d["layer_errors"]] == [False, False, True]
    assert 0 < d["int8_mac_share"] < 1
    assert d["size_cost"] > 1 and d["latency_cost"] > 0
    assert any("returned to float" in n for n in p.notes)


def test_loose_limit_keeps_everything_int8(outlier, tmp_path):
    src, ctx = outlier
    p = _quantize(src, ctx, tmp_path, max_accuracy_drop=1.0)
    assert p.details["float_layers"] == [] and p.details["limit_met"]
    assert any("no layer returned" in n for n in p.notes)


def test_unreachable_limit_tries_every_layer_and_says_so(outlier, tmp_path, monkeypatch):
    from edgec.passes import quantize_fallback

    src, ctx = outlier
    calls = []  # the first evaluation is the float model's; every quantized one scores 0.5

    def accuracy(path, split):
        calls.append(path)
        return 1.0 if len(calls) == 1 else 0.5

    monkeypatch.setattr(quantize_fallback, "onnx_accuracy", accuracy)
    p = _quantize(src, ctx, tmp_path, max_accuracy_drop=0.01)
    assert not p.details["limit_met"] and len(p.details["float_layers"]) == 3
    assert any("NOT met" in n for n in p.notes)


def test_max_accuracy_drop_needs_static_mode_and_labels(outlier, tmp_path):
    from pydantic import ValidationError

    from edgec.errors import PassError

    with pytest.raises(ValidationError, match="mode: static"):
        QuantizeConfig(type="quantize", mode="dynamic", max_accuracy_drop=0.01)
    assert "labelled" in QuantizeConfig(type="quantize", max_accuracy_drop=0.01).data_requirement()
    src, ctx = outlier
    unlabelled = SimpleNamespace(calib=ctx.data.calib, eval=Split(ctx.data.eval.x), train=None)
    ctx2 = PassContext(data=unlabelled, baseline=None, input_shape=SHAPE, seed=0,
                       run_dir=tmp_path, recipe_dir=tmp_path, progress=Progress(enabled=False))
    with pytest.raises(PassError, match="labelled eval data"):
        _quantize(src, ctx2, tmp_path, max_accuracy_drop=0.01)


def test_report_md_has_the_layer_table_for_static_runs(write_recipe, tmp_path):
    from click.testing import CliRunner

    from edgec.cli import cli
    from tests.conftest import TINY_RECIPE

    recipe = write_recipe(TINY_RECIPE.replace("samples: 32}", "samples: 32, max_accuracy_drop: 0.5}"))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["compress", str(recipe), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    assert "Per-layer quantization error" in text and "| /0/Conv |" not in text.split("####")[0]
    assert "- int8_mac_share: 1.0" in text and "- limit_met: True" in text
