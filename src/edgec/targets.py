"""Device targets: what a class of device can hold and run, loaded from a YAML profile.

A profile names a class of device, not one board: its flash budget (bytes of the deployed model),
its RAM budget (activations, plus the weights when the runtime copies them into RAM), the operator
set of its runtime with dtype and opset limits, and optionally a latency budget. Built-in profiles
live in configs/targets/<name>.yaml; any other YAML file with the same fields works by path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from edgec.config import ConfigModel
from edgec.errors import RecipeError

# Shipped next to the package sources (a source checkout or editable install).
BUILTIN_DIR = Path(__file__).resolve().parents[2] / "configs" / "targets"

DType = Literal["float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "uint16",
                "int32", "int4", "uint4"]


class TargetProfile(ConfigModel):
    """One class of device. Budgets left out (null) are not checked."""

    name: str = Field(min_length=1, description="Short name used with --target.")
    description: str = Field("", description="One line shown in reports.")
    runtime: str = Field("", description="The inference runtime the op set describes.")
    flash_kb: float | None = Field(None, gt=0, description="Storage for the model file, KiB.")
    ram_kb: float | None = Field(
        None, gt=0, description="RAM for inference, KiB: estimated peak activations, plus the "
        "weights when weights_in_ram is true.",
    )
    peak_activation_kb: float | None = Field(
        None, gt=0, description="Largest set of simultaneously live activations, KiB.")
    latency_ms: float | None = Field(
        None, gt=0, description="p50 latency budget, ms, measured with onnxruntime on THIS host: "
        "only meaningful for the host itself.",
    )
    weights_in_ram: bool = Field(
        True, description="False when the runtime reads weights in place from flash (TFLite Micro), "
        "so RAM holds only activations.",
    )
    min_opset: int | None = Field(None, ge=1, description="Oldest ONNX opset the converter accepts.")
    max_opset: int | None = Field(None, ge=1, description="Newest ONNX opset the runtime runs.")
    dtypes: list[DType] | None = Field(
        None, description="Data types the runtime computes in (null: any). In QDQ models an op "
        "between DequantizeLinear and QuantizeLinear counts as running in the quantized type.",
    )
    ops: list[str] | None = Field(
        None, description="ONNX op types the runtime implements (null: every op onnxruntime runs). "
        "Ops of other domains are written 'domain::Op', e.g. com.microsoft::QGemm.",
    )
    op_dtypes: dict[str, list[DType]] = Field(
        default_factory=dict, description="Per-op dtype limits that replace `dtypes` for that op.")

    @model_validator(mode="after")
    def _check(self) -> TargetProfile:
        if self.min_opset and self.max_opset and self.min_opset > self.max_opset:
            raise ValueError(f"min_opset {self.min_opset} is above max_opset {self.max_opset}")
        if self.ops is not None:
            unknown = sorted(set(self.op_dtypes) - set(self.ops))
            if unknown:
                raise ValueError(f"op_dtypes names ops that are not in ops: {', '.join(unknown)}")
        return self

    def budgets(self) -> dict[str, float]:
        """The profile's limits as recipe budget names (only those it sets)."""
        pairs = {"max_flash_kb": self.flash_kb, "max_ram_kb": self.ram_kb,
                 "max_peak_activation_kb": self.peak_activation_kb, "max_latency_ms": self.latency_ms}
        return {k: v for k, v in pairs.items() if v is not None}

    def allowed_dtypes(self, op_type: str) -> list[str] | None:
        return self.op_dtypes.get(op_type, self.dtypes)


def builtin_targets() -> dict[str, Path]:
    """Built-in profile name → file."""
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}


def load_target(name_or_path: str | Path, base_dir: Path | None = None) -> TargetProfile:
    """A built-in profile by name, or a profile YAML by path (relative to ``base_dir``)."""
    from edgec.recipe_errors import describe_validation_error
    from edgec.recipe_yaml import parse_yaml

    text = str(name_or_path)
    builtin = builtin_targets()
    if text in builtin:
        path = builtin[text]
    else:
        path = Path(text)
        if not path.is_absolute() and base_dir is not None and not path.is_file():
            path = base_dir / path
        if not path.is_file():
            raise RecipeError(
                f"Unknown target '{text}': not a built-in profile and no such file.",
                hint=f"Built-in targets: {', '.join(builtin) or 'none found'}; or give the path "
                "to a profile YAML (see configs/targets/mcu.yaml for the fields).",
            )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"Cannot read target profile '{path}': {exc}") from None
    raw, lines = parse_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise RecipeError(f"Target profile '{path}' must be a mapping with at least 'name:'.")
    try:
        return TargetProfile.model_validate(raw)
    except ValidationError as exc:
        problems = describe_validation_error(exc, raw, TargetProfile, lines)
        raise RecipeError(f"{path}: invalid target profile:", problems=problems) from None
