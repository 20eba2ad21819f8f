import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from edgec.data import (
    CALIB_MAX,
    DataSpec,
    Split,
    digits_splits,
    load_data,
)
from edgec.errors import DataError

SPEC = TypeAdapter(DataSpec)


def spec(**fields):
    return SPEC.validate_python(fields)


@pytest.fixture(scope="module")
def digits():
    return load_data(spec(source="digits"), (1, 1, 8, 8), ".")


def test_digits_splits_are_real_normalized_and_held_out(digits):
    assert digits.labelled and digits.num_classes == 10
    assert digits.train.x.shape[1:] == (1, 8, 8) and digits.eval.x.dtype == np.float32
    assert digits.eval.y.dtype == np.int64
    assert len(digits.train) + len(digits.eval) == 1797
    assert 530 <= len(digits.eval) <= 550  # large enough for accuracy to about half a point
    assert np.all(np.bincount(digits.eval.y, minlength=10) >= 50)  # stratified
    assert abs(float(digits.train.x.mean())) < 0.05 and abs(float(digits.train.x.std()) - 1) < 0.05
    # calibration draws from train, never from eval
    assert len(digits.calib) == CALIB_MAX and digits.calib.y is None
    np.testing.assert_array_equal(digits.calib.x, digits.train.x[:CALIB_MAX])
    train_rows = {row.tobytes() for row in digits.train.x}
    assert not any(row.tobytes() in train_rows for row in digits.eval.x[:100])


def test_digits_deterministic_and_seeded(digits):
    again = digits_splits(None, seed=0)
    np.testing.assert_array_equal(again.eval.x, digits.eval.x)
    np.testing.assert_array_equal(again.train.y, digits.train.y)
    other = digits_splits(None, seed=1)
    assert not np.array_equal(other.eval.y, digits.eval.y)


def test_digits_resize():
    splits = load_data(spec(source="digits", resize=16), (1, 1, 16, 16), ".")
    assert splits.eval.x.shape[1:] == (1, 16, 16) and splits.eval.x.dtype == np.float32


@pytest.mark.parametrize("side", [4, 5, 12, 16, 32, 64])
def test_digits_resize_is_torch_bilinear(side):
    """Resized in numpy so that a kept export's run never imports torch; the images are torch's
    bilinear ones (the zoo's resnet was trained on those): exact for 4-64 in powers of two."""
    import torch
    import torch.nn.functional as F

    from edgec.digits_source import digits_arrays, resize_bilinear

    x = digits_arrays()[0].astype(np.float32)[:, None] / 16.0
    want = F.interpolate(torch.from_numpy(x), size=(side, side), mode="bilinear",
                         align_corners=False).numpy()
    got = resize_bilinear(x, side)
    assert got.shape == want.shape and got.dtype == np.float32
    if side & (side - 1) == 0:
        assert np.array_equal(got, want)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_resized_digits_load_without_torch():
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = ("import sys; from edgec.data import digits_splits; "
              "x = digits_splits(32).eval.x; print(x.shape, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(")")[-1].strip() == "False"


@pytest.mark.parametrize(
    ("shape", "pattern"),
    [((1, 1, 32, 32), r"\[1, 8, 8\].*\[1, 1, 32, 32\].*resize: 32"),
     ((1, 3, 8, 8), r"\[1, 8, 8\].*\[1, 3, 8, 8\].*input_shape to \[1, 1, 8, 8\]")],
)
def test_digits_shape_mismatch_names_both_and_fix(shape, pattern):
    with pytest.raises(DataError, match=pattern):
        load_data(spec(source="digits"), shape, ".")


def test_split_batches():
    split = Split(np.zeros((10, 3), np.float32), np.arange(10))
    sizes = [(len(x), len(y)) for x, y in split.batches(4)]
    assert sizes == [(4, 4), (4, 4), (2, 2)] and len(split) == 10
    assert all(y is None for _, y in Split(np.zeros((3, 2), np.float32)).batches(2))
    with pytest.raises(ValueError):
        next(split.batches(0))


# --- npz ---------------------------------------------------------------------------------------

def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_labelled_split(tmp_path):
    rng = np.random.default_rng(0)
    _npz(tmp_path / "d.npz", x=rng.normal(size=(100, 2, 4, 4)), y=np.arange(100) % 5)
    splits = load_data(spec(source="npz", path="d.npz", eval_fraction=0.2), (1, 2, 4, 4), tmp_path)
    assert len(splits.eval) == 20 and len(splits.train) == 80 and splits.num_classes == 5
    assert splits.eval.x.dtype == np.float32 and splits.labelled


def test_npz_unlabelled_grayscale_and_eval_path(tmp_path):
    _npz(tmp_path / "tr.npz", x=np.ones((30, 8, 8)))  # N×H×W: the channel axis is added
    _npz(tmp_path / "ev.npz", x=np.zeros((7, 8, 8)))
    splits = load_data(spec(source="npz", path="tr.npz", eval_path="ev.npz"), (1, 1, 8, 8), tmp_path)
    assert not splits.labelled and splits.num_classes is None
    assert splits.train.x.shape == (30, 1, 8, 8) and splits.eval.x.shape == (7, 1, 8, 8)
    assert float(splits.eval.x.sum()) == 0


