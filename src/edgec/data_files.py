"""Reading the user's data files: an ``.npz`` archive of arrays, or an image folder (class per
subfolder, optionally ``train/`` and ``val/``). Every failure is a DataError naming the file and the
fix; the arrays come back as float32 inputs and int64 labels, shapes checked against the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import DataError, not_a_folder

if TYPE_CHECKING:
    import numpy as np

    from edgec.data import ImageFolderDataConfig


def load_npz_arrays(path: Path, x_key: str, y_key: str, y_required: bool,
                     input_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    import zipfile

    import numpy as np

    if not path.is_file():
        raise DataError(f"npz data file '{path}' does not exist. Check data.path (relative to the "
                        "recipe's folder).")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"'{path}' is a single .npy array, not an .npz archive. Save it with "
                            f"np.savez('{path.stem}.npz', {x_key}=inputs, {y_key}=labels).")
        with archive:
            keys = list(archive.keys())
            if x_key not in keys:
                raise DataError(f"'{path}' has no array '{x_key}' (it has: {', '.join(keys) or 'none'}). "
                                "Set data.x_key to the name of the input array.")
            if y_required and y_key not in keys:
                raise DataError(f"'{path}' has no label array '{y_key}' (it has: {', '.join(keys)}). "
                                "Set data.y_key, or remove it for unlabelled data.")
            x = archive[x_key]
            y = archive[y_key] if y_key in keys else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"Cannot read '{path}' as an .npz file ({exc}). Save the arrays with "
                        f"np.savez(path, {x_key}=inputs, {y_key}=labels).") from None
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or x.ndim < 2:
        raise DataError(f"'{path}': '{x_key}' must be a numeric array with a sample axis first "
                        f"(N×...), got dtype {x.dtype} and shape {list(x.shape)}.")
    if len(x) == 0:
        raise DataError(f"'{path}': '{x_key}' holds no samples. Provide a non-empty array.")
    want = tuple(input_shape[1:])
    if x.ndim == len(want) and len(want) >= 2 and want[0] == 1 and x.shape[1:] == want[1:]:
        x = x[:, None]  # N×H×W grayscale images for a 1-channel model: add the channel axis
    x = x.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if len(bad):
        raise DataError(f"'{path}': {len(bad)} of {len(x)} samples in '{x_key}' hold NaN or infinite "
                        f"values (first: index {bad[0]}). Clean or drop those samples.")
    if y is None:
        return x, None
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"'{path}': '{y_key}' must be one integer label per sample (shape [{len(x)}]), "
                        f"got shape {list(y.shape)} for {len(x)} inputs. For one-hot labels, store "
                        "y.argmax(1).")
    if not np.issubdtype(y.dtype, np.number) or (np.issubdtype(y.dtype, np.floating)
                                                   and not np.array_equal(y, np.round(y))):
        raise DataError(f"'{path}': '{y_key}' must hold integer class indices, got dtype {y.dtype}.")
    if len(y) and y.min() < 0:
        raise DataError(f"'{path}': '{y_key}' has negative labels (min {int(y.min())}). Labels must be "
                        "class indices 0..num_classes-1.")
    return x, y.astype(np.int64)


def load_imagefolder(root: Path, cfg: ImageFolderDataConfig):
    """Returns ([(x, y)] or [(x, y), (eval_x, eval_y)], class names). Raises DataError."""
    if not root.is_dir():
        raise DataError(f"Image folder '{root}' {not_a_folder(root)}. Set data.path to a folder with one "
                        "subfolder per class (relative to the recipe's folder).")
    from torchvision import transforms

    steps = [transforms.Grayscale(1)] if cfg.grayscale else []
    transform = transforms.Compose([
        *steps, transforms.Resize(cfg.resize), transforms.CenterCrop(cfg.resize),
        transforms.ToTensor(), transforms.Normalize(cfg.mean, cfg.std),
    ])
    if (root / "train").is_dir() and (root / "val").is_dir():
        (x, y, classes), (ex, ey, eval_classes) = (
            read_images(root / part, transform) for part in ("train", "val"))
        if classes != eval_classes:
            raise DataError(f"'{root}/train' and '{root}/val' have different class folders "
                            f"({classes} vs {eval_classes}); labels would not match. Use the same "
                            "class subfolders in both.")
        return [(x, y), (ex, ey)], classes
    x, y, classes = read_images(root, transform)
    return [(x, y)], classes


def read_images(folder: Path, transform):
    import numpy as np
    from torchvision.datasets import ImageFolder

    try:
        dataset = ImageFolder(str(folder), transform=transform)
    except FileNotFoundError as exc:
        raise DataError(f"Image folder '{folder}' has no images in class subfolders ({exc}). Expected "
                        "layout: <folder>/<class name>/<image>.png (or .jpg, …).") from None
    if len(dataset.classes) < 2:
        raise DataError(f"Image folder '{folder}' has only one class ('{dataset.classes[0]}'). A "
                        "classifier needs at least two class subfolders; put images in one "
                        "subfolder per class.")
    images = []
    for i, (file, _) in enumerate(dataset.samples):
        try:
            images.append(dataset[i][0].numpy())
        except Exception as exc:  # PIL raises many types for a broken image file
            raise DataError(f"Cannot read image '{file}': {exc}. Remove or replace the file.") from None
    return (np.stack(images).astype(np.float32), np.asarray(dataset.targets, dtype=np.int64),
            list(dataset.classes))
