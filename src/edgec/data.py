"""Data for a run: train / calibration / eval splits, held in memory as numpy arrays.

Sources: scikit-learn's bundled digits (1,797 real 8×8 images, nothing downloaded), an ``.npz``
file, an image folder, or synthetic random inputs (latency only: no labels, so accuracy is reported
as absent, never invented).

How splits are made (every source with real data, seeded, deterministic):
- eval is held out, stratified by label when there are labels: 30% by default, i.e. 540 digits,
  so a digits accuracy is good to about half a point;
- train is the rest;
- calib (static-quantization calibration) is the first ``CALIB_MAX`` images of the shuffled train
  split. Calibration only observes activation ranges, so training images are the right pool; a
  disjoint 10% would give digits only 180 images, fewer than the 256 the quickstart asks for.
  Eval is never used for calibration, so it cannot shape the quantizer it then scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, Union

from pydantic import Field, model_validator

from edgec.config import ConfigModel
from edgec.errors import DataError

if TYPE_CHECKING:
    import numpy as np

EVAL_FRACTION = 0.3
CALIB_MAX = 512
# Mean / std of the digits' pixels scaled to 0..1, over all 1,797 images. Fixed constants rather
# than train-split statistics, so a different split seed cannot shift what a zoo model sees.
DIGITS_MEAN = 0.3053
DIGITS_STD = 0.3760

_EVAL_FRACTION_FIELD = Field(
    EVAL_FRACTION, gt=0, lt=1,
    description="Fraction held out for evaluation (stratified by label when labelled).",
)
_SEED_FIELD = Field(0, ge=0, description="Seed of the train / eval split.")


@dataclass(frozen=True)
class Split:
    """One split. ``x``: float32 model inputs, N×C×H×W (or N×features); ``y``: int64 labels or None."""

    x: np.ndarray
    y: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Consecutive batches in order; the last one may be smaller."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for i in range(0, len(self.x), batch_size):
            yield self.x[i:i + batch_size], None if self.y is None else self.y[i:i + batch_size]


@dataclass(frozen=True)
class DataSplits:
    train: Split | None  # None for synthetic data: there is nothing to train on
    calib: Split  # calibration inputs for static quantization
    eval: Split  # accuracy (when labelled) and agreement with the baseline
    num_classes: int | None

    @property
    def labelled(self) -> bool:
        return self.eval.y is not None


class DigitsDataConfig(ConfigModel):
    """scikit-learn's bundled handwritten digits: 1,797 real 8×8 grayscale images, 10 classes."""

    source: Literal["digits"] = Field(description="Bundled 8×8 handwritten digits (scikit-learn).")
    resize: int | None = Field(
        None, ge=4, le=512,
        description="Side length to resize the 8×8 images to (bilinear), e.g. 32 for 32×32 inputs.",
    )
    seed: int = Field(
        0, ge=0,
        description="Seed of the train / eval split. The zoo models were trained on seed 0's train "
        "split: keep 0 with them, or their eval images overlap what they were trained on.",
    )

    def sample_shape(self) -> tuple[int, ...]:
        side = self.resize or 8
        return (1, side, side)

    def load_splits(self, input_shape: tuple[int, ...], base_dir: Path) -> DataSplits:
        return digits_splits(self.resize, self.seed)

    def shape_fix(self, got: tuple[int, ...], input_shape: tuple[int, ...]) -> str:
        want = tuple(input_shape[1:])
        if len(want) == 3 and want[0] == 1 and want[1] == want[2]:
            return f"Set data.resize: {want[1]}, or model.input_shape: [1, 1, {got[1]}, {got[2]}]."
        return f"Digits are 1-channel square images: set model.input_shape to [1, 1, {got[1]}, {got[2]}]."


class NpzDataConfig(ConfigModel):
    """Arrays from a NumPy ``.npz`` file: inputs (used as-is, cast to float32) and optional labels."""

    FILE_FIELDS = ("path", "eval_path")

    source: Literal["npz"] = Field(description="A NumPy .npz file with input (and label) arrays.")
    path: str = Field(description="The .npz file, relative to the recipe's folder.")
    x_key: str = Field("x", description="Name of the input array: N×C×H×W (or N×H×W, N×features), "
                       "already normalized the way the model expects.")
    y_key: str = Field("y", description="Name of the int label array (length N). If the file has no "
                       "such array the data is unlabelled: agreement is reported, accuracy is not.")
    eval_path: str | None = Field(
        None, description="A second .npz used as the eval split (same keys); then all of `path` is "
        "the train split. Without it, eval is a seeded split of `path`.",
    )
    eval_fraction: float = _EVAL_FRACTION_FIELD
    seed: int = _SEED_FIELD

    def load_splits(self, input_shape: tuple[int, ...], base_dir: Path) -> DataSplits:
        from edgec.data_files import load_npz_arrays

        explicit_y = "y_key" in self.model_fields_set
        x, y = load_npz_arrays(base_dir / self.path, self.x_key, self.y_key, explicit_y, input_shape)
        if self.eval_path is None:
            return _make_splits(x, y, self.eval_fraction, self.seed)
        ex, ey = load_npz_arrays(base_dir / self.eval_path, self.x_key, self.y_key, explicit_y,
                                 input_shape)
        return _presplit(x, y, ex, ey, self.seed)

    def shape_fix(self, got: tuple[int, ...], input_shape: tuple[int, ...]) -> str:
        return (f"Reshape '{self.x_key}' in {self.path} to N×{'×'.join(map(str, input_shape[1:]))}, "
                f"or set model.input_shape to {[1, *got]}.")


