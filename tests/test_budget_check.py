"""`edgec check-budgets` (budget_check.py): options checked before any work, and their messages."""

from click.testing import CliRunner

from edgec.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_an_invalid_set_names_the_option_not_a_line_of_the_file(gated_run, tmp_path):
    """As `edgec compress --set` does (recipe_yaml.lines_with_overrides): the value at fault came
    from --set, so the message names it; it blamed line 1 of the budgets file."""
    _, folder = gated_run
    model = folder / "run" / "model.onnx"
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 1000\nmax_params: 5000\n")
    result = run("check-budgets", model, "--budgets", budgets, "--set", "max_size_kb=-3")
    assert result.exit_code == 2, result.output
    assert "max_size_kb (set by --set max_size_kb=-3): must be > 0" in result.output
    assert "line 1" not in result.output and "with --set: invalid budgets" in result.output
    recipe_style = tmp_path / "r.yaml"  # a recipe's budgets: section, with the prefix given
    recipe_style.write_text("budgets:\n  max_params: 5000\n")
    result = run("check-budgets", model, "--budgets", recipe_style, "--set", "budgets.max_params=x")
    assert result.exit_code == 2 and "(set by --set budgets.max_params=x)" in result.output
    assert "line 2" not in result.output
    result = run("check-budgets", model, "--budgets", budgets, "--set", "max_sizekb=3")
    assert "max_sizekb (set by --set max_sizekb=3): unknown key" in result.output
    result = run("check-budgets", model, "--budgets", budgets, "--set", "budgets.max_params.x=1")
    assert result.exit_code == 2  # a structural mistake names the option as typed, prefix kept
    assert "--set 'budgets.max_params.x=1': 'max_params' is an int, not a section" in result.output
    result = run("check-budgets", model, "--budgets", budgets, "--set", "max_params")
    assert result.exit_code == 2 and "e.g. --set max_size_kb=200" in result.output
    assert "passes.0" not in result.output  # the recipe's example would mislead here
    budgets.write_text("max_size_kb: -1\n")  # the file's own mistake still names its line
    result = run("check-budgets", model, "--budgets", budgets, "--set", "max_params=3")
    assert result.exit_code == 2 and "max_size_kb (line 1): must be > 0" in result.output


FLASH_PROFILE = """\
name: flashboard
description: a board whose runtime reads the weights in place from flash
weights_in_ram: false
"""


def _ram_limit_between(model):
    """A RAM budget that the activations alone meet and activations plus weights miss."""
    from edgec.device import memory_record

    without = memory_record(model, None, weights_in_ram=False)["ram_kb"]
    with_weights = memory_record(model, None, weights_in_ram=True)["ram_kb"]
    assert without < with_weights
    return without, (without + with_weights) / 2


def test_the_target_decides_how_ram_is_counted(gated_run, tmp_path):
    """A RAM budget compress met for a flash-weights target failed in check-budgets for the same
    model: it always counted the weights in RAM. --target counts them as compress does."""
    import json

    _, folder = gated_run
    model = folder / "run" / "model.onnx"
    activations, limit = _ram_limit_between(model)
    (tmp_path / "board.yaml").write_text(FLASH_PROFILE)
    budgets = tmp_path / "b.yaml"
    budgets.write_text(f"max_ram_kb: {limit}\n")
    args = ("check-budgets", model, "--budgets", budgets, "--runs", 3)
    result = run(*args)
    assert result.exit_code == 1 and "max_ram_kb" in result.output  # weights in RAM: missed
    result = run(*args, "--target", tmp_path / "board.yaml", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (row,) = report["budgets"]
    assert row["actual"] == activations and row["passed"]
    assert report["device"]["target"]["name"] == "flashboard"
    assert report["device"]["memory"]["compressed"]["weights_in_ram"] is False


def test_a_recipe_as_budgets_file_brings_its_target(gated_run, tmp_path, monkeypatch):
    """The same recipe gated by compress and by check-budgets: the same RAM, the same verdict.
    Its target path is read from the recipe's folder, as compress reads it; --target wins."""
    import json
    import shutil

    from conftest import FIXTURES, TINY_RECIPE

    _, folder = gated_run
    shutil.copy(FIXTURES / "tiny_models.py", tmp_path / "tiny_models.py")
    (tmp_path / "board.yaml").write_text(FLASH_PROFILE)
    activations, limit = _ram_limit_between(folder / "run" / "model.onnx")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(TINY_RECIPE + f"target: board.yaml\nbudgets: {{max_ram_kb: {limit}}}\n")
    compressed = run("compress", recipe, "-o", tmp_path / "run", "-q", "--json")
    assert compressed.exit_code == 0, compressed.output
    monkeypatch.chdir(folder)  # another working folder: the path is the recipe's
    gated = run("check-budgets", tmp_path / "run" / "model.onnx", "--budgets", recipe, "--runs", 3,
                "--json")
    assert gated.exit_code == 0, gated.output
    rows = [json.loads(r.stdout)["budgets"][0] for r in (compressed, gated)]
    assert rows[0]["actual"] == rows[1]["actual"] == activations and rows[1]["passed"]
    result = run("check-budgets", tmp_path / "run" / "model.onnx", "--budgets", recipe, "--runs", 3,
                 "--target", "host", "--json")  # weights in RAM on the host profile
    report = json.loads(result.stdout)
    assert report["device"]["target"]["name"] == "host"
    assert report["device"]["memory"]["compressed"]["weights_in_ram"] is True


def test_the_targets_budgets_are_added_where_the_file_sets_none(gated_run, tmp_path):
    import json

    _, folder = gated_run
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 1000\nmax_ram_kb: 900\n")
    result = run("check-budgets", folder / "run" / "model.onnx", "--budgets", budgets, "--runs", 3,
                 "--target", "mcu", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)["budgets"]}
    assert rows["max_flash_kb"]["limit"] == 1024 and rows["max_flash_kb"]["source"] == "target mcu"
    assert rows["max_ram_kb"]["limit"] == 900 and rows["max_ram_kb"]["source"] == "recipe"


