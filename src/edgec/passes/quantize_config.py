"""The quantize pass's settings: one typed config for every mode (static, dynamic, fp16, auto,
int4_weight), checked with the recipe before any work."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edgec.passes.base import PassConfig


class QuantizeConfig(PassConfig):
    type: Literal["quantize"] = "quantize"
    mode: Literal["static", "dynamic", "fp16", "auto", "int4_weight"] = Field(
        "static",
        description="static: int8 weights and activations, activation ranges calibrated on the "
        "recipe's data (fastest on CPU for conv nets). dynamic: int8 weights, activation ranges "
        "computed at run time (for Linear/RNN models; turns Conv into slow ConvInteger). fp16: "
        "half-precision weights, float32 inputs/outputs (half the size, but slower on CPU: "
        "0.34x float speed on mobilenet_v3_small here). auto: "
        "static int8, then every layer whose int8 kernel is not faster than float on this CPU "
        "(onnxruntime profiler) stays float, so the result is never slower than float. "
        "int4_weight: 4-bit block-wise weights for MatMul/Linear layers (MatMulNBits), float "
        "activations; for transformers and MLPs.",
    )
    max_accuracy_drop: float | None = Field(
        None, ge=0, le=1, description="Accuracy-aware static quantization: if int8 loses more "
        "than this (fraction, 0.005 = 0.5 point) on the eval split, the layers with the largest "
        "quantization error go back to float one at a time until it does not.",
    )
    profile_runs: int = Field(
        30, ge=3, le=10000, description="mode: auto: profiled inferences per model (float and "
        "int8) to time each layer.",
    )
    prefer: Literal["size", "speed"] = Field(
        "size", description="mode: auto: of the candidates not slower than float (all-int8, "
        "int8 only where it pays), keep the smaller one (size) or the faster one (speed).",
    )
    block_size: Literal[16, 32, 64, 128, 256] = Field(
        32, description="mode: int4_weight: weights per quantization block (one scale each); "
        "smaller blocks are more accurate and slightly larger.",
    )
    symmetric: bool = Field(
        True, description="mode: int4_weight: symmetric 4-bit blocks (no zero point).",
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

    @model_validator(mode="after")
    def _mode_specific_fields(self) -> QuantizeConfig:
        if self.max_accuracy_drop is not None and self.mode != "static":
            raise ValueError(f"max_accuracy_drop applies to mode: static (mode is {self.mode}); "
                             "remove it or set mode: static")
        if self.mode == "auto" and self.format != "qdq":
            raise ValueError("mode: auto keeps single layers in float, which needs format: qdq")
        if self.max_accuracy_drop is not None and self.format != "qdq":
            raise ValueError("max_accuracy_drop returns single layers to float, which needs "
                             "format: qdq")
        for name, mode in (("profile_runs", "auto"), ("prefer", "auto"), ("block_size", "int4_weight"),
                           ("symmetric", "int4_weight")):
            if name in self.model_fields_set and self.mode != mode:
                raise ValueError(f"{name} only applies to mode: {mode} (mode is {self.mode})")
        return self

    def data_requirement(self) -> str | None:
        if self.max_accuracy_drop is not None:
            return "labelled eval data to measure the accuracy drop (max_accuracy_drop)"
        if self.mode in ("static", "auto"):
            return f"calibration data for {self.mode} quantization"
        return None
