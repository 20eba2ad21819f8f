"""Who teaches and who learns: the teacher and student specs of the distill pass, and building them.

The teacher is the recipe's original model by default, or any trained model (same sources as
``model:``, without input_shape: the recipe model's is used). The student is the current model
(the usual case after pruning), a new architecture (untrained), or ``width: 0.5``: a width-scaled
copy of the teacher. The copy is made by cutting every layer's channels with the structured pruner
(which follows residual and concat couplings), so it builds for any architecture the prune pass
can handle; its weights start from the teacher's strongest channels, or from scratch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import Field

from edgec.config import ConfigModel
from edgec.errors import ModelLoadError, PassError
from edgec.models import (
    CheckpointArchitecture,
    PythonArchitecture,
    TorchvisionArchitecture,
    ZooArchitecture,
)

if TYPE_CHECKING:
    import torch.nn as nn

    from edgec.passes.base import PassContext
    from edgec.progress import Progress


class ZooTeacher(ZooArchitecture):
    """A zoo model *trained* (cached), unlike ``ZooArchitecture`` which is the bare network."""

    def build(self, base_dir: Path, cache_dir: Path | None, progress: Progress | None) -> nn.Module:
        from edgec.zoo import load_zoo_model

        return load_zoo_model(self.name, cache_dir, progress)


TeacherSpec = Annotated[
    Union[ZooTeacher, TorchvisionArchitecture, PythonArchitecture, CheckpointArchitecture],  # noqa: UP007
    Field(discriminator="source"),
]

StudentArchitecture = Annotated[
    Union[ZooArchitecture, TorchvisionArchitecture, PythonArchitecture, CheckpointArchitecture],  # noqa: UP007
    Field(discriminator="source"),
]


class WidthStudentConfig(ConfigModel):
    """A width-scaled copy of the teacher's architecture (every layer keeps ``width`` of its channels)."""

    width: float = Field(gt=0, lt=1, description="Fraction of each layer's channels kept, e.g. 0.5 "
                         "(parameters shrink roughly as width²).")
    init: Literal["teacher", "random"] = Field(
        "teacher", description="teacher: start from the teacher's weights on the channels with the "
        "largest L1 norm (converges faster); random: fresh initialization.",
    )


def load_teacher(spec: TeacherSpec | str, ctx: PassContext) -> nn.Module:
    """The teacher in eval mode: the run's baseline, or a model built from ``spec``."""
    from edgec.models import check_finite_weights, check_runs

    if spec == "baseline":
        return ctx.baseline.eval()
    model = spec.build(ctx.recipe_dir, ctx.cache_dir, ctx.progress).float().to("cpu").eval()
    check_finite_weights(model)
    try:
        check_runs(model, ctx.input_shape)
    except ModelLoadError as exc:
        raise ModelLoadError(f"distill.teacher: {exc.message}", hint=exc.hint) from None
    return model


def build_student(spec, model: nn.Module, teacher: nn.Module, ctx: PassContext) -> nn.Module:
    """The student: ``model`` itself ("current"), a width-scaled teacher copy, or a new network."""
    import torch

    if spec == "current":
        student = model
    elif isinstance(spec, WidthStudentConfig):
        student = width_scaled_copy(teacher, spec.width, ctx.input_shape, ctx.seed,
                                    reinitialize=spec.init == "random")
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)  # a fresh network's initialization follows the recipe seed
            student = spec.build(ctx.recipe_dir, ctx.cache_dir, ctx.progress).float().to("cpu")
    _check_same_output(student, teacher, ctx.input_shape)
    return student


def width_scaled_copy(teacher: nn.Module, width: float, input_shape: tuple[int, ...], seed: int,
                      reinitialize: bool = False) -> nn.Module:
    """A copy of ``teacher`` with every prunable layer cut to ``width`` of its output channels."""
    import torch

    from edgec.passes.prune_structured import ChannelPruner, ChannelSettings

    example = torch.zeros(input_shape)
    settings = ChannelSettings(importance="l1", global_ranking=False, max_per_layer=1.0, round_to=1)
    pruner = ChannelPruner(teacher, example, settings, seed)
    groups = pruner.score(teacher)
    if not groups:
        raise PassError("distill.student.width: the teacher has no layer whose channels can be "
                        "scaled (only output layers or untraceable code). Name a student "
                        "architecture instead, e.g. student: {source: torchvision, name: ...}.")
    student = pruner.apply(teacher, groups, pruner.plan(groups, 1 - width))
    if reinitialize:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in student.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
    for p in student.parameters():
        p.requires_grad_(True)
    return student


def _check_same_output(student: nn.Module, teacher: nn.Module, input_shape: tuple[int, ...]) -> None:
    import torch

    x = torch.zeros((2, *input_shape[1:]))
    was_training = student.training
    student.eval()
    try:
        with torch.no_grad():
            s, t = student(x), teacher(x)
    except Exception as exc:
        raise PassError(f"distill: the student fails on inputs of shape {list(x.shape)}: "
                        f"{type(exc).__name__}: {exc}. It must take the recipe model's inputs.") from exc
    finally:
        student.train(was_training)
    if not isinstance(s, torch.Tensor) or s.shape != t.shape:
        got = list(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
        raise PassError(f"distill: the student outputs {got} but the teacher {list(t.shape)}; "
                        "both must return logits over the same classes (set num_classes).")
