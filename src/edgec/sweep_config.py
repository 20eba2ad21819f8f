"""What a sweep varies: the recipe's `sweep:` section and `--grid` options, expanded to variants.

A variant is a list of `--set` overrides applied to the same recipe, so each one is validated and
run exactly like `edgec compress recipe.yaml --set ...` would be.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Literal

from pydantic import Field

from edgec.config import ConfigModel
from edgec.errors import RecipeError

AxisName = Literal["size_kb", "size_gzip_kb", "params", "macs", "latency_ms", "speedup", "accuracy",
                   "size", "latency"]


class SweepConfig(ConfigModel):
    """Variants of this recipe for `edgec sweep` (ignored by `edgec compress`)."""

    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="Dotted recipe path → values, e.g. "
        "{'passes.0.amount': [0.3, 0.5]}. A `--grid` option adds a path, or replaces this "
        "path's values."
    )
    mode: Literal["product", "zip"] = Field(
        "product", description="'product': every combination; 'zip': the i-th value of every "
        "path together (all lists must have the same length)."
    )
    axes: list[AxisName] = Field(
        default_factory=lambda: ["size_kb", "speedup", "accuracy"], min_length=1,
        description="Axes of the Pareto front (size_kb, size_gzip_kb, params, macs and latency_ms "
        "are minimized; speedup and accuracy maximized). The first one picks the best variant."
    )
    jobs: int = Field(1, ge=1, le=256, description="Variants run in parallel (`--jobs` wins).")


def parse_grid_option(item: str) -> tuple[str, list[Any]]:
    """'passes.0.mode=static,dynamic' → ('passes.0.mode', ['static', 'dynamic']) (YAML values).
    Commas inside brackets or quotes belong to the value: 'exclude_ops=[Conv,Gemm],[]' is two."""
    import yaml

    key, sep, values = item.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise RecipeError(f"--grid '{item}': expected dotted.path=value1,value2,… e.g. "
                          "--grid passes.0.amount=0.3,0.5,0.7.")
    out = []
    for text in _split_values(values, item):
        if not text.strip():
            raise RecipeError(f"--grid '{item}': an empty value (two commas in a row, or a comma "
                              "at the end).", hint="Write null for a YAML null, '' for an empty string.")
        try:
            out.append(yaml.safe_load(text))
        except yaml.YAMLError:
            out.append(text)
    return key, out


def _split_values(text: str, item: str) -> list[str]:
    """Split on the commas that are outside brackets, braces and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth or quote:
        raise RecipeError(f"--grid '{item}': unbalanced brackets or quotes.",
                          hint="e.g. --grid passes.0.exclude_ops=[Conv,Gemm],[]")
    return [*parts, text[start:]]


def expand(grid: dict[str, list[Any]], mode: str) -> list[dict[str, Any]]:
    """Every variant as {path: value}, in a stable order (first path varies slowest)."""
    if not grid:
        raise RecipeError("The sweep has nothing to vary.", hint="Add --grid path=v1,v2 or a "
                          "sweep: {grid: {path: [v1, v2]}} section to the recipe.")
    for path, values in grid.items():
        if not values:
            raise RecipeError(f"sweep grid '{path}' has no values.")
    paths = list(grid)
    if mode == "zip":
        lengths = {p: len(v) for p, v in grid.items()}
        if len(set(lengths.values())) != 1:
            raise RecipeError(f"sweep mode 'zip' needs lists of one length; got {lengths}.",
                              hint="Use mode 'product', or give every path as many values.")
        combos = list(zip(*grid.values(), strict=True))
    else:
        combos = list(itertools.product(*grid.values()))
    _refuse_repeats(grid, combos, mode)
    return [dict(zip(paths, combo, strict=True)) for combo in combos]


def _refuse_repeats(grid: dict[str, list[Any]], combos: list[tuple], mode: str) -> None:
    """Two identical variants would run the same work twice and share one name in the tables.
    Compared as JSON, as --set passes them: 1 and true differ, 1 and 1.0 are the same number."""
    seen: dict[str, int] = {}
    for i, combo in enumerate(combos):
        key = json.dumps([_number(v) for v in combo])
        if key in seen:
            repeated = next((f"'{p}' lists {json.dumps(r)} twice" for p, vs in grid.items()
                             if (r := _repeat(vs)) is not _NONE), None) if mode != "zip" else None
            raise RecipeError(
                f"The sweep has identical variants ({_point(grid, combo)}, numbers {seen[key] + 1} "
                f"and {i + 1})" + (f": grid path {repeated}." if repeated else "."),
                hint="Give each value once.")
        seen[key] = i


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


_NONE = object()


def _repeat(values: list[Any]) -> Any:
    """The first value a list gives twice, else _NONE (None may be a value)."""
    seen = set()
    for v in values:
        key = json.dumps(_number(v))
        if key in seen:
            return v
        seen.add(key)
    return _NONE


def _point(grid: dict[str, list[Any]], combo: tuple) -> str:
    return ", ".join(f"{p}={json.dumps(v)}" for p, v in zip(grid, combo, strict=True))


def grid_text(value: Any) -> str:
    """A grid value as --grid takes it back, for people: JSON for lists, mappings, booleans and
    null (``{"type": "quantize"}`` and ``true``, not Python's ``{'type': 'quantize'}`` and
    ``True``), a string bare unless YAML would read it as something else (``"0.5"``, ``"a,b"``)."""
    if isinstance(value, str) and value and "," not in value and value.strip() == value:
        import yaml

        try:
            if yaml.safe_load(value) == value:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value)


def as_overrides(variant: dict[str, Any]) -> list[str]:
    """{path: value} → ['path=<value as JSON>'] (JSON is YAML, so --set parses it back exactly)."""
    return [f"{path}={json.dumps(value)}" for path, value in variant.items()]
