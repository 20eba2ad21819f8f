"""ONNX statistics: params and MACs agree with torch and with hand counts, for float and int8."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from edgec.errors import UsageError
from edgec.graph_stats import analyze_onnx, count_onnx_params
from edgec.torch_stats import count_params


def _export(model: nn.Module, shape, path, dynamic=False):
    model.eval()
    kwargs = {"dynamic_axes": {"x": {0: "batch"}}} if dynamic else {}
    torch.onnx.export(model, torch.randn(*shape), str(path), input_names=["x"], dynamo=False,
                      opset_version=17, **kwargs)
    return path


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise
        nn.Flatten(), nn.Linear(8 * 6 * 6, 5),
    )


def test_params_and_macs_match_hand_counts(tmp_path):
    model = _net()
    path = _export(model, (1, 3, 6, 6), tmp_path / "m.onnx")
    stats = analyze_onnx(path)
    total, _ = count_params(model)
    # BatchNorm folds into the first conv at export: its 16 affine params vanish from the graph
    assert stats.params == total - 16
    conv1 = 6 * 6 * 8 * 3 * 9
    dw = 6 * 6 * 8 * 1 * 9
    fc = 5 * 288
    assert stats.macs == conv1 + dw + fc
    assert stats.flops == 2 * stats.macs
    assert [layer.op_type for layer in stats.layers] == ["Conv", "Conv", "Gemm"]
    assert [layer.macs for layer in stats.layers] == [conv1, dw, fc]
    assert stats.layers[0].output_shape == [1, 8, 6, 6]
    assert stats.weight_dtypes == {"float32": stats.params}
    assert count_onnx_params(path) == (stats.params, stats.nonzero_params)


def test_dynamic_batch_counts_at_given_shape(tmp_path):
    path = _export(_net(), (1, 3, 6, 6), tmp_path / "m.onnx", dynamic=True)
    one = analyze_onnx(path)
    four = analyze_onnx(path, (4, 3, 6, 6))
    assert one.input_shape == [1, 3, 6, 6]
    assert four.macs == 4 * one.macs


def test_zeroed_weights_are_counted(tmp_path):
    model = _net()
    with torch.no_grad():
        model[5].weight[:, :100] = 0
    stats = analyze_onnx(_export(model, (1, 3, 6, 6), tmp_path / "m.onnx"))
    assert stats.params - stats.nonzero_params == 5 * 100


def test_int8_qdq_model_counts_weights_not_scales(tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    src = _export(_net(), (1, 3, 6, 6), tmp_path / "m.onnx")
    dst = tmp_path / "q.onnx"

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": np.random.randn(1, 3, 6, 6).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
    fp, q = analyze_onnx(src), analyze_onnx(dst)
    assert q.params == fp.params  # same weights, stored in fewer bits
    assert q.macs == fp.macs
    assert q.weight_dtypes.get("int8", 0) >= fp.params - 8 - 8 - 5  # weights int8, biases int32
    assert {layer.weight_dtype for layer in q.layers} == {"int8"}


def test_corrupt_and_missing_files_are_user_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(UsageError, match=r"bad\.onnx"):
        analyze_onnx(bad)
    with pytest.raises(UsageError, match="does not exist"):
        count_onnx_params(tmp_path / "missing.onnx")


def test_wrong_rank_input_shape_is_a_usage_error(tmp_path):
    path = _export(_net(), (1, 3, 6, 6), tmp_path / "m.onnx", dynamic=True)
    with pytest.raises(UsageError, match=r"--input-shape 1,108 does not fit .* is N,3,6,6"):
        analyze_onnx(path, (1, 108))


def test_shared_parameters_counted_once():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, lin)
    assert count_params(model) == (20, 20)


def test_a_folder_is_named_as_such_and_a_run_folder_offers_its_models(tmp_path):
    """`edgec inspect runs/x` is a natural slip: say it is a folder, and which files to give."""
    with pytest.raises(UsageError, match="is a folder, not an ONNX file") as empty:
        analyze_onnx(tmp_path)
    assert "Give the path of a .onnx file" in empty.value.hint
    (tmp_path / "model.onnx").write_bytes(b"")
    (tmp_path / "baseline.onnx").write_bytes(b"")
    with pytest.raises(UsageError) as run:
        analyze_onnx(tmp_path)
    assert f"'{tmp_path / 'model.onnx'}' (compressed) or '{tmp_path / 'baseline.onnx'}'" in run.value.hint



def test_dynamic_height_and_width_are_counted_at_the_shape_given_never_at_1x1(tmp_path):
    conv = nn.Conv2d(3, 8, 3, padding=1).eval()
    path = tmp_path / "dyn.onnx"
    torch.onnx.export(conv, torch.randn(1, 3, 6, 6), str(path), input_names=["x"], dynamo=False,
                      dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}})
    with pytest.raises(UsageError, match=r"dynamic input shape \(x: N,3,\?,\?\)") as err:
        analyze_onnx(path)
    assert "--input-shape" in err.value.hint
    assert analyze_onnx(path, (1, 3, 10, 12)).macs == 10 * 12 * 8 * 3 * 9
    with pytest.raises(UsageError, match=r"--input-shape 1,1,10,12 does not fit .* is N,3,\?,\? "
                       r"\(N: any batch, \?: any size\)"):
        analyze_onnx(path, (1, 1, 10, 12))  # the channels are fixed


def test_inspect_says_the_batch_it_counted(tmp_path):
    from click.testing import CliRunner

    from edgec.cli import cli

    path = _export(_net(), (1, 3, 6, 6), tmp_path / "m.onnx", dynamic=True)
    args = ["inspect", str(path), "--input-shape", "2,3,6,6"]
    text = " ".join(CliRunner().invoke(cli, args).output.split())  # rich wraps at the width
    assert "FLOPs at batch 2," in text
    counted = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    assert counted["macs"] == 2 * analyze_onnx(path).macs and counted["input_shape"][0] == 2
