"""docs/recipe.md is generated from the schema and must be current; it documents every field."""

import os
import subprocess
import sys
from pathlib import Path

from edgec.passes import PASSES
from edgec.recipe import Recipe
from edgec.recipe_docs import render_recipe_docs

ROOT = Path(__file__).resolve().parents[1]


def test_docs_recipe_md_is_up_to_date():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_recipe_docs.py"), "--check"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr + "\n(regenerate: python scripts/gen_recipe_docs.py)"


def test_reference_covers_every_section_source_and_pass():
    text = render_recipe_docs()
    for section in Recipe.model_fields:
        assert f"`{section}`" in text, section
    for name in PASSES:
        assert f"### pass: `type: {name}`" in text, name
    for source in ("zoo", "torchvision", "python", "checkpoint"):
        assert f"### model: `source: {source}`" in text
    for source in ("digits", "npz", "imagefolder", "synthetic"):
        assert f"### data: `source: {source}`" in text
    assert "| `max_accuracy_drop` |" in text and "| `profile.runs` |" in text
    assert "| `schedule.steps` |" in text  # nested pass sections are expanded
