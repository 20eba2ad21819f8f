"""The pass-family guides in docs/: every recipe snippet validates, numbers name their source, the
README links every guide — so the guides cannot rot silently when the schema changes."""

import re
from pathlib import Path

import pytest
import yaml

from edgec.recipe import validate_recipe

ROOT = Path(__file__).resolve().parents[1]
GUIDES = sorted((ROOT / "docs").glob("guide-*.md"))
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)


def test_there_is_a_guide_per_pass_family():
    assert {g.stem for g in GUIDES} >= {"guide-prune", "guide-quantize", "guide-distill", "guide-cluster"}


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.stem)
def test_every_recipe_snippet_validates(guide):
    blocks = YAML_BLOCK.findall(guide.read_text(encoding="utf-8"))
    assert blocks, f"{guide.name} has no ```yaml recipe snippet"
    for i, text in enumerate(blocks):
        validate_recipe(yaml.safe_load(text), source=f"{guide.name} snippet {i + 1}")


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.stem)
def test_guide_names_where_its_numbers_come_from(guide):
    text = guide.read_text(encoding="utf-8")
    assert "## Measured" in text and "## Pitfalls" in text and "REPLACE_" not in text
    scripts = set(re.findall(r"benchmarks/\w+\.py", text))
    assert scripts, f"{guide.name} cites no benchmarks/ script"
    assert all((ROOT / s).is_file() for s in scripts), scripts
    for link in re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]+)?\)", text):
        assert (guide.parent / link).is_file(), f"{guide.name} links to missing {link}"


def test_readme_links_every_guide():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for guide in GUIDES:
        assert f"(docs/{guide.name})" in readme, guide.name
