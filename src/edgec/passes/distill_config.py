"""The ``distill`` pass's recipe section: teacher, student, data, losses and their defaults.

``for_data`` fills the defaults that depend on whether the training inputs are real or synthesized
(epochs, hold-out, temperature), so the pass and the benchmarks read the same numbers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, model_validator

from edgec.config import SPEC_TAG, WIDTH_TAG, ConfigModel
from edgec.passes.base import PassConfig
from edgec.passes.distill_datafree import SynthesisConfig
from edgec.passes.distill_models import StudentArchitecture, TeacherSpec, WidthStudentConfig
from edgec.training import TrainingConfig


def _kind(word: str, wide: bool):
    """Which member of a "word | {width: ...} | model spec" union a value means, so an error
    speaks of that member only (pydantic otherwise reports every member's complaint)."""
    def kind(value: Any) -> str | None:
        if isinstance(value, str):
            return word
        if isinstance(value, dict):
            return SPEC_TAG if "source" in value or not wide else WIDTH_TAG
        if isinstance(value, ConfigModel):  # an already validated recipe, validated again
            return SPEC_TAG if hasattr(value, "source") else WIDTH_TAG
        return None
    return kind


_TEACHER_CHOICES = "'baseline' or a model spec like {source: zoo, name: resnet20_digits}"
_STUDENT_CHOICES = ("'current', {width: 0.5} or a model spec like {source: torchvision, name: "
                    "mobilenet_v3_small}")
Teacher = Annotated[
    Union[Annotated[Literal["baseline"], Tag("baseline")], Annotated[TeacherSpec, Tag(SPEC_TAG)]],  # noqa: UP007
    Discriminator(_kind("baseline", wide=False), custom_error_type="teacher",
                  custom_error_message=f"must be {_TEACHER_CHOICES}"),
]
Student = Annotated[
    Union[Annotated[Literal["current"], Tag("current")],  # noqa: UP007
          Annotated[WidthStudentConfig, Tag(WIDTH_TAG)],
          Annotated[StudentArchitecture, Tag(SPEC_TAG)]],
    Discriminator(_kind("current", wide=True), custom_error_type="student",
                  custom_error_message=f"must be {_STUDENT_CHOICES}"),
]


class FeaturePairConfig(ConfigModel):
    """One teacher layer whose output a student layer learns to match."""

    teacher: str = Field(min_length=1, description="Teacher module path (model.named_modules()), "
                         "e.g. layer3.")
    student: str = Field(min_length=1, description="Student module path, e.g. layer3.")
    loss: Literal["attention", "mse"] = Field(
        "attention", description="attention: match normalized spatial attention maps (any channel "
        "counts); mse: match the features themselves through a learned 1×1 adapter when the "
        "channel counts differ.",
    )
    weight: float = Field(1.0, gt=0, le=1e6, description="Weight of this term in the loss.")


class DistillConfig(PassConfig, TrainingConfig):
    type: Literal["distill"] = "distill"
    teacher: Teacher = Field(
        "baseline", description="baseline: the recipe's original model. Or a trained model spec "
        "(source: zoo | torchvision | python | checkpoint, as in model: but without input_shape).",
    )
    student: Student = Field(
        "current", description="current: the model as the previous passes left it. {width: 0.5}: "
        "a width-scaled copy of the teacher. Or an architecture spec (source: torchvision | zoo | "
        "python | checkpoint) trained from its initial weights.",
    )
    temperature: float | None = Field(
        None, gt=0, le=100, description="Softmax temperature of the soft targets (higher: softer; "
        "the KD term is scaled by T²). Default: 4 on real data; 8 on synthetic data, whose inputs "
        "are optimized to be classified confidently, so the teacher's peaked logits on them need "
        "more softening (measured: docs/guide-distill.md).",
    )
    alpha: float = Field(0.9, ge=0, le=1, description="Weight of the soft-target loss; 1 - alpha "
                         "goes to cross-entropy on the hard labels. 1: no labels needed.")
    features: list[FeaturePairConfig] = Field(
        default_factory=list, description="Teacher/student layer pairs for feature distillation.")
    epochs: int | None = Field(
        None, ge=1, le=10000, description="Passes over the training inputs. Default: 20 on real "
        "data; 60 on synthetic, as a student needs more passes over a few thousand synthesized "
        "inputs before it generalizes to real ones.",
    )
    val_fraction: float | None = Field(
        None, ge=0, lt=0.5, description="Fraction of the training inputs held out to pick the best "
        "epoch. Default: 0.1 on real data; 0 (keep the last epoch) on synthetic data, whose "
        "hold-out is labelled by the teacher, which the student soon matches on nearly all of it: "
        "it cannot tell epochs apart and only takes inputs away from training.",
    )
    lr: float = Field(0.05, gt=0, le=10, description="Peak learning rate.")
    data: Literal["auto", "real", "synthetic"] = Field(
        "auto", description="Training inputs. real: the recipe's training split; synthetic: "
        "generated from the teacher (data-free, see synthetic:); auto: real when the recipe has "
        "training data, else synthetic.",
    )
    synthetic: SynthesisConfig = Field(default_factory=SynthesisConfig,
                                       description="Data-free synthesis settings.")
    use_synthetic_for_calibration: bool | None = Field(
        None, description="Give the synthetic set to later passes as calibration data (static "
        "quantization). Default: only when the recipe has no real data.",
    )

    @model_validator(mode="after")
    def _synthetic_settings_need_synthetic_data(self) -> DistillConfig:
        if self.data == "real" and "synthetic" in self.model_fields_set:
            raise ValueError("synthetic: settings only apply when data is synthetic or auto; "
                             "remove them or set data: synthetic")
        return self

    def for_data(self, synthetic: bool) -> DistillConfig:
        """This config with the data-dependent defaults (epochs, val_fraction, T) filled in."""
        return self.model_copy(update={
            "epochs": self.epochs or (60 if synthetic else 20),
            "temperature": self.temperature or (8.0 if synthetic else 4.0),
            "val_fraction": (0.0 if synthetic else 0.1) if self.val_fraction is None else self.val_fraction,
        })

    def provides_calibration(self) -> bool:
        return self.data != "real" and self.use_synthetic_for_calibration is not False

    def trains_weights(self) -> bool:
        return True

    def data_requirement(self) -> str | None:
        if self.data != "real":
            return None  # data-free distillation makes its own inputs
        return "training data for distillation (set data: synthetic on the pass to distil data-free)"