@pytest.mark.parametrize(
    ("arrays", "extra", "pattern"),
    [
        ({"x": np.zeros((4, 3)), "y": np.zeros(5, int)}, {}, r"one integer label per sample"),
        ({"x": np.zeros((4, 3)), "y": np.array([0, 1, -1, 0])}, {}, r"negative labels"),
        ({"x": np.array([[0, 1, np.nan]] * 4), "y": np.zeros(4, int)}, {},
         r"4 of 4 samples .*NaN or infinite.*index 0"),
        ({"x": np.zeros((4, 3)), "y": np.array([0, 0.5, 1, 1])}, {}, r"integer class indices"),
        ({"inputs": np.zeros((4, 3))}, {}, r"no array 'x' \(it has: inputs\).*x_key"),
        ({"x": np.zeros((4, 3))}, {"y_key": "labels"}, r"no label array 'labels'"),
        ({"x": np.zeros((4, 5)), "y": np.zeros(4, int)}, {}, r"\[5\].*\[1, 3\].*Reshape 'x'"),
    ],
)
def test_npz_errors(tmp_path, arrays, extra, pattern):
    _npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=pattern):
        load_data(spec(source="npz", path="d.npz", **extra), (1, 3), tmp_path)


def test_npz_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(spec(source="npz", path="nope.npz"), (1, 3), tmp_path)
    (tmp_path / "bad.npz").write_text("not numpy at all")
    with pytest.raises(DataError, match=r"Cannot read .*bad.npz"):
        load_data(spec(source="npz", path="bad.npz"), (1, 3), tmp_path)
    np.save(tmp_path / "one.npy", np.zeros((4, 3)))
    with pytest.raises(DataError, match=r"single .npy array"):
        load_data(spec(source="npz", path="one.npy"), (1, 3), tmp_path)


# --- imagefolder ---------------------------------------------------------------------------------

def _images(root, classes=("cat", "dog"), n=5, size=(12, 10)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    return root


IMAGEFOLDER = dict(source="imagefolder", path="imgs", resize=8, mean=[0.5] * 3, std=[0.25] * 3)


def test_imagefolder_rgb_split(tmp_path):
    _images(tmp_path / "imgs")
    splits = load_data(spec(**IMAGEFOLDER), (1, 3, 8, 8), tmp_path)
    assert splits.num_classes == 2 and splits.labelled
    assert len(splits.train) + len(splits.eval) == 10 and splits.eval.x.shape[1:] == (3, 8, 8)
    assert splits.train.x.min() >= -2.1 and splits.train.x.max() <= 2.1  # (0..1 - 0.5) / 0.25


def test_imagefolder_grayscale_presplit(tmp_path):
    _images(tmp_path / "imgs" / "train", n=4)
    _images(tmp_path / "imgs" / "val", n=2)
    cfg = dict(IMAGEFOLDER, grayscale=True, mean=[0.5], std=[0.5])
    splits = load_data(spec(**cfg), (1, 1, 8, 8), tmp_path)
    assert (len(splits.train), len(splits.eval)) == (8, 4)
    assert splits.eval.x.shape[1:] == (1, 8, 8) and sorted(set(splits.eval.y)) == [0, 1]


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(spec(**IMAGEFOLDER), (1, 3, 8, 8), tmp_path)
    (tmp_path / "imgs").mkdir()
    with pytest.raises(DataError, match="no images in class subfolders"):
        load_data(spec(**IMAGEFOLDER), (1, 3, 8, 8), tmp_path)
    _images(tmp_path / "imgs", classes=("cat",))
    with pytest.raises(DataError, match=r"only one class.*'cat'"):
        load_data(spec(**IMAGEFOLDER), (1, 3, 8, 8), tmp_path)
    (tmp_path / "imgs" / "dog").mkdir()
    (tmp_path / "imgs" / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"Cannot read image .*broken.png"):
        load_data(spec(**IMAGEFOLDER), (1, 3, 8, 8), tmp_path)
    with pytest.raises(DataError, match=r"\[3, 8, 8\].*resize: 16 and grayscale: true"):
        load_data(spec(**IMAGEFOLDER), (1, 1, 16, 16), tmp_path)


def test_imagefolder_train_val_classes_must_match(tmp_path):
    _images(tmp_path / "imgs" / "train", classes=("a", "b"), n=1)
    _images(tmp_path / "imgs" / "val", classes=("a", "c"), n=1)
    with pytest.raises(DataError, match="different class folders"):
        load_data(spec(**IMAGEFOLDER), (1, 3, 8, 8), tmp_path)


def test_imagefolder_config_checks_channels():
    with pytest.raises(ValidationError, match="need 3 value"):
        spec(**dict(IMAGEFOLDER, mean=[0.5]))
    with pytest.raises(ValidationError, match="std values must be > 0"):
        spec(**dict(IMAGEFOLDER, std=[0.2, 0.0, 0.2]))


# --- synthetic and config --------------------------------------------------------------------------

def test_synthetic_has_no_labels_and_follows_the_shape():
    splits = load_data(spec(source="synthetic", samples=5, seed=3), (1, 2, 3, 4), ".")
    assert splits.train is None and not splits.labelled and splits.num_classes is None
    assert splits.eval.x.shape == (5, 2, 3, 4) and splits.calib.x.dtype == np.float32
    again = load_data(spec(source="synthetic", samples=5, seed=3), (1, 2, 3, 4), ".")
    np.testing.assert_array_equal(again.eval.x, splits.eval.x)


def test_configs_forbid_unknown_keys_and_are_frozen():
    with pytest.raises(ValidationError, match="resise"):
        spec(source="digits", resise=32)
    cfg = spec(source="digits")
    with pytest.raises(ValidationError):
        cfg.resize = 3


def test_bundled_digits_read_without_sklearn_match_load_digits():
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from edgec.digits_source import digits_arrays

    images, labels = digits_arrays()
    reference = load_digits()
    assert np.array_equal(images, reference.images) and np.array_equal(labels, reference.target)
    assert not images.flags.writeable  # one cached copy: callers must not change it
    probe = ("import sys; from edgec.data import digits_splits; digits_splits(None); "
             "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # 0.9 s of scipy imports saved in every process
