"""The recipe: a typed, frozen description of one compression run, fully checked before any work.

Loading goes text → YAML (safe_load only) → `--set` overrides → pydantic validation → cross-field
rules. Every problem becomes one ``RecipeError`` listing each bad key path with its line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from edgec.benchmark import BenchmarkConfig
from edgec.config import ConfigModel
from edgec.data import DataSpec, SyntheticDataConfig, shape_mismatch
from edgec.errors import RecipeError, UsageError, not_a_file, option
from edgec.mlflow_log import MlflowConfig
from edgec.passes import PASSES, pass_config_union
from edgec.plugins import load_plugins, model_spec_union
from edgec.recipe_errors import describe_validation_error
from edgec.recipe_yaml import apply_overrides, lines_with_overrides, parse_yaml
from edgec.report_html import ReportConfig
from edgec.sweep_config import SweepConfig

RECIPE_VERSION = 1
REGRESSION_BUDGETS = ("max_size_growth", "max_latency_growth", "max_accuracy_loss")
load_plugins()  # before the Recipe model is built: plugin passes and model sources join its unions


class ExportConfig(ConfigModel):
    opset: int = Field(17, ge=13, le=23, description="ONNX opset to export to.")
    dynamic_batch: bool = Field(
        True, description="Export the batch axis as dynamic (any batch size at inference)."
    )
    exporter: Literal["torchscript", "dynamo"] = Field(
        "torchscript",
        description="torch.onnx exporter. 'torchscript' is fast and gives compact graphs; "
        "'dynamo' (torch.export based) handles more Python control flow.",
    )
    parity_atol: float = Field(
        1e-3, gt=0, description="Largest allowed |onnxruntime - torch| on the parity inputs."
    )
    parity_samples: int = Field(
        32, ge=1, description="How many eval inputs the torch-vs-onnxruntime parity check uses."
    )


class BudgetsConfig(ConfigModel):
    """Limits the compressed model must meet; a missed one makes the run exit 1."""

    max_size_kb: float | None = Field(None, gt=0, description="ONNX file size, KiB.")
    max_size_gzip_kb: float | None = Field(None, gt=0, description="gzip'd ONNX size, KiB.")
    max_params: int | None = Field(None, gt=0, description="Parameters (dense count).")
    max_macs: int | None = Field(None, gt=0, description="Multiply-accumulates at batch 1.")
    max_latency_ms: float | None = Field(
        None, gt=0, description="onnxruntime latency on this host (see latency_percentile), ms."
    )
    latency_percentile: Literal["p50", "p90"] = Field(
        "p50", description="Which latency percentile max_latency_ms applies to."
    )
    min_speedup: float | None = Field(
        None, gt=0, description="baseline p1 / compressed p1 latency (1st percentile: the "
        "undisturbed speed), interleaved side by side, decided on an interval (speedup_confidence)."
    )
    min_size_reduction: float | None = Field(
        None, gt=0, description="baseline size / compressed size (e.g. 4 for 4x smaller)."
    )
    min_accuracy: float | None = Field(
        None, ge=0, le=1, description="Compressed accuracy on the eval split (0..1)."
    )
    max_accuracy_drop: float | None = Field(
        None, ge=0, le=1, description="baseline - compressed accuracy, fraction (0.01 = 1 point)."
    )
    speedup_confidence: float = Field(
        0.95, ge=0.5, lt=1, description="min_speedup is decided on a bootstrap confidence interval "
        "of that p1 speedup over the interleaved rounds at this level: it fails only when the whole "
        "interval is below the limit."
    )
    inconclusive: Literal["pass", "fail"] = Field(
        "pass", description="What a noise-aware gate does when its interval straddles the limit "
        "(--fail-on-inconclusive sets 'fail')."
    )
    # Regression gates: checked only against a stored report (`edgec compress --against`).
    max_size_growth: float | None = Field(
        None, ge=0, description="With --against: largest allowed ONNX size growth vs the stored "
        "report, fraction (0.05 = 5%)."
    )
    max_latency_growth: float | None = Field(
        None, ge=0, description="With --against: largest allowed growth of compressed/baseline "
        "latency (the p1 speedup, each measured interleaved in its own run) vs the stored report, "
        "fraction. Noise-aware like min_speedup: fails only when the growth's interval is wholly "
        "above the limit; inconclusive against a stored report that timed its models far more "
        "briefly (one without a speed budget)."
    )
    max_accuracy_loss: float | None = Field(
        None, ge=0, le=1, description="With --against: largest allowed accuracy loss vs the stored "
        "report's compressed model, fraction (0.01 = 1 point)."
    )
    max_flash_kb: float | None = Field(None, gt=0, description="Model file (what goes to flash), KiB.")
    max_ram_kb: float | None = Field(
        None, gt=0, description="Estimated inference RAM, KiB: peak activations plus the weights "
        "(unless the target reads weights in place from flash).",
    )
    max_peak_activation_kb: float | None = Field(
        None, gt=0, description="Estimated peak of simultaneously live activations, KiB.")

    def active(self) -> dict[str, Any]:
        """Absolute budgets that are set (settings and regression gates excluded)."""
        skip = {"latency_percentile", "speedup_confidence", "inconclusive", *REGRESSION_BUDGETS}
        return {k: v for k, v in self.model_dump().items() if v is not None and k not in skip}

    def regression(self) -> dict[str, float]:
        """Regression gates that are set (they need a stored report to compare with)."""
        return {k: getattr(self, k) for k in REGRESSION_BUDGETS if getattr(self, k) is not None}

    @property
    def needs_labels(self) -> list[str]:
        """Budgets that measure accuracy (max_accuracy_loss too: it compares this run's accuracy
        with a stored report's), refused up front when the data has no labels."""
        return [k for k in ("min_accuracy", "max_accuracy_drop", "max_accuracy_loss")
                if getattr(self, k) is not None]


class OutputConfig(ConfigModel):
    dir: str | None = Field(
        None,
        description="Run folder (relative to the current directory). Default: runs/<recipe name>. "
        "`-o` on the command line wins. Must stay below the current directory (no absolute "
        "path, no '..'): a recipe from someone else cannot make edgec write elsewhere.",
    )

    @field_validator("dir")
    @classmethod
    def _stays_below_cwd(cls, value: str | None) -> str | None:
        if value is None:
            return value
        path = PurePath(value)
        if path.is_absolute() or PureWindowsPath(value).is_absolute():
            raise ValueError(f"'{value}' is an absolute path; a recipe may only name a folder "
                             f"below the current directory. Pass {option('output')} to write elsewhere")
        if ".." in path.parts or ".." in PureWindowsPath(value).parts:
            raise ValueError(f"'{value}' contains '..'; a recipe may only name a folder below the "
                             f"current directory. Pass {option('output')} to write elsewhere")
        if not value.strip() or path == PurePath("."):
            raise ValueError("must name a folder, e.g. runs/exp1")
        return value


class Recipe(ConfigModel):
    """One compression run: model, data, ordered passes, export, benchmark, budgets, output."""

    version: Literal[1] = Field(description="Recipe format version. Always 1 for now.")
    model: model_spec_union() = Field(  # type: ignore[valid-type]
        description="Where the model comes from, and its input shape."
    )
    data: DataSpec = Field(
        default_factory=lambda: SyntheticDataConfig(source="synthetic"),
        description="Data for calibration, training and accuracy. Default: synthetic inputs "
        "(latency only; accuracy is then reported as absent).",
    )
    passes: list[pass_config_union()] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="Compression steps, run in this order. Torch-stage passes (prune, distill, …) "
        "must come before ONNX-stage passes (quantize).",
    )
    export: ExportConfig = Field(default_factory=ExportConfig, description="torch → ONNX.")
    benchmark: BenchmarkConfig = Field(
        default_factory=BenchmarkConfig, description="How baseline and result are measured."
    )
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig, description="Pass/fail gates.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="Where results go.")
    report: ReportConfig = Field(default_factory=ReportConfig, description="report.html and profile.")
    mlflow: MlflowConfig | None = Field(None, description="Log the run to MLflow (needs the "
                                        "edgec[mlflow] extra). Absent: no logging.")
    seed: int = Field(0, ge=0, description="Seed for every random choice in the run.")
    sweep: SweepConfig | None = Field(None, description="Variants for `edgec sweep`.")
    target: str | None = Field(
        None, description="Device the model must run on: a built-in profile (mcu, npu, rpi, host), "
        "a plugin's profile (`edgec targets` lists both) or the path of a profile YAML. Adds its "
        "flash/RAM budgets and op-support checks.",
    )

    @field_validator("target")
    @classmethod
    def _known_target(cls, value: str | None) -> str | None:
        from edgec.targets import target_names

        names = target_names()
        if value is not None and value not in names and not value.endswith((".yaml", ".yml")):
            raise ValueError(f"unknown target '{value}'; known targets: {', '.join(names)} "
                             "(`edgec targets`), or the path of a profile .yaml")
        return value

    @model_validator(mode="after")
    def _check_cross_fields(self) -> Recipe:
        problems = []
        stages = [PASSES[p.type].stage for p in self.passes]
        for i, stage in enumerate(stages):
            if stage == "torch" and "onnx" in stages[:i]:
                first = stages.index("onnx")
                problems.append(
                    f"passes[{i}] ({self.passes[i].type}) is a torch-stage pass but comes after "
                    f"passes[{first}] ({self.passes[first].type}), which works on the exported "
                    "ONNX model; move it before"
                )
        problems += _qat_order_problems([p.type for p in self.passes], stages)
        problems += _cluster_order_problems(self.passes)
        problems += _self_distill_problems(self.passes, stages)
        input_shape = getattr(self.model, "input_shape", None)  # plugin sources may have none
        mismatch = input_shape and shape_mismatch(self.data, input_shape)
        if mismatch:  # digits and image folders: known without loading, minutes before the run
            problems.append(mismatch)
        synthetic = self.data.source == "synthetic"
        calibration_made = False  # by an earlier pass (data-free distillation)
        for i, p in enumerate(self.passes):
            need = p.data_requirement()
            # ONNX-stage passes only ever need calibration inputs, which such a pass supplies
            if synthetic and need and not (calibration_made and stages[i] == "onnx"):
                problems.append(
                    f"passes[{i}] ({p.type}) needs {need}, but data is synthetic random noise; "
                    "set data: to digits, npz or imagefolder"
                )
            calibration_made = calibration_made or p.provides_calibration()
        if synthetic and self.budgets.needs_labels:
            problems.append(
                f"budgets.{self.budgets.needs_labels[0]} needs labelled data, but data is "
                "synthetic; set data: to a labelled source or remove the accuracy budget"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _qat_order_problems(types: list[str], stages: list[str]) -> list[str]:
    """QAT trains the final int8 model: later torch passes would undo it, ONNX quantization of
    its already-int8 graph would quantize twice."""
    if "qat" not in types:
        return []
    i = types.index("qat")
    return [f"passes[{j}] ({types[j]}) comes after passes[{i}] (qat), which produces the final "
            f"int8 model; {'move it before qat' if stages[j] == 'torch' else 'remove it'}"
            for j in range(i + 1, len(types))]


def _cluster_order_problems(passes) -> list[str]:
    """Training after weight clustering moves every weight on its own, off the shared values."""
    if not any(p.type == "cluster" for p in passes):
        return []
    i = next(j for j, p in enumerate(passes) if p.type == "cluster")
    return [f"passes[{j}] ({passes[j].type}) trains the weights after passes[{i}] (cluster), which "
            "would scatter the shared values again; move it before cluster, or fine-tune inside "
            "the cluster pass (finetune: {epochs: N})"
            for j in range(i + 1, len(passes)) if passes[j].trains_weights()]


def _self_distill_problems(passes, stages: list[str]) -> list[str]:
    """A distill pass with the defaults (teacher: baseline, student: current) and no torch pass
    before it trains the model to mimic itself: minutes of training that leave it as it was."""
    return [f"passes[{i}] (distill) would train the model to mimic itself: its teacher is the "
            "baseline and its student the current model, which no pass before it changed; set "
            "student: {width: 0.5} (a narrower copy) or a model spec, or put a prune pass before it"
            for i, p in enumerate(passes)
            if p.type == "distill" and p.teacher == "baseline" and p.student == "current"
            and "torch" not in stages[:i]]


def validate_recipe(raw: Any, *, source: str = "<recipe>", lines=None) -> Recipe:
    """Validate an already-parsed recipe mapping; raises RecipeError listing every problem."""
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else f"a {type(raw).__name__}"
        raise RecipeError(
            f"{source}: the recipe is {kind}, but it must be a mapping with at least "
            "'version: 1' and 'model:'. See `edgec schema` or configs/quickstart.yaml."
        )
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        problems = describe_validation_error(exc, raw, Recipe, lines or {})
        raise RecipeError(f"{source}: invalid recipe:", problems=problems) from None


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override and validate a recipe file. Raises RecipeError / UsageError."""
    return recipe_variants(path)(overrides)


def recipe_variants(path: str | Path) -> Callable[[list[str] | tuple[str, ...]], Recipe]:
    """``load_recipe`` for many override sets of one file (a sweep's variants): reads and parses
    the file once; each call applies its overrides to a copy and validates."""
    path = Path(path)
    if not path.is_file():
        what = not_a_file(path)
        raise UsageError(f"Recipe file '{path}' {what}. Pass the path to a .yaml recipe, "
                         "e.g. configs/quickstart.yaml.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Cannot read recipe '{path}': {exc}.") from None
    raw, lines = parse_yaml(text, str(path))

    def variant(overrides: list[str] | tuple[str, ...] = (), options=None) -> Recipe:
        """``options[i]``: the option that gave ``overrides[i]``, for messages (apply_overrides)."""
        return validate_recipe(apply_overrides(raw, overrides, options=options), source=str(path),
                               lines=lines_with_overrides(lines, overrides))

    return variant


def recipe_schema() -> dict:
    """JSON Schema of the recipe, for editors and `edgec schema`."""
    schema = Recipe.model_json_schema()
    schema["$id"] = "https://edgec.invalid/schema/recipe-1.json"
    schema["title"] = "edgec recipe (version 1)"
    return schema
