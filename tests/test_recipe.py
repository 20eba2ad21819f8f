"""Recipe loading and validation: every bad recipe gets exit 2 and a message naming the key."""

import json

import pytest
from click.testing import CliRunner
from conftest import TINY_RECIPE

from edgec.cli import cli
from edgec.errors import RecipeError, UsageError
from edgec.recipe import Recipe, load_recipe, recipe_schema, validate_recipe
from edgec.recipe_yaml import parse_override, parse_yaml

GOOD = {
    "version": 1,
    "model": {"source": "zoo", "name": "digits_cnn", "input_shape": [1, 1, 8, 8]},
    "data": {"source": "digits"},
    "passes": [{"type": "quantize", "mode": "static"}],
}


def test_valid_recipe_defaults():
    recipe = validate_recipe(GOOD)
    assert isinstance(recipe, Recipe)
    assert recipe.benchmark.threads == 1
    assert recipe.passes[0].type == "quantize"
    assert recipe.export.opset >= 17


def test_recipe_is_frozen():
    recipe = validate_recipe(GOOD)
    with pytest.raises(Exception):  # noqa: B017  pydantic raises ValidationError on assignment
        recipe.seed = 3


# (recipe text, substrings the error must contain). Each is a distinct user mistake.
BAD_RECIPES = [
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\nmodle: {}\n",
     ["unknown key 'modle'", "did you mean 'model'", "line 3"]),
    ("version: 2\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n",
     ["version", "got 2"]),
    ("model: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n", ["version", "missing"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "data: {source: digits}\npasses:\n  - {type: qantize}\n",
     ["passes[0]", "unknown type 'qantize'", "did you mean 'quantize'"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "data: {source: digits}\npasses:\n  - {type: quantize, mode: statc}\n",
     ["passes[0].mode", "did you mean 'static'", "line 5"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "data: {source: digits}\npasses:\n  - {type: quantize, samples: 0}\n",
     ["passes[0].samples", "must be >= 1"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "data: {source: digits}\npasses:\n  - {type: quantize, per_chanel: true}\n",
     ["passes[0]", "unknown key 'per_chanel'", "did you mean 'per_channel'"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "passes:\n  - {type: quantize, mode: static}\n",
     ["passes[0] (quantize) needs", "synthetic"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "budgets: {max_accuracy_drop: 0.01}\n",
     ["max_accuracy_drop needs labelled data"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "budgets: {max_accuracy_loss: 0.01}\n",  # a regression gate on accuracy: labels too
     ["max_accuracy_loss needs labelled data", "synthetic"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "benchmark: {threads: 0}\n", ["benchmark.threads", "must be >= 1"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "budgets: {max_size_kb: .nan}\n", ["budgets.max_size_kb"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "budgets: {max_accuracy_drop: 5}\n", ["budgets.max_accuracy_drop", "must be <= 1"]),
    ("version: 1\nmodel: {source: hub, name: x, input_shape: [1,1,8,8]}\n",
     ["model", "unknown source 'hub'"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "export: {opset: 9}\n", ["export.opset", "must be >= 13"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]\n",
     ["not valid YAML", "line"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "benchmark: {runs: yes}\n", ["benchmark", "runs: expected a number", "got the boolean true"]),
    ("version: 1\nmodel: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8]}\n"
     "data: {source: digits}\npasses:\n  - {type: quantize, samples: on}\n",
     ["passes[0]", "samples: expected a number"]),
    ("- just\n- a list\n", ["must be a mapping"]),
    ("", ["recipe is empty"]),
]


@pytest.mark.parametrize(("text", "expected"), BAD_RECIPES, ids=range(len(BAD_RECIPES)))
def test_bad_recipe_exit_2_with_message(write_recipe, text, expected):
    path = write_recipe(text)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    for fragment in expected:
        assert fragment in result.output, f"{fragment!r} not in:\n{result.output}"
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("recipe", "overrides", "expected"), [
    ("resnet-digits.yaml", ["data.resize=null"],
     "data (digits) gives inputs of shape [1, 8, 8] per sample, but model.input_shape is "
     "[1, 1, 32, 32]. Set data.resize: 32"),
    ("quickstart.yaml", ["data.resize=32"], "shape [1, 32, 32] per sample"),
])
def test_digits_shape_is_checked_before_any_work(recipe, overrides, expected):
    """The digits' shape is known without loading them: `validate` said valid and compress failed
    at 'load data' (exit 3, a .partial folder) on what exit 2 should have said."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "configs" / recipe
    args = ["validate", str(path), *(a for o in overrides for a in ("--set", o))]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())


def test_image_folder_shape_is_checked_before_any_work(tmp_path):
    raw = dict(GOOD, model={"source": "python", "callable": "m.py:f", "input_shape": [1, 3, 32, 32]},
               data={"source": "imagefolder", "path": "imgs", "resize": 32, "grayscale": True,
                     "mean": [0.5], "std": [0.5]})
    with pytest.raises(RecipeError) as info:
        validate_recipe(raw)
    assert "gives inputs of shape [1, 32, 32] per sample" in str(info.value.problems)
    assert "grayscale: false" in str(info.value.problems)
    ok = dict(raw, data={**raw["data"], "grayscale": False, "mean": [0.5] * 3, "std": [0.5] * 3})
    assert validate_recipe(ok).data.sample_shape() == (3, 32, 32)


def test_torch_pass_after_onnx_pass_is_refused():
    from edgec.passes import PASSES

    torch_passes = [name for name, cls in PASSES.items() if cls.stage == "torch"]
    if not torch_passes:
        pytest.skip("no torch-stage pass registered yet")
    raw = dict(GOOD, passes=[{"type": "quantize"}, {"type": torch_passes[0]}])
    with pytest.raises(RecipeError, match=r"passes\[1\].*torch-stage.*after passes\[0\]"):
        validate_recipe(raw)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")


def test_overrides_apply_and_validate(write_recipe):
    path = write_recipe()
    recipe = load_recipe(path, ["passes.0.per_channel=false", "benchmark.runs=7", "seed=3"])
    assert recipe.passes[0].per_channel is False
    assert recipe.benchmark.runs == 7 and recipe.seed == 3


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("passes.5.mode=static", "not an index"),
        ("benchmark.runz=3", "did you mean 'runs'"),
        ("benchmark.runs=-1", "benchmark.runs"),
        ("noequals", "expected dotted.path=value"),
        ("model.source.x=1", "not a section"),
    ],
)
def test_bad_overrides(write_recipe, override, expected):
    result = CliRunner().invoke(cli, ["validate", str(write_recipe()), "--set", override])
    assert result.exit_code == 2
    assert expected in result.output


def test_an_overridden_value_is_blamed_on_its_override_not_on_a_line(write_recipe):
    """The file's line 5 holds the value --set replaced; the error names the --set instead."""
    path = write_recipe()
    with pytest.raises(RecipeError) as info:
        load_recipe(path, ["passes.0.mode=bogus", "benchmark.runs=0"])
    problems = "\n".join(info.value.problems)
    assert "passes[0].mode (set by passes.0.mode=bogus)" in problems
    assert "benchmark.runs (set by benchmark.runs=0)" in problems and "(line" not in problems
    with pytest.raises(RecipeError) as info:
        load_recipe(path, ["benchmark.runs=0"])
    assert "(set by" in info.value.problems[0]
    with pytest.raises(RecipeError) as info:  # the rest of the file keeps its line numbers
        load_recipe(write_recipe(TINY_RECIPE.replace("runs: 10", "runs: 0"), "b.yaml"), ["seed=2"])
    assert "benchmark.runs (line 6)" in info.value.problems[0]
    with pytest.raises(RecipeError) as info:  # a key the override itself created
        load_recipe(path, ["foo.bar=1"])
    assert info.value.problems[0].startswith("foo (set by foo.bar=1): unknown key 'foo'")


def test_parse_override_types():
    assert parse_override("a.0.b=false") == (["a", 0, "b"], False)
    assert parse_override("x=0.5") == (["x"], 0.5)
    assert parse_override("x=[1, 2]") == (["x"], [1, 2])
    assert parse_override("x=hello") == (["x"], "hello")


def test_yaml_alias_bomb_is_refused():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 7):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(RecipeError, match="alias"):
        parse_yaml("\n".join(lines), "bomb.yaml")


def test_yaml_never_constructs_objects():
    with pytest.raises(RecipeError):
        parse_yaml("x: !!python/object/apply:os.system ['true']", "evil.yaml")


def test_schema_command_outputs_json_schema():
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"].startswith("edgec recipe")
    assert {"model", "data", "passes", "budgets"} <= set(schema["properties"])
    assert recipe_schema()["properties"]["version"]


def test_every_field_has_a_description():
    """Descriptions feed `edgec schema`, --help and the docs: none may be missing."""
    missing = []

    def walk(model, prefix):
        for name, field in model.model_fields.items():
            if not field.description and name not in ("type", "source"):
                missing.append(f"{prefix}{name}")

    from edgec.passes import PASSES

    walk(Recipe, "")
    for cls in PASSES.values():
        walk(cls.Config, f"passes.{cls.name}.")
    assert not missing, f"fields without description: {missing}"


def test_recipe_variants_parse_once_and_do_not_share_overrides(write_recipe, monkeypatch):
    import edgec.recipe as recipe_module

    path = write_recipe()
    parsed = []
    real = recipe_module.parse_yaml
    monkeypatch.setattr(recipe_module, "parse_yaml", lambda *a: parsed.append(a) or real(*a))
    variant = recipe_module.recipe_variants(path)
    a = variant(["passes.0.exclude_ops=[Conv]", "benchmark.runs=7"])
    b = variant(["passes.0.per_channel=false"])
    assert len(parsed) == 1
    assert a.benchmark.runs == 7 and b.benchmark.runs != 7  # each call starts from the file
    assert b.passes[0].per_channel is False and a.passes[0].per_channel is not False
    assert a.passes[0].exclude_ops == ("Conv",) and b.passes[0].exclude_ops == ()
    assert variant(["benchmark.runs=7"]) == load_recipe(path, ["benchmark.runs=7"])
