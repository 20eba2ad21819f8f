"""Load the model to compress from a spec: the zoo, torchvision, the user's own code, or a checkpoint.

Whatever the source, ``load_model`` hands back a float32 CPU module in eval mode that has been run
once on a zeros input of ``input_shape`` and returned a single finite-weight tensor model, so every
later stage (passes, export, benchmark) can rely on that. Nothing is ever downloaded: torchvision
architectures are built with ``weights=None`` and weights come only from local files.

Each source is a config class with a ``build`` method; the zoo / torchvision / python sources also
exist without ``input_shape`` (the ``*Architecture`` classes) for use inside ``source: checkpoint``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from edgec.config import ConfigModel
from edgec.errors import ModelLoadError, exit_call
from edgec.model_files import callable_file, import_callable, load_weights, whole_model
from edgec.zoo import ZOO_NAMES, unknown_zoo_name_message, zoo_entry

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from edgec.progress import Progress

# Keys that make torchvision download pretrained weights: refused, weights come from files.
_DOWNLOADING_KWARGS = ("weights", "weights_backbone", "pretrained", "pretrained_backbone")


class _InputFields(ConfigModel):
    input_shape: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        min_length=2,
        description="Input shape including the batch dimension, e.g. [1, 3, 224, 224]. Used for "
        "export, the load check and benchmarking.",
    )
    dtype: Literal["float32"] = Field("float32", description="Input dtype. Only float32 for now.")
    max_memory_mb: float | None = Field(
        None, gt=0, description="Refuse, before any work, a model whose parameters and buffers "
        "take more than this many MiB (a run holds several copies). torchvision and python models "
        "are first built on PyTorch's meta device, which allocates nothing, to measure them.",
    )


class ZooArchitecture(ConfigModel):
    source: Literal["zoo"] = Field(description="A reference model trained by edgec (cached).")
    name: str = Field(description=f"Zoo model name: one of {', '.join(ZOO_NAMES)}.")

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        if name not in ZOO_NAMES:
            raise ValueError(unknown_zoo_name_message(name))
        return name

    def build(self, base_dir: Path, cache_dir: Path | None, progress: Progress | None) -> nn.Module:
        """The untrained network (weights come from a checkpoint)."""
        from edgec.zoo import build_zoo_model

        return build_zoo_model(self.name)


class TorchvisionArchitecture(ConfigModel):
    FILE_FIELDS = ("weights",)

    source: Literal["torchvision"] = Field(description="A torchvision architecture, by name.")
    name: str = Field(description="torchvision.models name, e.g. resnet18, mobilenet_v3_small.")
    weights: str | None = Field(
        None, description="Local state-dict file (relative to the recipe's folder). Without it the "
        "weights are random: fine for latency, meaningless for accuracy. Nothing is downloaded.",
    )
    num_classes: int | None = Field(None, ge=1, description="Output classes (architecture default "
                                    "if unset, e.g. 1000).")
    kwargs: dict[str, Any] = Field(default_factory=dict,
                                   description="Extra keyword arguments for the model builder.")

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        from edgec.torchvision_names import unknown_model_message

        message = unknown_model_message(name)  # from torchvision's files: no import, milliseconds
        if message:
            raise ValueError(message)
        return name

    @field_validator("kwargs")
    @classmethod
    def _no_downloads(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in kwargs if k in _DOWNLOADING_KWARGS]
        if bad:
            raise ValueError(f"'{bad[0]}' would download pretrained weights, which edgec never does; "
                             "set model.weights to a local state-dict file instead")
        return kwargs

    def build(self, base_dir: Path, cache_dir: Path | None, progress: Progress | None) -> nn.Module:
        import inspect

        import torchvision.models as tvm

        kwargs = dict(self.kwargs)  # the name was checked with the recipe (_known_name)
        if self.num_classes is not None:
            kwargs["num_classes"] = self.num_classes
        if "weights_backbone" in inspect.signature(tvm.get_model_builder(self.name)).parameters:
            kwargs["weights_backbone"] = None  # its default downloads an ImageNet backbone
        try:
            model = tvm.get_model(self.name, weights=None, **kwargs)
        except Exception as exc:
            raise ModelLoadError(f"torchvision model '{self.name}' could not be built with "
                                 f"{kwargs}: {type(exc).__name__}: {exc}") from exc
        if self.weights:
            load_weights(model, base_dir / self.weights, "model.weights")
        return model


class PythonArchitecture(ConfigModel):
    FILE_FIELDS = ("weights",)

    source: Literal["python"] = Field(description="Your own code: a function or class that "
                                      "returns a torch.nn.Module.")
    callable: str = Field(description="'package.module:function' or 'path/to/file.py:function', "
                          "resolved relative to the recipe's folder.")
    kwargs: dict[str, Any] = Field(default_factory=dict,
                                   description="Keyword arguments passed to the callable.")
    weights: str | None = Field(None, description="Local state-dict file loaded into the result "
                                "(relative to the recipe's folder).")

    @field_validator("callable")
    @classmethod
    def _has_colon(cls, ref: str) -> str:
        module, _, attr = ref.rpartition(":")
        if not module or not attr:
            raise ValueError(f"'{ref}' must look like 'package.module:function' or "
                             "'path/to/file.py:function'")
        return ref

    def local_paths(self) -> list[tuple[str, str, str]]:
        file = callable_file(self.callable)
        return super().local_paths() + ([("callable", file, "file")] if file else [])

    def build(self, base_dir: Path, cache_dir: Path | None, progress: Progress | None) -> nn.Module:
        import torch.nn as nn

        target = import_callable(self.callable, base_dir)
        try:
            model = target(**self.kwargs)
        except SystemExit as exc:  # would have ended edgec, a sweep's other variants with it
            raise ModelLoadError(
                f"model.callable '{self.callable}' called {exit_call(exc)} instead of returning "
                "a model.", hint="Raise an exception (e.g. ValueError) for arguments it cannot "
                "build: sys.exit() ends the process that runs it, not only the model.") from exc
        except Exception as exc:  # the user's code: any failure is theirs to see, with its message
            raise ModelLoadError(f"model.callable '{self.callable}' raised "
                                 f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(model, nn.Module):
            raise ModelLoadError(f"model.callable '{self.callable}' returned a {type(model).__name__}, "
                                 "not a torch.nn.Module. It must build and return the model, e.g. "
                                 "`return MyNet(**kwargs)`.")
        if self.weights:
            load_weights(model, base_dir / self.weights, "model.weights")
        return model


ArchitectureSpec = Annotated[
    Union[ZooArchitecture, TorchvisionArchitecture, PythonArchitecture],  # noqa: UP007
    Field(discriminator="source"),
]


class ZooModelConfig(_InputFields, ZooArchitecture):
    """A reference model trained by edgec on bundled data, on first use, then cached."""

    @model_validator(mode="after")
    def _shape_matches_zoo(self) -> ZooModelConfig:
        want = zoo_entry(self.name).input_shape
        if tuple(self.input_shape[1:]) != want[1:]:
            raise ValueError(f"zoo model '{self.name}' takes inputs of shape {list(want)}, not "
                             f"{list(self.input_shape)}; set input_shape: {list(want)}")
        return self

    def build(self, base_dir: Path, cache_dir: Path | None, progress: Progress | None) -> nn.Module:
        from edgec.zoo import load_zoo_model

        return load_zoo_model(self.name, cache_dir, progress)


class TorchvisionModelConfig(_InputFields, TorchvisionArchitecture):
    """A torchvision architecture by name, with random or local weights."""


class PythonModelConfig(_InputFields, PythonArchitecture):
    """A model built by your own Python code."""


class _CheckpointFields(ConfigModel):
    FILE_FIELDS = ("path",)

    source: Literal["checkpoint"] = Field(description="A file saved with torch.save.")
    path: str = Field(description="Checkpoint file, relative to the recipe's folder.")
    architecture: ArchitectureSpec | None = Field(
        None, description="The network the state dict belongs to (a zoo, torchvision or python "
        "model without input_shape). Without it the file must hold a whole pickled model.",
    )
    trust_pickle: bool = Field(
        False, description="Allow full unpickling (torch.load weights_only=False): needed for a "
        "whole pickled model or for checkpoints with Python objects. Unpickling runs code stored in "
        "the file: only for files you trust.",
    )


class CheckpointArchitecture(_CheckpointFields):
    """A network with weights from a torch.save file, without input_shape (e.g. a distillation
    teacher or student, whose input shape is the recipe model's)."""

    @model_validator(mode="after")
    def _no_second_weights(self) -> CheckpointArchitecture:
        if getattr(self.architecture, "weights", None):
            raise ValueError("architecture.weights is not used with source: checkpoint (the "
                             "checkpoint's path holds the weights); remove it")
        return self

    def build(self, base_dir: Path, cache_dir: Path | None, progress: Progress | None) -> nn.Module:
        path = base_dir / self.path
        if self.architecture is not None:
            model = self.architecture.build(base_dir, cache_dir, progress)
            load_weights(model, path, "model.path", trust_pickle=self.trust_pickle)
            return model
        return whole_model(path, base_dir, self.trust_pickle)


class CheckpointModelConfig(_InputFields, CheckpointArchitecture):
    """Weights from a torch.save file: a state dict plus ``architecture``, or (opt-in) a whole model."""


ModelSpec = Annotated[
    Union[ZooModelConfig, TorchvisionModelConfig, PythonModelConfig, CheckpointModelConfig],  # noqa: UP007
    Field(discriminator="source"),
]


def load_model(spec: ModelSpec, base_dir: Path, cache_dir: Path | None = None,
               progress: Progress | None = None) -> nn.Module:
    """Build ``spec``'s model: float32, CPU, eval mode, checked on a zeros input. Raises ModelLoadError."""
    limit = spec.max_memory_mb
    if limit is not None:
        _check_memory(_estimate_bytes(spec, Path(base_dir)), limit, spec)
    from edgec.plugins import build_model  # checks what a plugin source's build returns

    model = build_model(spec, Path(base_dir), cache_dir, progress).float().to("cpu").eval()
    if limit is not None:
        _check_memory(model_bytes(model), limit, spec)
    check_finite_weights(model)
    check_runs(model, tuple(spec.input_shape))
    return model


def model_bytes(model: nn.Module) -> int:
    """Bytes held by the model's parameters and buffers (float32 after loading)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * (4 if t.is_floating_point() else t.element_size()) for t in tensors)


def _estimate_bytes(spec: ModelSpec, base_dir: Path) -> int | None:
    """Size before allocating: the checkpoint file, or a build on the meta device (no memory)."""
    import torch

    if isinstance(spec, CheckpointModelConfig):
        path = base_dir / spec.path
        return path.stat().st_size if path.is_file() else None
    if isinstance(spec, (TorchvisionModelConfig, PythonModelConfig)):
        try:
            with torch.device("meta"):
                meta = type(spec).model_validate({**spec.model_dump(), "weights": None}).build(
                    base_dir, None, None)
            return model_bytes(meta)
        except Exception:  # code that needs real tensors while building: measured after building
            return None
    return None


def _check_memory(size: int | None, limit_mb: float, spec: ModelSpec) -> None:
    if size is None or size <= limit_mb * 2**20:
        return
    name = getattr(spec, "name", None) or getattr(spec, "callable", None) or getattr(spec, "path", "")
    raise ModelLoadError(
        f"Model '{name}' ({spec.source}) needs {size / 2**20:.1f} MiB for its weights, more than "
        f"model.max_memory_mb = {limit_mb:g} MiB. A run holds several copies (baseline, compressed, "
        "ONNX sessions): choose a smaller model, or raise max_memory_mb if this machine has room."
    )


def check_finite_weights(model: nn.Module) -> None:
    import torch

    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelLoadError(f"Model weight '{name}' holds NaN or infinite values: the checkpoint "
                                 "is damaged or its training diverged. Use a healthy checkpoint.")


def check_runs(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Run the model once on zeros of ``input_shape``; it must return one tensor (returned)."""
    import torch

    try:
        with torch.no_grad():
            out = model(torch.zeros(input_shape))
    except Exception as exc:
        raise ModelLoadError(
            f"The model fails on an input of model.input_shape {list(input_shape)}: "
            f"{type(exc).__name__}: {exc}. Set input_shape to what the model takes (batch "
            "dimension first, e.g. [1, 3, 224, 224])."
        ) from exc
    if not isinstance(out, torch.Tensor):
        raise ModelLoadError(
            f"The model returns a {type(out).__name__}, but edgec needs a single tensor output (the "
            "logits) to export, compare and measure it. Wrap it in a module whose forward returns "
            "one tensor, e.g. `return self.model(x)[0]` or `['out']`, and load that with source: python."
        )
    return out


def output_classes(model: nn.Module, input_shape: tuple[int, ...]) -> int | None:
    """Width of a classifier's N×classes output; None when the output is not 2-D."""
    out = check_runs(model, input_shape)
    return int(out.shape[1]) if out.ndim == 2 else None
