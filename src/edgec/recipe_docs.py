"""docs/recipe.md: the reference of every recipe field, rendered from the recipe's JSON Schema.

Regenerate with `python scripts/gen_recipe_docs.py`; tests/test_recipe_docs.py fails when the
committed file differs from what the current schema renders (so a new field cannot go undocumented).
Plugins are left out: the reference describes edgec itself.
"""

from __future__ import annotations

HEADER = """\
# Recipe reference

<!-- Generated from the recipe schema by scripts/gen_recipe_docs.py. Do not edit by hand:
     change the field's description= in the code and regenerate. -->

A recipe is a YAML file validated before any work starts: unknown keys, wrong types and
out-of-range values are errors that name the key and its line. `edgec schema` prints the same
information as JSON Schema (for editor completion), `edgec passes` lists the passes, and
`edgec init` writes a commented starter recipe.
"""


def _union_sections(title: str, node: dict, defs: dict, tag: str, extra=None) -> list[str]:
    from edgec.schema_doc import fields_of, markdown_table, variants

    lines = []
    for value, def_name in variants(node, defs):
        definition = defs[def_name]
        lines += [f"### {title}: `{tag}: {value}`", ""]
        about = " ".join(definition.get("description", "").split())
        if extra:
            about = f"{extra(value)} {about}".strip()
        if about:
            lines += [about, ""]
        lines += [*markdown_table(fields_of(definition, defs, skip=(tag,))), ""]
    return lines


def render_recipe_docs() -> str:
    from edgec.passes import PASSES
    from edgec.recipe import recipe_schema
    from edgec.schema_doc import fields_of, markdown_table, section_ref

    schema = recipe_schema()
    defs, props = schema["$defs"], schema["properties"]
    lines = [HEADER, "## Top level", "", *markdown_table(fields_of(schema, defs, expand=False)), ""]
    lines += ["## `model`", "", " ".join(props["model"]["description"].split()), "",
              *_union_sections("model", props["model"], defs, "source")]
    lines += ["## `data`", "", " ".join(props["data"]["description"].split()), "",
              *_union_sections("data", props["data"], defs, "source")]

    def stage(name: str) -> str:
        cls = PASSES.get(name)
        return f"Stage: {cls.stage}." if cls else ""

    lines += ["## `passes`", "", " ".join(props["passes"]["description"].split()), "",
              *_union_sections("pass", props["passes"]["items"], defs, "type", extra=stage)]
    for section in ("export", "benchmark", "budgets", "output", "report"):
        node = props.get(section)
        if node is None:
            continue
        lines += [f"## `{section}`", "", " ".join(node.get("description", "").split()), "",
                  *markdown_table(fields_of(node, defs)), ""]
    documented = {"version", "model", "data", "passes", "export", "benchmark", "budgets", "output",
                  "report", "seed"}
    for section, node in props.items():  # sections added later still get a table
        ref = section_ref(node)
        if section not in documented and ref:
            lines += [f"## `{section}`", "", " ".join(node.get("description", "").split()), "",
                      *markdown_table(fields_of(defs[ref], defs)), ""]
    return "\n".join(lines).rstrip() + "\n"