class ImageFolderDataConfig(ConfigModel):
    """A folder of images, one subfolder per class (torchvision ImageFolder), read into memory.

    Meant for edge-sized data sets (thousands of small images): every image is decoded, resized and
    held in RAM (once per sweep: its variants share the arrays). ``root/train`` + ``root/val``
    subfolders, if both exist, are used as the splits.
    """

    FOLDER_FIELDS = ("path",)
    # decoding is the slow part of a sweep's variant: done once per sweep (data_cache.py)
    SHARED_IN_SWEEP: ClassVar[bool] = True

    source: Literal["imagefolder"] = Field(description="A folder with one subfolder per class.")
    path: str = Field(description="Root folder, relative to the recipe's folder: root/<class>/<img>, "
                      "or root/train/<class>/<img> and root/val/<class>/<img>.")
    resize: int = Field(ge=1, le=4096, description="Shorter side is resized to this, then the "
                        "centre square is cropped: inputs are resize×resize.")
    mean: list[float] = Field(min_length=1, max_length=3,
                              description="Per-channel mean subtracted after scaling pixels to 0..1.")
    std: list[float] = Field(min_length=1, max_length=3,
                             description="Per-channel std divided by after subtracting the mean.")
    grayscale: bool = Field(False, description="Convert images to 1 channel (else RGB, 3 channels).")
    eval_fraction: float = _EVAL_FRACTION_FIELD
    seed: int = _SEED_FIELD

    @model_validator(mode="after")
    def _check_channels(self) -> ImageFolderDataConfig:
        channels = 1 if self.grayscale else 3
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean and std need {channels} value(s) each for "
                             f"{'grayscale' if self.grayscale else 'RGB'} images, got "
                             f"{len(self.mean)} and {len(self.std)}")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be > 0")
        return self

    def sample_shape(self) -> tuple[int, ...]:
        return (1 if self.grayscale else 3, self.resize, self.resize)

    def load_splits(self, input_shape: tuple[int, ...], base_dir: Path) -> DataSplits:
        from edgec.data_files import load_imagefolder

        parts, classes = load_imagefolder(base_dir / self.path, self)
        if len(parts) == 2:
            (x, y), (ex, ey) = parts
            return _presplit(x, y, ex, ey, self.seed, num_classes=len(classes))
        x, y = parts[0]
        return _make_splits(x, y, self.eval_fraction, self.seed, num_classes=len(classes))

    def shape_fix(self, got: tuple[int, ...], input_shape: tuple[int, ...]) -> str:
        want = tuple(input_shape[1:])
        if len(want) == 3 and want[1] == want[2] and want[0] in (1, 3):
            return (f"Set data.resize: {want[1]} and grayscale: {str(want[0] == 1).lower()}, "
                    f"or model.input_shape: {[1, *got]}.")
        return f"Set model.input_shape to {[1, *got]}."


class SyntheticDataConfig(ConfigModel):
    """Random normal inputs of the model's input shape: for latency only. No labels, no training."""

    source: Literal["synthetic"] = Field(description="Random inputs; accuracy is reported as absent.")
    samples: int = Field(64, ge=1, le=100_000, description="How many random inputs to generate.")
    seed: int = Field(0, ge=0, description="Seed of the random inputs.")

    def load_splits(self, input_shape: tuple[int, ...], base_dir: Path) -> DataSplits:
        import numpy as np

        x = np.random.default_rng(self.seed).standard_normal(
            (self.samples, *input_shape[1:]), dtype=np.float32)
        return DataSplits(train=None, calib=Split(x), eval=Split(x), num_classes=None)

    def shape_fix(self, got: tuple[int, ...], input_shape: tuple[int, ...]) -> str:
        return "Synthetic inputs always follow model.input_shape."  # never reached


DataSpec = Annotated[
    Union[DigitsDataConfig, NpzDataConfig, ImageFolderDataConfig, SyntheticDataConfig],  # noqa: UP007
    Field(discriminator="source"),
]


