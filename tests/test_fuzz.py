"""Property-based fuzzing of what edgec reads from others: recipe text, `--set` overrides, ONNX files.

Whatever the input, the outcome is a valid result or the project's own error with a message —
never another exception (which the CLI would report as an internal error).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgec.errors import EdgecError, RecipeError
from edgec.recipe import Recipe, load_recipe

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID = {
    "version": 1,
    "model": {"source": "zoo", "name": "digits_cnn", "input_shape": [1, 1, 8, 8]},
    "data": {"source": "digits"},
    "passes": [{"type": "quantize", "mode": "static", "samples": 64}],
    "benchmark": {"threads": 1, "runs": 10},
    "budgets": {"max_size_kb": 100, "max_accuracy_drop": 0.01},
    "output": {"dir": "runs/x"},
    "seed": 0,
}
KEYS = sorted({"version", "model", "data", "passes", "source", "name", "input_shape", "type", "mode",
               "path", "callable", "weights", "threads", "runs", "dir", "seed", "budgets",
               "max_size_kb", "architecture", "trust_pickle", "kwargs", "resize", "opset"})
SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.sampled_from(["zoo", "digits", "quantize", "static", "..",
                                                      "/etc", "digits_cnn", "1e999", ".nan"]))
TREES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
    max_leaves=25,
)


def _load_text(text: str | bytes, overrides=()) -> Recipe:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        return load_recipe(path, overrides)


def _only_recipe_errors(text, overrides=()) -> None:
    try:
        recipe = _load_text(text, overrides)
    except RecipeError as exc:
        assert str(exc).strip(), "a RecipeError must carry a message"
        return
    assert isinstance(recipe, Recipe)


@FAST
@given(TREES)
def test_random_structures(tree):
    _only_recipe_errors(yaml.safe_dump(tree, allow_unicode=True))


@FAST
@given(st.dictionaries(st.sampled_from(sorted(VALID)), TREES, max_size=4))
def test_valid_recipe_with_random_sections(replacements):
    _only_recipe_errors(yaml.safe_dump({**VALID, **replacements}))


@FAST
@given(st.text(max_size=300))
def test_random_text(text):
    _only_recipe_errors(text)


@FAST
@given(st.binary(max_size=200))
def test_random_bytes(data):
    _only_recipe_errors(data)


@FAST
@given(st.lists(st.sampled_from(list("{}[]:,-&*!|>'\"#%@`? \n\tabc01")), max_size=80).map("".join))
def test_yaml_punctuation_soup(text):
    _only_recipe_errors(text)


OVERRIDE_PATHS = st.lists(st.sampled_from([*KEYS, "0", "1", "-1", "99", "", "x"]), min_size=1,
                          max_size=4).map(".".join)


@FAST
@given(st.lists(st.tuples(OVERRIDE_PATHS, st.text(max_size=20)).map("=".join) | st.text(max_size=30),
                max_size=4))
def test_set_overrides(overrides):
    _only_recipe_errors(yaml.safe_dump(VALID), overrides)


@pytest.mark.parametrize("depth", [50, 70, 800])  # 800: past the recursion limit
def test_deeply_nested_yaml(depth):
    _only_recipe_errors("version: 1\nmodel: " + "[" * depth + "]" * depth + "\n")
    _only_recipe_errors("version: 1\nmodel: " + "{a: " * depth + "1" + "}" * depth + "\n")
    _only_recipe_errors(yaml.safe_dump(VALID), [f"model.kwargs={'[' * depth}{']' * depth}"])


def test_yaml_cannot_build_python_objects():
    for tag in ("!!python/object/apply:os.system ['echo hacked']", "!!python/name:os.system"):
        with pytest.raises(RecipeError, match="not valid YAML"):
            _load_text(f"version: 1\nmodel: {tag}\n")


# ---- ONNX files, mutated ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def onnx_bytes(tmp_path_factory) -> bytes:
    import torch
    import torch.nn as nn

    from edgec.export import export_onnx
    from edgec.recipe import ExportConfig

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3)).eval()
    path = tmp_path_factory.mktemp("fuzz") / "m.onnx"
    export_onnx(model, (1, 1, 8, 8), path, ExportConfig())
    return path.read_bytes()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_onnx_files(onnx_bytes, data):
    from edgec.graph_stats import analyze_onnx

    raw = bytearray(onnx_bytes)
    kind = data.draw(st.sampled_from(["flip", "truncate", "splice"]))
    if kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            if kind == "flip":
                raw[i] ^= 1 << data.draw(st.integers(0, 7))
            else:
                raw[i:i] = data.draw(st.binary(min_size=1, max_size=4))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.onnx"
        path.write_bytes(bytes(raw))
        try:
            stats = analyze_onnx(path)
        except EdgecError as exc:
            assert "m.onnx" in str(exc) or str(exc).strip()
            return
        assert stats.params >= 0 and stats.macs >= 0


def test_impossible_shapes_are_refused_not_counted(onnx_bytes, tmp_path):
    """Found by the fuzzer: one flipped bit made the conv's dilation 5, shape inference gave its
    output a height of -2, and the MAC count went negative instead of the file being refused."""
    from edgec.graph_stats import analyze_onnx

    raw = bytearray(onnx_bytes)
    at = raw.index(b"dilations") + len(b"dilations") + 1  # the first dilation value
    assert raw[at] == 1
    raw[at] = 5
    path = tmp_path / "m.onnx"
    path.write_bytes(bytes(raw))
    with pytest.raises(EdgecError, match=r"impossible shape \[1, 2, -2, 6\]"):
        analyze_onnx(path)
