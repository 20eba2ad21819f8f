"""Start-up stays instant: `edgec --help` and `edgec validate` must not import heavy libraries."""

import subprocess
import sys

HEAVY = ("torch", "onnxruntime", "onnx", "torchvision", "sklearn", "torch_pruning", "matplotlib",
         "networkx")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_help_imports_no_heavy_library():
    loaded = _modules_after(
        "from click.testing import CliRunner\nfrom edgec.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\nassert r.exit_code == 0, r.output"
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_import_edgec_is_light_and_gives_the_api():
    """compress is re-exported for its real signature; the rest (exceptions, Report) load on
    first use, so `import edgec` does not pay for pydantic, the pass configs or the plugins."""
    loaded = _modules_after("import edgec, inspect\n"
                            "assert 'base_dir' in inspect.signature(edgec.compress).parameters")
    assert not loaded & {*HEAVY, "pydantic", "edgec.recipe", "edgec.plugins"}, loaded & {*HEAVY, "pydantic"}


def test_recipe_validation_imports_no_heavy_library():
    loaded = _modules_after(
        "from edgec.recipe import validate_recipe\n"
        "validate_recipe({'version': 1, 'model': {'source': 'zoo', 'name': 'digits_cnn', "
        "'input_shape': [1, 1, 8, 8]}, 'data': {'source': 'digits'}, "
        "'passes': [{'type': 'quantize'}]})"
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_torchvision_name_check_imports_no_heavy_library():
    """model.name is checked against torchvision's own files, not by importing it (2.4 s)."""
    loaded = _modules_after(
        "from edgec.recipe import validate_recipe\n"
        "validate_recipe({'version': 1, 'model': {'source': 'torchvision', 'name': "
        "'mobilenet_v3_small', 'input_shape': [1, 3, 32, 32]}})"
    )
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_help_lists_exit_codes():
    from click.testing import CliRunner

    from edgec.cli import cli

    result = CliRunner().invoke(cli, ["--help"])
    assert "Exit codes" in result.output and "budget was missed" in result.output
    for command in ("compress", "validate", "bench", "inspect", "schema"):
        assert command in result.output
