"""Human-readable field tables from the recipe's JSON Schema: `edgec passes` and docs/recipe.md.

Everything is read from the schema pydantic generates, so the reference can never drift from the
validation: a field's type, default, bounds and description are the ones the recipe enforces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_BOUNDS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"),
           ("minLength", "length >="), ("maxLength", "length <="), ("minItems", "items >="))


@dataclass(frozen=True)
class FieldDoc:
    name: str
    type: str
    default: str  # "required" when the field has no default
    description: str


def _ref_name(node: dict) -> str:
    return node["$ref"].rsplit("/", 1)[-1]


def section_ref(node: dict) -> str | None:
    """The $defs name of a nested section field, also when it is optional (`X | None`)."""
    if "$ref" in node:
        return _ref_name(node)
    refs = [n for n in node.get("anyOf", node.get("oneOf", [])) if "$ref" in n]
    return _ref_name(refs[0]) if len(refs) == 1 else None


def type_text(node: dict, defs: dict) -> str:
    """A compact type like `int (>= 1)`, `'static' | 'dynamic'`, `list[str]`, `PruneScheduleConfig`."""
    if "$ref" in node:
        return _ref_name(node)
    if "const" in node:
        return json.dumps(node["const"])
    if "enum" in node:
        return " | ".join(json.dumps(v) for v in node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            parts = [type_text(n, defs) for n in node[key]]
            return " | ".join(dict.fromkeys(parts))
    kind = node.get("type", "any")
    names = {"integer": "int", "number": "float", "string": "str", "boolean": "bool",
             "null": "null", "object": "mapping"}
    if kind == "array":
        if "prefixItems" in node:
            text = "[" + ", ".join(type_text(n, defs) for n in node["prefixItems"]) + "]"
        else:
            text = f"list[{type_text(node.get('items', {}), defs)}]"
    elif kind == "object" and isinstance(node.get("additionalProperties"), dict):
        text = f"mapping[str, {type_text(node['additionalProperties'], defs)}]"
    else:
        text = names.get(kind, str(kind))
    bounds = [f"{word} {node[key]:g}" if isinstance(node[key], float) else f"{word} {node[key]}"
              for key, word in _BOUNDS if key in node]
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _default_text(name: str, node: dict, required: set[str]) -> str:
    if "default" in node:
        return json.dumps(node["default"], ensure_ascii=False)
    if name in required:
        return "required"
    # built by a default_factory, which JSON Schema cannot show
    if "$ref" in node:
        return "(section defaults)"
    return {"array": "[]", "object": "{}"}.get(node.get("type"), "(see description)")


def fields_of(model_schema: dict, defs: dict | None = None, skip: tuple[str, ...] = (),
              expand: bool = True, prefix: str = "") -> list[FieldDoc]:
    """One FieldDoc per property of an object schema (pydantic's model_json_schema()).

    With ``expand``, a field holding a nested section (e.g. a pass's ``schedule``) is followed by
    that section's fields as ``schedule.steps`` rows.
    """
    defs = defs if defs is not None else model_schema.get("$defs", {})
    if "$ref" in model_schema:
        model_schema = defs[_ref_name(model_schema)]
    required = set(model_schema.get("required", []))
    out = []
    for name, node in model_schema.get("properties", {}).items():
        if name in skip:
            continue
        description = " ".join(node.get("description", "").split())
        out.append(FieldDoc(prefix + name, type_text(node, defs), _default_text(name, node, required),
                            description))
        ref = section_ref(node)
        nested = defs.get(ref) if ref else None
        if expand and nested is not None and "properties" in nested:
            out += fields_of(nested, defs, expand=True, prefix=f"{prefix}{name}.")
    return out


def variants(node: dict, defs: dict) -> list[tuple[str, str]]:
    """(tag, $defs name) for a discriminated union node (`model`, `data`, `passes.items`)."""
    mapping = node.get("discriminator", {}).get("mapping", {})
    return [(tag, ref.rsplit("/", 1)[-1]) for tag, ref in mapping.items()]


def markdown_table(fields: list[FieldDoc]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| field | type | default | description |", "|---|---|---|---|"]
    lines += [f"| `{f.name}` | {cell(f.type)} | {cell(f.default)} | {cell(f.description)} |"
              for f in fields]
    return lines


def docstring_line(obj: Any) -> str:
    """First paragraph of an object's docstring, on one line ('' if none)."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    # docstrings use reST ``code``; Markdown and the console read single backticks
    return " ".join(doc.split("\n\n")[0].split()).replace("``", "`")