def load_data(spec: DataSpec, input_shape: tuple[int, ...], base_dir: Path,
              shared: Path | None = None, progress=None) -> DataSplits:
    """Load ``spec``'s splits and check they fit the model's ``input_shape`` (batch dim included).

    Relative paths resolve against ``base_dir`` (the recipe's folder); ``shared``: a sweep's
    folder for data its variants decode once (data_cache.py). Raises DataError.
    """
    input_shape = tuple(input_shape)
    mismatch = shape_mismatch(spec, input_shape)
    if mismatch:  # known without loading (digits, an image folder's resize): before decoding it
        raise DataError(mismatch)
    if shared is None:
        splits = spec.load_splits(input_shape, Path(base_dir))
    else:
        from edgec.data_cache import load_shared

        splits = load_shared(shared, spec, input_shape, Path(base_dir),
                             lambda: spec.load_splits(input_shape, Path(base_dir)), progress)
    for name in ("train", "calib", "eval"):
        split = getattr(splits, name)
        if split is None:
            continue
        got = tuple(split.x.shape[1:])
        _check_shape(got, input_shape, spec.shape_fix(got, input_shape))
        if len(split) == 0:
            raise DataError(f"The {name} split of the {spec.source} data is empty. Provide more "
                            "samples (at least 2) or a larger eval_fraction.")
    return splits


def shape_mismatch(spec: DataSpec, input_shape: tuple[int, ...]) -> str | None:
    """Recipe validation's words for data whose shape is known without loading it (digits, an
    image folder's resize) that does not fit model.input_shape; None if it fits or is unknown."""
    known = spec.sample_shape() if hasattr(spec, "sample_shape") else None
    if known is None or tuple(input_shape[1:]) == known:
        return None
    return (f"data ({spec.source}) gives inputs of shape {list(known)} per sample, but "
            f"model.input_shape is {list(input_shape)}. {spec.shape_fix(known, tuple(input_shape))}")


def check_labels(splits: DataSplits, num_outputs: int | None, source: str) -> None:
    """Labels must index the model's outputs, or accuracy would be silently wrong. Raises DataError."""
    if num_outputs is None:
        return
    for name in ("train", "eval"):
        split = getattr(splits, name)
        if split is None or split.y is None or not len(split.y):
            continue
        top = int(split.y.max())
        if top >= num_outputs:
            raise DataError(
                f"The {source} data's {name} split has label {top}, but the model has "
                f"{num_outputs} outputs (classes 0..{num_outputs - 1}). Check that the labels "
                "belong to this model (or its num_classes)."
            )


def digits_splits(resize: int | None = None, seed: int = 0) -> DataSplits:
    """The digits as N×1×S×S float32 (S = resize or 8), normalized, split as the module doc says."""
    import numpy as np

    from edgec.digits_source import digits_arrays, resize_bilinear

    images, labels = digits_arrays()
    x = images.astype(np.float32)[:, None] / 16.0
    if resize and resize != 8:
        x = resize_bilinear(x, resize)
    x = ((x - DIGITS_MEAN) / DIGITS_STD).astype(np.float32)
    return _make_splits(x, labels, EVAL_FRACTION, seed, num_classes=10)


def _make_splits(x: np.ndarray, y: np.ndarray | None, eval_fraction: float, seed: int,
                num_classes: int | None = None) -> DataSplits:
    """Seeded split into train / calib / eval (stratified when labelled). Raises DataError."""
    import numpy as np

    rng = np.random.default_rng(seed)
    groups = [np.arange(len(x))] if y is None else [np.flatnonzero(y == c) for c in np.unique(y)]
    train_idx, eval_idx = [], []
    for idx in groups:
        idx = rng.permutation(idx)
        k = round(len(idx) * eval_fraction)
        eval_idx.append(idx[:k])
        train_idx.append(idx[k:])
    train_idx, eval_idx = (rng.permutation(np.concatenate(i)) for i in (train_idx, eval_idx))
    if len(eval_idx) == 0 or len(train_idx) == 0:
        raise DataError(f"Only {len(x)} samples: too few to hold out an eval split with "
                        f"eval_fraction {eval_fraction}. Provide more samples.")
    return _splits(x[train_idx], None if y is None else y[train_idx],
                   x[eval_idx], None if y is None else y[eval_idx], num_classes)


def _presplit(x, y, ex, ey, seed: int, num_classes: int | None = None) -> DataSplits:
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(x))  # calib takes the first CALIB_MAX
    return _splits(x[order], None if y is None else y[order], ex, ey, num_classes)


def _splits(x, y, ex, ey, num_classes: int | None) -> DataSplits:
    if num_classes is None and (y is not None or ey is not None):
        num_classes = int(max(int(a.max()) for a in (y, ey) if a is not None and len(a))) + 1
    return DataSplits(train=Split(x, y), calib=Split(x[:CALIB_MAX]), eval=Split(ex, ey),
                      num_classes=num_classes)


def _check_shape(got: tuple[int, ...], input_shape: tuple[int, ...], fix: str) -> None:
    want = tuple(input_shape[1:])
    if tuple(got) != want:
        raise DataError(
            f"The data's inputs have shape {list(got)} per sample, but model.input_shape is "
            f"{list(input_shape)}, i.e. {list(want)} per sample after the batch dimension. {fix}"
        )
