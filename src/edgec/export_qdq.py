"""Store fake-quantized weights as int8 in an exported QDQ graph (QAT models).

torch exports a fake-quantized weight as float weight → (scale computation) → QuantizeLinear →
DequantizeLinear: correct, but the file keeps float32 weights. onnxruntime's *basic* graph
optimizations (constant folding, hardware-independent) fold the weight's QuantizeLinear into an
int8 initializer and the bias into int32, leaving only standard ONNX ops — the same form as
onnxruntime's own static QDQ quantizer output, 4× smaller.
"""

from __future__ import annotations

from pathlib import Path


def has_quantize_nodes(path: Path) -> bool:
    import onnx

    return any(n.op_type == "QuantizeLinear" for n in onnx.load(str(path)).graph.node)


def fold_weight_quantization(path: Path) -> None:
    """Rewrite ``path`` in place with constant quantization folded (weights stored as int8)."""
    import onnx
    import onnxruntime as ort

    tmp = path.with_name(path.stem + ".folded.onnx")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(tmp)
    opts.log_severity_level = 3
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    model = onnx.load(str(tmp))
    tmp.unlink()
    original = onnx.load(str(path))
    del model.graph.input[:]  # keep the exported names and dynamic axes of inputs and outputs
    model.graph.input.extend(original.graph.input)
    del model.graph.output[:]
    model.graph.output.extend(original.graph.output)
    onnx.save(model, str(path))
