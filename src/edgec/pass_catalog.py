"""`edgec passes` and `edgec plugins`: what passes exist (built-in and plugin) and their fields.

Read from the registry and each config's JSON Schema, so the listing is exactly what a recipe
accepts. The common `type` field is left out (it is the pass name).
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PassDoc:
    name: str
    stage: str
    origin: str  # "built-in" or "plugin <package> <version>"
    description: str
    fields: list  # list[FieldDoc]

    def to_dict(self) -> dict:
        return {**asdict(self), "fields": [asdict(f) for f in self.fields]}


def describe_passes() -> list[PassDoc]:
    """Every registered pass (loading plugins first), built-ins first, then by name."""
    import edgec.recipe  # noqa: F401  (loads plugins, exactly as a recipe would see them)
    from edgec.passes import PASSES
    from edgec.plugins import pass_origin
    from edgec.schema_doc import docstring_line, fields_of

    docs = []
    for name, cls in PASSES.items():
        description = docstring_line(cls) or docstring_line(cls.Config) or docstring_line(
            sys.modules[cls.__module__])  # registered, so its module is already imported
        docs.append(PassDoc(name, cls.stage, pass_origin(name), description,
                            fields_of(cls.Config.model_json_schema(), skip=("type",))))
    return sorted(docs, key=lambda d: (d.origin != "built-in", d.name))


def print_passes(docs: list[PassDoc], file=None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from edgec.console import console as make_console

    console = make_console(file, soft_wrap=False)
    for doc in docs:
        # escaped: rich reads "[str, float]" in a type or "[min, max]" in a description as markup
        # and drops it; a plugin's text could even be "[/x]", which rich refuses to print at all
        table = Table(title=f"[bold]{escape(doc.name)}[/]  ({doc.stage} stage, {escape(doc.origin)})"
                      f"  {escape(doc.description)}", title_justify="left", show_lines=False)
        for col, ratio in (("field", 1), ("type", 2), ("default", 1), ("description", 5)):
            table.add_column(col, ratio=ratio, overflow="fold")
        for f in doc.fields:
            table.add_row(*map(escape, (f.name, f.type, f.default, f.description)))
        console.print(table)
    console.print(f"{len(docs)} passes. Use one in a recipe as `- {{type: NAME, field: value}}`; "
                  "`edgec plugins` shows what installed plugins add.")


def print_plugins(file=None) -> int:
    """List installed plugins, a broken one with its error; returns how many loaded. Raises
    PluginError after the table when one is broken: the diagnostic lists what the other commands
    refuse to run with."""
    from rich.markup import escape
    from rich.table import Table

    from edgec.console import console as make_console
    from edgec.plugins import BROKEN, DISABLE_ENV, LOADED, PluginError, broken_plugins_error, load_plugins

    with contextlib.suppress(PluginError):  # each broken plugin gets its row, then the command fails
        load_plugins()
    console = make_console(file)
    if not LOADED and not BROKEN:
        console.print("No edgec plugins installed (entry point groups edgec.passes, edgec.models, "
                      f"edgec.targets), or {DISABLE_ENV}=1 is set. See examples/plugin/.")
        return 0
    table = Table(title="edgec plugins", title_justify="left")
    for col in ("group", "entry point", "package", "provides"):
        table.add_column(col, overflow="fold")  # a cut entry point or error helps no one
    rows = [(i, ", ".join(i.provides)) for i in LOADED] + [(b, None) for b in BROKEN]
    for info, provides in sorted(rows, key=lambda r: (r[0].group, r[0].name)):
        table.add_row(*map(escape, (info.group, f"{info.name} = {info.value}",  # "mod:obj [extra]"
                                    f"{info.distribution} {info.version}")),
                      escape(provides) if provides is not None
                      else f"[bold red]cannot load:[/] {escape(info.reason)}")
    console.print(table)
    error = broken_plugins_error()
    if error is not None:
        raise error
    return len(LOADED)
