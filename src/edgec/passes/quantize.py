"""Post-training quantization of the exported ONNX model with onnxruntime.quantization.

Defaults come from measurements (benchmarks/quant_settings.py) and onnxruntime's CPU guidance:
QDQ format, uint8 activations with int8 per-channel weights (U8S8), min-max calibration on
``quant_pre_process``-ed graphs. Signed activations (S8S8, onnxruntime's own default) ran at 0.76×
the fp32 speed of a ResNet-20 where U8S8 ran at 1.96×. ``reduce_range`` (7-bit weights) is decided
from the CPU: on x86 without VNNI, int8 products are summed in pairs into int16, which saturates
with full-range weights; with VNNI (or off x86) it only costs precision.
"""

from __future__ import annotations

import difflib
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.cpu import cpu_flags, has_vnni, is_x86
from edgec.errors import PassError
from edgec.passes.base import OnnxPass, PassContext
from edgec.passes.quantize_config import QuantizeConfig
from edgec.passes.quantize_quiet import quiet_ort_output
from edgec.passes.registry import register_pass

if TYPE_CHECKING:
    import onnx

# Measured with benchmarks/quant_settings.py (onnxruntime 1.31, 1 thread, batch 1, AMD EPYC with
# AVX-512 VNNI; digits CNN and ResNet-20). Quoted in notes so a user sees the cost of a choice.
DYNAMIC_CONV_SPEED = "0.14–0.17×"  # ConvInteger vs fp32 Conv: 6–7× slower
S8S8_QDQ_SPEED, U8S8_QDQ_SPEED, S8S8_QOP_SPEED = "0.76×", "1.96×", "0.17×"  # ResNet-20 vs fp32
FP16_SPEED = "0.99–1.00×"
ERROR_SAMPLES = 64  # calibration samples used for the per-layer error table

QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv",
             "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
             "ConvInteger", "MatMulInteger", "Cast", "MatMulNBits")


