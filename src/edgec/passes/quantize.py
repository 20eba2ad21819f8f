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
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from edgec.cpu import cpu_flags, has_vnni, is_x86
from edgec.errors import PassError
from edgec.passes.base import OnnxPass, PassConfig, PassContext
from edgec.passes.registry import register_pass

if TYPE_CHECKING:
    import onnx

# Measured with benchmarks/quant_settings.py (onnxruntime 1.31, 1 thread, batch 1, AMD EPYC with
# AVX-512 VNNI; digits CNN and ResNet-20). Quoted in notes so a user sees the cost of a choice.
DYNAMIC_CONV_SPEED = "0.14–0.17×"  # ConvInteger vs fp32 Conv: 6–7× slower
S8S8_QDQ_SPEED, U8S8_QDQ_SPEED, S8S8_QOP_SPEED = "0.76×", "1.96×", "0.17×"  # ResNet-20 vs fp32
FP16_SPEED = "0.99–1.00×"

QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv",
             "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
             "ConvInteger", "MatMulInteger", "Cast")


class QuantizeConfig(PassConfig):
    type: Literal["quantize"] = "quantize"
    mode: Literal["static", "dynamic", "fp16"] = Field(
        "static",
        description="static: int8 weights and activations, activation ranges calibrated on the "
        "recipe's data (fastest on CPU for conv nets). dynamic: int8 weights, activation ranges "
        "computed at run time (for Linear/RNN models; turns Conv into slow ConvInteger). fp16: "
        "half-precision weights, float32 inputs/outputs (half the size; no CPU speed-up).",
    )
    per_channel: bool = Field(
        True, description="One weight scale per output channel instead of per tensor: better "
        "accuracy for conv nets, no measurable speed cost on CPU.",
    )
    samples: int = Field(256, ge=1, description="Calibration samples (static): the first N of the "
                         "calibration split.")
    method: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="How activation ranges are calibrated (static): minmax (fast, "
        "robust), entropy (KL-divergence threshold) or percentile (clip outliers).",
    )
    percentile: float = Field(
        99.999, gt=0, le=100, description="Percentile of activation magnitudes kept (only with "
        "method: percentile).",
    )
    activation_type: Literal["uint8", "int8"] = Field(
        "uint8", description="Activation integer type (static). uint8 (U8S8) is what x86 "
        "onnxruntime kernels run fastest; int8 (S8S8) measured 2.5× slower here.",
    )
    reduce_range: bool | Literal["auto"] = Field(
        "auto", description="Quantize weights to 7 bits. auto: on for x86 CPUs without VNNI, "
        "where full 8-bit weights can saturate int16 sums and lose accuracy; off elsewhere.",
    )
    format: Literal["qdq", "qoperator"] = Field(
        "qdq", description="Graph form (static): qdq (QuantizeLinear/DequantizeLinear pairs that "
        "onnxruntime fuses into int8 kernels; portable) or qoperator (QLinearConv etc. directly).",
    )
    preprocess: bool = Field(
        True, description="Run onnxruntime's quant_pre_process (shape inference, graph fusions) "
        "before quantizing. Node names may change; turn off to exclude nodes by export name.",
    )
    exclude_ops: tuple[str, ...] = Field(
        (), description="ONNX op types to keep in float, e.g. [Gemm] (case-sensitive).",
    )
    exclude_nodes: tuple[str, ...] = Field(
        (), description="ONNX node names to keep in float (see `edgec inspect model.onnx`).",
    )

    @model_validator(mode="after")
    def _percentile_needs_method(self) -> QuantizeConfig:
        if "percentile" in self.model_fields_set and self.method != "percentile":
            raise ValueError(f"percentile only applies to method: percentile (method is "
                             f"{self.method}); remove percentile or set method: percentile")
        return self

    def data_requirement(self) -> str | None:
        return "calibration data for static quantization" if self.mode == "static" else None


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
        with tempfile.TemporaryDirectory(prefix="edgec-quant-") as tmp, _quiet_ort_logs():
            if cfg.mode == "fp16":
                self._to_fp16(onnx.load(str(src)), dst)
            else:
                model_path = self._preprocess(src, Path(tmp) / "preprocessed.onnx")
                excluded = self._excluded_nodes(onnx.load(str(model_path)))
                rr = self._resolve_reduce_range(flags)
                self.details.update(per_channel=cfg.per_channel, weight_type="int8",
                                    reduce_range=rr, excluded_nodes=excluded)
                if cfg.mode == "dynamic":
                    self._dynamic(model_path, dst, excluded, rr)
                else:
                    self._static(model_path, dst, excluded, rr, ctx)
        ops = Counter(n.op_type for n in onnx.load(str(dst)).graph.node)
        self.details["quant_ops"] = {op: ops[op] for op in QUANT_OPS if ops[op]}

    def _static(self, model: Path, dst: Path, excluded: list[str], rr: bool,
                ctx: PassContext) -> None:
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
        with ctx.progress.task("calibrating", total=total) as advance:
            quantize_static(
                str(model), str(dst), CalibrationReader(inp.name, batches, advance),
                quant_format=fmt, per_channel=cfg.per_channel, reduce_range=rr,
                activation_type=act, weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded or None, calibrate_method=methods[cfg.method],
                extra_options=extra,
            )

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

    def _to_fp16(self, model: onnx.ModelProto, dst: Path) -> None:
        import onnx
        from onnxruntime.transformers.float16 import (
            DEFAULT_OP_BLOCK_LIST,
            convert_float_to_float16,
        )

        cfg = self.config
        excluded = self._excluded_nodes(model)
        # keep_io_types inserts Casts at the graph's edges, so callers still feed and get float32
        half = convert_float_to_float16(
            model, keep_io_types=True, op_block_list=[*DEFAULT_OP_BLOCK_LIST, *cfg.exclude_ops],
            node_block_list=excluded or None,
        )
        onnx.save(half, str(dst))
        self.details.update(format="float16", weight_type="float16", activation_type="float16",
                            io_type="float32", excluded_nodes=excluded)
        fast = cpu_flags() & {"avx512_fp16", "amx_fp16"}
        self.note(f"fp16 halves the file, but onnxruntime's CPU kernels mostly compute in float32 "
                  f"behind Cast nodes: measured {FP16_SPEED} the fp32 speed here"
                  + ("" if fast else "; this CPU has no native fp16 arithmetic either"))

    def _preprocess(self, src: Path, out: Path) -> Path:
        self.details["preprocessed"] = False
        if not self.config.preprocess:
            return src
        from onnxruntime.quantization.shape_inference import quant_pre_process

        try:
            quant_pre_process(str(src), str(out))
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


@contextmanager
def _quiet_ort_logs() -> Iterator[None]:
    # onnxruntime.quantization logs advice ("consider pre-processing") on the root logger for
    # every call; edgec turns what matters into notes, so hold it back for the duration only.
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)