def test_an_unknown_target_is_refused_before_any_work(gated_run, tmp_path):
    import xml.etree.ElementTree as ET

    _, folder = gated_run
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 1000\n")
    result = run("check-budgets", folder / "run" / "model.onnx", "--budgets", budgets,
                 "--target", "mcuu", "--junit", tmp_path / "j.xml")
    assert result.exit_code == 2, result.output
    assert "--target: Unknown target 'mcuu'" in result.output
    assert "Known targets: " in result.output and "mcu" in result.output.split("Known targets:")[1]
    assert "max_size_kb" not in result.output  # nothing was measured
    error = ET.fromstring((tmp_path / "j.xml").read_text()).find(".//error")
    assert "Unknown target 'mcuu'" in error.get("message")
    recipe = tmp_path / "r.yaml"  # a recipe's own target: the message names the file
    recipe.write_text("target: nowhere.yaml\nbudgets: {max_size_kb: 1000}\n")
    result = run("check-budgets", folder / "run" / "model.onnx", "--budgets", recipe)
    assert result.exit_code == 2 and f"{recipe}: target: Unknown target 'nowhere.yaml'" in result.output


def test_help_documents_target():
    result = run("check-budgets", "--help")
    assert "--target NAME|PATH" in result.output and "weights in RAM" in result.output


def test_docs_describe_every_option():
    """docs/cli.md is written by hand (no generator): an option added without its paragraph
    fails here."""
    from pathlib import Path

    from edgec.cli_models import check_budgets_command

    docs = (Path(__file__).parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    section = docs.split("## Gate an existing model: check-budgets")[1].split("\n## ")[0]
    options = [o for p in check_budgets_command.params for o in p.opts if o.startswith("--")]
    assert "--target" in options
    assert [o for o in options if f"`{o}" not in section] == []


def _rows(result) -> dict:
    import json

    return {r["name"]: r for r in json.loads(result.stdout)["budgets"]}


def test_a_budgets_file_is_judged_alike_with_and_without_against(gated_run, tmp_path):
    """A CI gate ran check-budgets without --against on main's first run (passed, accuracy and
    latency growth skipped) and with it on every pull request (exit 2: 'needs labelled data',
    then 'Pass --baseline'). Now accuracy is skipped with its reason and a missing --baseline is
    refused, both with and without --against."""
    import xml.etree.ElementTree as ET

    _, folder = gated_run
    model, base = folder / "run" / "model.onnx", folder / "run" / "baseline.onnx"
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 1000\nmax_size_growth: 0.05\nmax_accuracy_loss: 0.01\n"
                       "max_latency_growth: 0.5\n")
    against = ("--against", folder / "run")
    for extra in ((), against):  # no --baseline: refused alike, before any work
        result = run("check-budgets", model, "--budgets", budgets, *extra)
        assert result.exit_code == 2, result.output
        assert "max_latency_growth" in result.output and "--baseline" in result.output
        assert "labelled" not in result.output
    for extra in ((), against):
        result = run("check-budgets", model, "--budgets", budgets, "--baseline", base, "--runs", 5,
                     "--min-seconds", 0, *extra, "--json", "--junit", tmp_path / "j.xml")
        assert result.exit_code == 0, result.output
        row = _rows(result)["max_accuracy_loss"]
        assert (row["verdict"], row["passed"], row["actual"]) == ("skipped", True, None)
        assert "no labelled evaluation data" in row["note"]
        skipped = {c.get("name") for c in ET.parse(tmp_path / "j.xml").iter("testcase")
                   if c.find("skipped") is not None}
        assert "max_accuracy_loss" in skipped
    rows = _rows(result)  # with --against the other regression gates are decided
    assert rows["max_size_growth"]["verdict"] == "pass" and rows["max_latency_growth"]["actual"] is not None