@register_pass
class Quantize(OnnxPass):
    """int8 (static or dynamic) or fp16 quantization of an ONNX model."""

    name = "quantize"
    Config = QuantizeConfig
    config: QuantizeConfig

    def apply(self, src: Path, dst: Path, ctx: PassContext) -> None:
        import onnx

        cfg = self.config
        flags = cpu_flags()
        self.details.update(mode=cfg.mode, cpu_has_vnni=has_vnni(flags))
        with tempfile.TemporaryDirectory(prefix="edgec-quant-") as tmp, quiet_ort_output():
            if cfg.mode == "fp16":
                from edgec.passes.quantize_fp16 import quantize_fp16

                quantize_fp16(self, onnx.load(str(src)), dst)
            elif cfg.mode == "int4_weight":
                from edgec.passes.quantize_int4 import quantize_int4_weights

                quantize_int4_weights(self, src, dst)
            else:
                model_path = self._preprocess(src, Path(tmp) / "preprocessed.onnx")
                excluded = self._excluded_nodes(onnx.load(str(model_path)))
                rr = self._resolve_reduce_range(flags)
                self.details.update(per_channel=cfg.per_channel, weight_type="int8",
                                    reduce_range=rr, excluded_nodes=excluded)
                if cfg.mode == "dynamic":
                    self._dynamic(model_path, dst, excluded, rr)
                else:
                    self._static_and_refine(model_path, dst, excluded, rr, ctx)
        ops = Counter(n.op_type for n in onnx.load(str(dst)).graph.node)
        self.details["quant_ops"] = {op: ops[op] for op in QUANT_OPS if ops[op]}
        from edgec.doctor import diagnose  # the report's "why is it slow" section, graph only

        found = diagnose(dst, runs=0)
        self.details["mac_share"] = found.mac_share
        self.details["doctor"] = [f"{f.message} Cost: {f.cost}. Fix: {f.fix}" for f in found.findings]

    def _static_and_refine(self, model: Path, dst: Path, excluded: list[str], rr: bool,
                           ctx: PassContext) -> None:
        """Static int8, then the optional refinements that return layers to float."""
        requantize, batches = self._static(model, dst, excluded, rr, ctx)
        if self.config.format != "qdq":
            return  # QOperator graphs rename layers: no per-layer comparison with the float model
        errors = self._layer_errors(model, dst, batches)
        if self.config.max_accuracy_drop is not None:
            from edgec.passes.quantize_fallback import fallback_to_float

            fallen = fallback_to_float(self, model, dst, requantize, excluded, errors, ctx)
            excluded = [*excluded, *fallen]
            if fallen:
                errors = self._layer_errors(model, dst, batches)
        if self.config.mode == "auto":
            from edgec.passes.quantize_auto import keep_fast_layers

            if keep_fast_layers(self, model, dst, requantize, excluded, batches[0][:1]):
                errors = self._layer_errors(model, dst, batches)
        from edgec.passes.quantize_fallback import summarize_layers

        summarize_layers(self, errors)

    def _layer_errors(self, model: Path, dst: Path, batches):
        from edgec.graph_stats import analyze_onnx
        from edgec.passes.quantize_errors import layer_errors

        macs = {layer.name: layer.macs for layer in analyze_onnx(model).layers}
        sample, n = [], 0
        for b in batches:  # the per-layer comparison needs far fewer samples than calibration
            if n >= ERROR_SAMPLES:
                break
            sample.append(b)
            n += len(b)
        return layer_errors(model, dst, sample, self._input_name, macs)

    def _static(self, model: Path, dst: Path, excluded: list[str], rr: bool,
                ctx: PassContext) -> tuple[Callable[[list[str], Path], None], list]:
        """Quantize once; returns a function that re-quantizes with other float nodes, and the
        calibration batches."""
        import onnx
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        from edgec.passes.quantize_calib import CalibrationReader, calibration_batches, graph_input

        cfg = self.config
        x = _calibration_samples(ctx)
        if len(x) < cfg.samples:
            self.note(f"calibrated on {len(x)} samples: the calibration split has no more "
                      f"(samples: {cfg.samples} was requested)")
        x = x[:cfg.samples]
        inp = graph_input(onnx.load(str(model)))
        batches, batch_notes = calibration_batches(x, inp)
        for message in batch_notes:
            self.note(message)
        if cfg.activation_type == "int8" and is_x86():
            slow = S8S8_QOP_SPEED if cfg.format == "qoperator" else S8S8_QDQ_SPEED
            self.note(f"activation_type: int8 (S8S8) takes onnxruntime's slower signed-activation "
                      f"path on x86: measured {slow} fp32 speed on a ResNet-20 vs "
                      f"{U8S8_QDQ_SPEED} with uint8; use activation_type: uint8 for speed")
        extra = {"CalibPercentile": cfg.percentile} if cfg.method == "percentile" else {}
        self.details.update(
            format=cfg.format, activation_type=cfg.activation_type,
            calibration_samples=sum(len(b) for b in batches), method=cfg.method,
            **({"percentile": cfg.percentile} if cfg.method == "percentile" else {}),
        )
        methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                   "percentile": CalibrationMethod.Percentile}
        act = QuantType.QUInt8 if cfg.activation_type == "uint8" else QuantType.QInt8
        fmt = QuantFormat.QDQ if cfg.format == "qdq" else QuantFormat.QOperator
        total = sum(len(b) for b in batches)
        self._input_name = inp.name

        def requantize(float_nodes: list[str], out: Path) -> None:
            with ctx.progress.task("calibrating", total=total) as advance, quiet_ort_output():
                quantize_static(
                    str(model), str(out), CalibrationReader(inp.name, batches, advance),
                    quant_format=fmt, per_channel=cfg.per_channel, reduce_range=rr,
                    activation_type=act, weight_type=QuantType.QInt8,
                    nodes_to_exclude=float_nodes or None, calibrate_method=methods[cfg.method],
                    extra_options=extra,
                )

        requantize(excluded, dst)
        return requantize, batches

    def _dynamic(self, model: Path, dst: Path, excluded: list[str], rr: bool) -> None:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        graph = onnx.load(str(model)).graph
        convs = [n.name for n in graph.node if n.op_type == "Conv" and n.name not in excluded]
        if convs:
            self.note(f"dynamic int8 turns {len(convs)} Conv node(s) into ConvInteger, which "
                      f"onnxruntime runs at {DYNAMIC_CONV_SPEED} the fp32 speed on CPU (6–7× "
                      "slower, measured); use mode: static for conv nets, or exclude_ops: [Conv]")
        self.details.update(format="integer_ops", activation_type="uint8 (at run time)")
        quantize_dynamic(str(model), str(dst), per_channel=self.config.per_channel,
                         reduce_range=rr, weight_type=QuantType.QInt8,
                         nodes_to_exclude=excluded or None)

    def _preprocess(self, src: Path, out: Path) -> Path:
        self.details["preprocessed"] = False
        if not self.config.preprocess:
            return src
        from onnxruntime.quantization.shape_inference import quant_pre_process

        symbolic = not _onnx_infers_every_shape(src)
        self.details["symbolic_shape_inference"] = symbolic
        try:
            quant_pre_process(str(src), str(out), skip_symbolic_shape=not symbolic)
        except Exception as exc:  # symbolic shape inference rejects some graphs; not fatal
            self.note(f"quant_pre_process failed ({type(exc).__name__}: {exc}); quantized the "
                      "exported graph as is")
            return src
        self.details["preprocessed"] = True
        return out

    def _resolve_reduce_range(self, flags: frozenset[str]) -> bool:
        setting = self.config.reduce_range
        risky = is_x86() and not has_vnni(flags)
        if setting == "auto":
            self.details["reduce_range_reason"] = (
                "auto: x86 without VNNI, 7-bit weights avoid int16 saturation" if risky
                else "auto: CPU accumulates int8 products without saturation")
            return risky
        self.details["reduce_range_reason"] = "set in the recipe"
        if risky and not setting:
            self.note("reduce_range: false on an x86 CPU without VNNI: full-range int8 weights "
                      "can saturate int16 sums and cost accuracy; reduce_range: auto avoids it")
        return setting

    def _excluded_nodes(self, model: onnx.ModelProto) -> list[str]:
        """Node names to keep in float: exclude_nodes (checked to exist) plus exclude_ops' nodes."""
        cfg = self.config
        names = [n.name for n in model.graph.node]
        missing = [n for n in cfg.exclude_nodes if n not in names]
        if missing:
            close = difflib.get_close_matches(missing[0], names, n=3)
            where = " after quant_pre_process (set preprocess: false to keep export names)" \
                if self.details.get("preprocessed") else ""
            raise PassError(
                f"exclude_nodes: no node named {', '.join(map(repr, missing))} in the graph{where}."
                + (f" Did you mean {', '.join(map(repr, close))}?" if close else "")
                + " List node names with `edgec inspect model.onnx`."
            )
        op_types = {n.op_type for n in model.graph.node}
        for op in cfg.exclude_ops:
            if op not in op_types:
                same = [t for t in op_types if t.lower() == op.lower()]
                if same:
                    raise PassError(f"exclude_ops: '{op}' is not an op type in this graph; "
                                    f"op types are case-sensitive: did you mean '{same[0]}'?")
                self.note(f"exclude_ops: no {op} nodes in this graph; nothing excluded for it")
        by_op = [n.name for n in model.graph.node if n.op_type in cfg.exclude_ops]
        return sorted(set(cfg.exclude_nodes) | set(by_op))


def _calibration_samples(ctx: PassContext):
    import numpy as np

    calib = getattr(ctx.data, "calib", None)
    x = getattr(calib, "x", None)
    if x is None or len(x) == 0:
        raise PassError("Static quantization needs calibration samples, but the data's "
                        "calibration split is empty. Use a data source with enough samples "
                        "(e.g. data: {source: digits}) or mode: dynamic.")
    return np.asarray(x)


def _onnx_infers_every_shape(path: Path) -> bool:
    """True when onnx's own shape inference gives every node output a shape (CNNs, MLPs): then
    quant_pre_process's symbolic shape inference adds nothing — the quantized graphs of five
    torchvision CNNs came out identical without it — and skipping it saves importing sympy and
    running it (the quickstart's quantize pass: 0.55 s → 0.15 s here). Graphs it cannot type (dynamic
    reshapes in transformers) still get it."""
    import onnx

    try:
        graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
    except Exception:  # let quant_pre_process try (and report) its own way
        return False
    typed = {v.name for v in (*graph.value_info, *graph.output, *graph.input)
             if v.type.tensor_type.HasField("shape")}
    return all(out in typed for node in graph.node for out in node.output if out)
