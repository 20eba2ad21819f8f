"""Device targets: what a class of device can hold and run, loaded from a YAML profile.

A profile names a class of device, not one board: its flash budget (bytes of the deployed model),
its RAM budget (activations, plus the weights when the runtime copies them into RAM), the operator
set of its runtime with dtype and opset limits, and optionally a latency budget.

A name is looked up in this order: a built-in profile (src/edgec/target_profiles/<name>.yaml,
shipped inside the package so it works from a wheel; configs/targets links there for a source
checkout), then a profile from an installed plugin (entry point group ``edgec.targets``; a plugin
cannot reuse a built-in name, see plugins.py), then a YAML file by path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from edgec.config import ConfigModel
from edgec.errors import RecipeError

# Package data (pyproject.toml: [tool.setuptools.package-data]), so a wheel install has them too.
BUILTIN_DIR = Path(__file__).resolve().with_name("target_profiles")

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


def target_names() -> dict[str, str]:
    """Every profile a recipe can name → where it comes from ('built-in' or 'plugin <package>')."""
    from edgec.plugins import TARGETS, load_plugins, target_origin

    load_plugins()
    names = dict.fromkeys(builtin_targets(), "built-in")
    names.update({name: target_origin(name) for name in TARGETS if name not in names})
    return names


def load_target(name_or_path: str | Path, base_dir: Path | None = None) -> TargetProfile:
    """A profile by name (built-in, then plugin) or a profile YAML by path (relative to
    ``base_dir``)."""
    text = str(name_or_path)
    names = target_names()
    if names.get(text, "built-in") != "built-in":
        return _plugin_profile(text, names[text])
    path = builtin_targets().get(text)
    if path is None:
        path = Path(text)
        if not path.is_absolute() and base_dir is not None and not path.is_file():
            path = base_dir / path
        if not path.is_file():
            raise RecipeError(
                f"Unknown target '{text}': not a built-in or plugin profile and no such file.",
                hint=f"Known targets: {', '.join(names) or 'none found'} (`edgec targets` lists "
                "them); or give the path to a profile YAML (see `edgec targets --show mcu` for "
                "the fields).",
            )
    return _read_profile(path)


def _read_profile(path: Path) -> TargetProfile:
    from edgec.recipe_yaml import parse_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"Cannot read target profile '{path}': {exc}") from None
    raw, lines = parse_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise RecipeError(f"Target profile '{path}' must be a mapping with at least 'name:'.")
    return _validate(raw, str(path), lines)


def _validate(raw: dict, source: str, lines=None) -> TargetProfile:
    from edgec.recipe_errors import describe_validation_error

    try:
        return TargetProfile.model_validate(raw)
    except ValidationError as exc:
        problems = describe_validation_error(exc, raw, TargetProfile, lines or {})
        raise RecipeError(f"{source}: invalid target profile:", problems=problems) from None


def _plugin_profile(name: str, origin: str) -> TargetProfile:
    """A plugin's profile: a YAML file, or a mapping (its name defaults to the entry point's)."""
    from edgec.plugins import PluginError, plugin_target

    hint = "Fix or update the plugin, or set EDGEC_NO_PLUGINS=1 to run edgec without plugins."
    try:
        obj = plugin_target(name)
    except Exception as exc:  # the plugin's own code failed
        raise PluginError(f"Target '{name}' ({origin}) could not be built: {type(exc).__name__}: "
                          f"{exc}", hint=hint) from exc
    if isinstance(obj, Path):
        if not obj.is_file():
            raise PluginError(f"Target '{name}' ({origin}) points to {obj}, which does not exist.",
                              hint=hint)
        return _read_profile(obj)
    if isinstance(obj, dict):
        return _validate({"name": name, **obj}, f"target '{name}' ({origin})")
    raise PluginError(f"Target '{name}' ({origin}) gave a {type(obj).__name__}; a profile is a YAML "
                      "path or a mapping.", hint=hint)
