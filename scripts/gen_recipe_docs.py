"""Write docs/recipe.md from the recipe schema (or, with --check, fail if it is out of date).

    python scripts/gen_recipe_docs.py            # regenerate
    python scripts/gen_recipe_docs.py --check    # exit 1 if docs/recipe.md differs
"""

import os
import sys
from pathlib import Path

os.environ["EDGEC_NO_PLUGINS"] = "1"  # the reference documents edgec itself, not local plugins
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from edgec.recipe_docs import render_recipe_docs

TARGET = Path(__file__).resolve().parents[1] / "docs" / "recipe.md"


def main() -> int:
    text = render_recipe_docs()
    if "--check" in sys.argv[1:]:
        current = TARGET.read_text(encoding="utf-8") if TARGET.is_file() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python scripts/gen_recipe_docs.py", file=sys.stderr)
            return 1
        print(f"{TARGET} is up to date")
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