def test_a_recipe_as_budgets_file_skips_its_accuracy_budgets(gated_run, write_recipe):
    """`--budgets recipe.yaml`, as documented, exited 2 for every shipped recipe: they all set
    max_accuracy_drop. It is skipped with the reason; a recipe with nothing else to check is
    refused, saying what to set."""
    import json

    from conftest import TINY_RECIPE

    _, folder = gated_run
    model = folder / "run" / "model.onnx"
    recipe = write_recipe(TINY_RECIPE + "budgets: {max_size_kb: 1000, max_accuracy_drop: 0.01}\n")
    result = run("check-budgets", model, "--budgets", recipe, "--runs", 3, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {r["name"]: r for r in report["budgets"]}
    assert rows["max_size_kb"]["passed"] and rows["max_accuracy_drop"]["verdict"] == "skipped"
    assert any("max_accuracy_drop" in f and "`edgec compress` gates" in f for f in report["findings"])
    result = run("check-budgets", model, "--budgets", recipe, "--runs", 3)
    assert "SKIPPED" in result.output and "labelled" in result.output
    only = write_recipe(TINY_RECIPE + "budgets: {max_accuracy_drop: 0.01}\n", name="acc.yaml")
    result = run("check-budgets", model, "--budgets", only)
    assert result.exit_code == 2 and "only accuracy budgets (max_accuracy_drop)" in result.output
    assert "max_size_kb: 200" in result.output


def test_a_recipe_without_budgets_says_so(gated_run, write_recipe):
    from conftest import TINY_RECIPE

    _, folder = gated_run
    model = folder / "run" / "model.onnx"
    recipe = write_recipe(TINY_RECIPE)
    result = run("check-budgets", model, "--budgets", recipe)
    assert result.exit_code == 2, result.output
    assert "this recipe has no budgets: section" in result.output
    assert "unknown key" not in result.output and "budgets.max_size_kb=200" in result.output
    result = run("check-budgets", model, "--budgets", recipe, "--fail-on-inconclusive")
    assert result.exit_code == 2 and "no budgets: section" in result.output  # a setting is no budget
    result = run("check-budgets", model, "--budgets", recipe, "--set", "budgets.max_size_kb=1000",
                 "--runs", 3)
    assert result.exit_code == 0, result.output
    empty = write_recipe(TINY_RECIPE + "budgets:\n", name="empty.yaml")
    result = run("check-budgets", model, "--budgets", empty)
    assert result.exit_code == 2 and "budgets: section is empty" in result.output


def test_an_empty_budgets_file_asks_for_a_budget_not_for_against(gated_run, tmp_path):
    _, folder = gated_run
    model = folder / "run" / "model.onnx"
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    result = run("check-budgets", model, "--budgets", empty, "--against", folder / "run")
    assert result.exit_code == 2, result.output
    assert "sets no budget" in result.output and "Set one, e.g. max_size_kb: 200" in result.output
    assert "Pass --against" not in result.output  # it was passed
    only = tmp_path / "growth.yaml"
    only.write_text("max_size_growth: 0.1\n")  # without --against: the hint names it
    result = run("check-budgets", model, "--budgets", only)
    assert result.exit_code == 2 and "Pass --against main-report.json" in result.output


def test_a_model_that_is_no_regular_file_is_not_said_to_be_missing(tmp_path):
    budgets = tmp_path / "b.yaml"
    budgets.write_text("max_size_kb: 1000\n")
    result = run("check-budgets", "/dev/null", "--budgets", budgets)
    assert result.exit_code == 2 and "'/dev/null' is not a regular file" in result.output
    assert "does not exist" not in result.output
    result = run("check-budgets", tmp_path / "none.onnx", "--budgets", budgets)
    assert result.exit_code == 2 and "does not exist" in result.output
