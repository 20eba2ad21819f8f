"""mode: int4_weight on Linear-heavy models: MatMulNBits graphs, logical parameter counts, fidelity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgec.errors import PassError
from edgec.graph_stats import analyze_onnx
from edgec.passes.quantize import Quantize, QuantizeConfig

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")]


def _export(model, shape, path: Path) -> Path:
    import torch

    torch.onnx.export(model.eval(), torch.randn(*shape), str(path), input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"input": {0: "batch"}})
    return path


def _mlp():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def _int4(src: Path, tmp_path: Path, **fields) -> tuple[Quantize, Path]:
    p = Quantize(QuantizeConfig(type="quantize", mode="int4_weight", **fields))
    dst = tmp_path / "int4.onnx"
    p.apply(src, dst, None)
    return p, dst


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]


def _cosine(a, b) -> float:
    return float((a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b))


def test_mlp_gets_matmulnbits_with_the_same_logical_params(tmp_path):
    src = _export(_mlp(), (1, 64), tmp_path / "mlp.onnx")
    p, dst = _int4(src, tmp_path)
    before, after = analyze_onnx(src), analyze_onnx(dst)
    assert after.op_counts.get("MatMulNBits") == 3 and "Gemm" not in after.op_counts
    assert after.params == before.params  # packed nibbles count as weights, scales do not
    weights = sum(layer.params for layer in before.layers) - (256 + 256 + 10)  # minus biases
    assert after.weight_dtypes["int4"] == weights
    assert after.macs == before.macs
    assert src.stat().st_size / dst.stat().st_size > 5
    x = np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32)
    assert _cosine(_run(src, x), _run(dst, x)) > 0.99
    assert p.details["int4_layers"] == 3 and p.details["gemms_rewritten"] == 3


def test_block_size_symmetry_and_exclusions(tmp_path):
    src = _export(_mlp(), (1, 64), tmp_path / "mlp.onnx")
    p, dst = _int4(src, tmp_path, block_size=64, symmetric=False, exclude_nodes=["/4/Gemm"])
    stats = analyze_onnx(dst)
    assert stats.op_counts["MatMulNBits"] == 2 and p.details["block_size"] == 64
    assert p.details["symmetric"] is False and p.details["excluded_nodes"] == ["/4/Gemm"]


def test_transformer_encoder_packs_its_linear_layers(tmp_path):
    import torch
    import torch.nn as nn

    torch.manual_seed(0)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
            self.head = nn.Linear(64, 10)

        def forward(self, x):
            return self.head(self.enc(x).mean(1))

    src = _export(Encoder(), (1, 8, 64), tmp_path / "enc.onnx")
    p, dst = _int4(src, tmp_path)
    assert p.details["int4_layers"] >= 4  # qkv, out-proj, two feed-forward, head
    x = np.random.default_rng(0).standard_normal((4, 8, 64)).astype(np.float32)
    assert _cosine(_run(src, x), _run(dst, x)) > 0.98


def test_conv_only_model_is_a_clear_error(tmp_path):
    import torch.nn as nn

    src = _export(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), (1, 1, 8, 8), tmp_path / "c.onnx")
    with pytest.raises(PassError, match="no MatMul/Linear"):
        _int4(src, tmp_path)


def test_int4_fields_need_int4_mode():
    with pytest.raises(ValueError, match="int4_weight"):
        QuantizeConfig(type="quantize", block_size=64)
    assert QuantizeConfig(type="quantize", mode="int4_weight").data_requirement() is None
