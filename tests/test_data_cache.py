"""A sweep's shared data: an image folder is decoded once per sweep, and again when a file changes."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_RECIPE
from pydantic import TypeAdapter

from edgec import data_files
from edgec.cli import cli
from edgec.data import DataSpec, load_data

GRAY = TypeAdapter(DataSpec).validate_python(
    dict(source="imagefolder", path="imgs", resize=8, grayscale=True, mean=[0.5], std=[0.5]))
SHAPE = (1, 1, 8, 8)


def _images(root, n=4):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (10, 12), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


@pytest.fixture
def decodes(monkeypatch):
    """How many times the image folder was decoded."""
    calls = []
    real = data_files.read_images

    def counted(*args):
        calls.append(args[0])
        return real(*args)

    monkeypatch.setattr(data_files, "read_images", counted)
    return calls


def _same(a, b):
    for name in ("train", "calib", "eval"):
        x, y = getattr(a, name), getattr(b, name)
        assert np.array_equal(x.x, y.x) and np.array_equal(x.y, y.y) and x.x.dtype == y.x.dtype
    assert a.num_classes == b.num_classes


def test_an_image_folder_is_decoded_once_per_sweep(tmp_path, decodes):
    _images(tmp_path / "imgs")
    shared = tmp_path / "cache" / "data"
    first = load_data(GRAY, SHAPE, tmp_path, shared)
    again = load_data(GRAY, SHAPE, tmp_path, shared)
    assert len(decodes) == 1 and len(list(shared.glob("*.npz"))) == 1
    _same(first, again)
    _same(first, load_data(GRAY, SHAPE, tmp_path))  # what an unshared run loads


def test_a_changed_image_or_setting_is_decoded_again(tmp_path, decodes):
    _images(tmp_path / "imgs")
    shared = tmp_path / "cache" / "data"
    first = load_data(GRAY, SHAPE, tmp_path, shared)
    image = tmp_path / "imgs" / "dog" / "0.png"
    from PIL import Image

    Image.fromarray(np.zeros((10, 12), dtype=np.uint8)).save(image)
    os.utime(image, ns=(1, 1))  # set back in time: any other stamp counts, not only a newer one
    changed = load_data(GRAY, SHAPE, tmp_path, shared)
    assert len(decodes) == 2 and not np.array_equal(
        np.concatenate([first.train.x, first.eval.x]), np.concatenate([changed.train.x, changed.eval.x]))
    assert len(list(shared.glob("*.npz"))) == 1  # the stale copy is gone
    other_seed = GRAY.model_copy(update={"seed": 3})
    load_data(other_seed, SHAPE, tmp_path, shared)
    assert len(decodes) == 3 and len(list(shared.glob("*.npz"))) == 2  # other settings: kept


def test_a_damaged_entry_is_decoded_again_and_replaced(tmp_path, decodes):
    _images(tmp_path / "imgs")
    shared = tmp_path / "cache" / "data"
    first = load_data(GRAY, SHAPE, tmp_path, shared)
    entry = next(shared.glob("*.npz"))
    entry.write_bytes(entry.read_bytes()[:100])
    _same(first, load_data(GRAY, SHAPE, tmp_path, shared))
    assert len(decodes) == 2
    _same(first, load_data(GRAY, SHAPE, tmp_path, shared))
    assert len(decodes) == 2  # the rewritten entry is read


def test_array_sources_are_not_copied(tmp_path):
    digits = TypeAdapter(DataSpec).validate_python({"source": "digits"})
    load_data(digits, SHAPE, tmp_path, tmp_path / "shared")
    assert not (tmp_path / "shared").exists()


def test_a_sweep_over_image_folder_data_decodes_it_once(write_recipe, recipe_dir, tmp_path, decodes):
    _images(recipe_dir / "imgs")
    recipe = write_recipe(TINY_RECIPE.replace(
        "data: {source: digits}",
        "data: {source: imagefolder, path: imgs, resize: 8, grayscale: true, mean: [0.5], "
        "std: [0.5]}"))
    out = tmp_path / "sw"
    result = CliRunner().invoke(cli, ["sweep", str(recipe), "--grid", "passes.0.samples=4,8",
                                      "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert len(list((out / "cache" / "data").glob("*.npz"))) == 1
    assert len(decodes) == 1  # --jobs 1 runs its variants in this process


def test_a_cache_that_cannot_be_written_costs_only_the_reuse(tmp_path, decodes):
    _images(tmp_path / "imgs")
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder would go")
    for _ in range(2):
        splits = load_data(GRAY, SHAPE, tmp_path, blocked / "data")
        assert splits.num_classes == 2
    assert len(decodes) == 2
