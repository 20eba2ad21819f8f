"""Files a recipe names are checked before any work (exit 2, no run folder)."""

from click.testing import CliRunner

from edgec.cli import cli
from edgec.errors import EXIT_USAGE

RECIPE = """\
version: 1
model:
  source: python
  callable: "nets/net.py:build"
  weights: weights/gone.pt
  input_shape: [1, 1, 8, 8]
data: {source: npz, path: d.npz, eval_path: data}
passes: []
"""


def test_every_missing_path_is_named_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(RECIPE)
    (tmp_path / "d.npz").write_bytes(b"")
    (tmp_path / "data").mkdir()
    for command in (["validate", "r.yaml"], ["compress", "r.yaml", "-o", "out"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == EXIT_USAGE, result.output
        assert "model.weights: 'weights/gone.pt' does not exist" in result.output
        assert "model.callable: 'nets/net.py' does not exist" in result.output
        assert "data.eval_path: 'data' is a folder, not a file" in result.output
        assert "data.path" not in result.output  # the one that is there
        assert "relative to the recipe's folder" in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_a_module_callable_is_not_a_file(tmp_path):
    from edgec.api import resolve_recipe

    recipe = {"version": 1, "model": {"source": "python", "callable": "torch.nn:Linear",
                                      "kwargs": {"in_features": 4, "out_features": 2},
                                      "input_shape": [1, 4]},
              "data": {"source": "synthetic"}}
    resolve_recipe(recipe)  # no file check for an importable module path


def test_sweep_variant_with_a_missing_file_is_refused_at_planning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.pt").write_bytes(b"")
    (tmp_path / "r.yaml").write_text(RECIPE.replace("weights/gone.pt", "a.pt")
                                     .replace("nets/net.py:build", "torch.nn:Identity")
                                     .replace("data: {source: npz, path: d.npz, eval_path: data}",
                                              "data: {source: synthetic}"))
    result = CliRunner().invoke(cli, ["sweep", "r.yaml", "--grid", "model.weights=a.pt,b.pt",
                                      "-o", "sw"])
    assert result.exit_code == EXIT_USAGE, result.output
    assert "variant 2 of 2 (model.weights=b.pt)" in result.output
    assert "model.weights: 'b.pt' does not exist" in result.output
    assert not (tmp_path / "sw").exists()
