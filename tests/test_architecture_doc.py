"""docs/architecture.md is the maintainers' map: it must name every module, so it cannot go stale."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_architecture_doc_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = sorted(p.stem for p in (ROOT / "src" / "edgec").rglob("*.py") if p.stem != "__init__")
    missing = [m for m in modules if f"`{m}`" not in text]
    assert not missing, f"docs/architecture.md does not name: {', '.join(missing)}"
