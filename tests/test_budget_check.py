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
    budgets.write_text("max_size_kb: -1\n")  # the file's own mistake still names its line
    result = run("check-budgets", model, "--budgets", budgets, "--set", "max_params=3")
    assert result.exit_code == 2 and "max_size_kb (line 1): must be > 0" in result.output
