"""What every pass shares: its config base, the context it runs in, and the run wrapper.

A pass is a small pair: a frozen ``PassConfig`` (validated with the recipe, before any work) and a
``Pass`` subclass with one ``apply``. ``run_pass`` does the rest once for all of them: timing,
parameter counts before and after, and turning an unexpected failure into a ``PassError`` that
names the pass.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from edgec.config import ConfigModel
from edgec.errors import EdgecError, PassError, option

if TYPE_CHECKING:  # heavy imports stay out of start-up; these are for type checkers only
    import torch.nn as nn

    from edgec.data import DataSplits
    from edgec.progress import Progress

Stage = Literal["torch", "onnx"]


class PassConfig(ConfigModel):
    """Fields every pass accepts. Subclasses add theirs and a ``type: Literal[...]`` tag."""

    type: str
    label: str | None = Field(
        default=None, description="Name of this step in the report (defaults to its type)."
    )

    def data_requirement(self) -> str | None:
        """What real (non-synthetic) data this configuration needs, or None. Checked at load."""
        return None

    def trains_weights(self) -> bool:
        """Whether this pass moves weights by gradient descent: after weight clustering that
        would scatter the shared values again, so the recipe refuses it."""
        return False

    def provides_calibration(self) -> bool:
        """Whether this pass hands later passes calibration inputs of its own making (data-free
        distillation does), so a static quantization after it needs no real data."""
        return False


@dataclass
class PassContext:
    """What a pass may use besides its own config. Built once per run by the pipeline."""

    data: DataSplits
    baseline: nn.Module  # the unmodified model, eval mode; the default teacher
    input_shape: tuple[int, ...]
    seed: int
    run_dir: Path  # where a pass may leave artifacts (plots, caches) for the user
    recipe_dir: Path  # relative paths in pass configs resolve against it
    progress: Progress
    cache_dir: Path | None = None


@dataclass
class PassRecord:
    """What the report says about one executed pass."""

    type: str
    label: str
    stage: Stage
    seconds: float
    params_before: int
    params_after: int
    nonzero_params_before: int
    nonzero_params_after: int
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class Pass(ABC):
    """One compression step. Subclasses set ``name``, ``Config`` and implement ``apply``."""

    name: ClassVar[str]
    stage: ClassVar[Stage]
    Config: ClassVar[type[PassConfig]]

    def __init__(self, config: PassConfig):
        self.config = config
        self.notes: list[str] = []  # one-line findings for the report ("int8 is slower here")
        self.details: dict[str, Any] = {}  # structured data for report.json / report.md

    def note(self, message: str) -> None:
        self.notes.append(message)


class TorchPass(Pass):
    """Runs on the nn.Module before export (prune, finetune, distill, qat)."""

    stage: ClassVar[Stage] = "torch"

    @abstractmethod
    def apply(self, model: nn.Module, ctx: PassContext) -> nn.Module:
        """Return the transformed model (may be the same object, modified in place)."""


class OnnxPass(Pass):
    """Runs on the exported ONNX file (quantize)."""

    stage: ClassVar[Stage] = "onnx"

    @abstractmethod
    def apply(self, src: Path, dst: Path, ctx: PassContext) -> None:
        """Read the model at ``src`` and write the transformed one to ``dst``."""


def _timed(
    instance: Pass, work: Callable[[], Any], counts_before: tuple[int, int],
    count_after: Callable[[Any], tuple[int, int]],
) -> tuple[Any, PassRecord]:
    label = instance.config.label or instance.name
    start = time.perf_counter()
    try:
        result = work()
    except EdgecError:
        raise
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a library failed inside the pass: name the pass, keep the cause
        from edgec.plugins import pass_origin

        debug, origin = option("debug"), pass_origin(instance.name)
        source = "" if origin == "built-in" else f", {origin}"  # a plugin's code, not edgec's
        raise PassError(
            f"Pass '{label}' ({instance.name}{source}) failed: {type(exc).__name__}: {exc}",
            hint=f"{debug[0].upper()}{debug[1:]}; check this pass's settings in the recipe.",
        ) from exc
    seconds = time.perf_counter() - start
    after = count_after(result)
    record = PassRecord(
        type=instance.name, label=label, stage=instance.stage, seconds=round(seconds, 3),
        params_before=counts_before[0], params_after=after[0],
        nonzero_params_before=counts_before[1], nonzero_params_after=after[1],
        notes=list(instance.notes), details=dict(instance.details),
    )
    return result, record


def run_torch_pass(instance: TorchPass, model: nn.Module, ctx: PassContext):
    """Apply a torch-stage pass; returns (model, PassRecord)."""
    import torch.nn as nn

    from edgec.torch_stats import count_params

    def work() -> nn.Module:
        result = instance.apply(model, ctx)
        if not isinstance(result, nn.Module):  # a plugin's apply that forgot its `return model`
            raise _broken_contract(instance, f"returned {_a(result)}, not a torch.nn.Module: its "
                                   "apply must return the model (the same object if it changed "
                                   "it in place)")
        return result

    return _timed(instance, work, count_params(model), count_params)


def run_onnx_pass(instance: OnnxPass, src: Path, dst: Path, ctx: PassContext) -> PassRecord:
    """Apply an ONNX-stage pass from ``src`` to ``dst``; returns its PassRecord."""
    from edgec.graph_stats import count_onnx_params

    def work() -> Path:
        instance.apply(src, dst, ctx)
        if not dst.is_file():
            raise _broken_contract(instance, f"finished without writing {dst.name}: its apply must "
                                   "write the transformed model to dst")
        return dst

    _, record = _timed(instance, work, count_onnx_params(src), count_onnx_params)
    return record


def _a(value: Any) -> str:
    """'None', or 'a str' / 'an int': what a broken pass handed back, for its message."""
    if value is None:
        return "None"
    kind = type(value).__name__
    return f"{'an' if kind[0].lower() in 'aeiou' else 'a'} {kind}"


def _broken_contract(instance: Pass, problem: str) -> PassError:
    """A pass that broke the Pass contract: a bug in that pass (a plugin's, usually), named with
    the package it comes from (once that is fixed, resuming the run continues with it)."""
    from edgec.plugins import pass_origin

    label = instance.config.label or instance.name
    origin = pass_origin(instance.name)
    fix = ("Fix or update the plugin, or remove the pass from the recipe." if origin != "built-in"
           else "This is a bug in edgec; please report it.")
    return PassError(f"Pass '{label}' ({instance.name}, {origin}) {problem}.", hint=fix)
