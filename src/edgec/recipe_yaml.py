"""Recipe text → plain data, safely, keeping line numbers; and `--set` overrides.

Only ``yaml.SafeLoader`` is used: a recipe can never construct Python objects. Alias expansion is
bounded, so a "billion laughs" recipe is refused instead of exhausting memory in validation.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from edgec.errors import RecipeError
from edgec.errors import option as spelled

# Far above any real recipe (a few hundred nodes), far below what hurts.
MAX_EXPANDED_NODES = 100_000
MAX_DEPTH = 64  # real recipes nest 4-5 levels; deeper only exhausts recursion in later stages

Lines = dict[tuple, int]


def parse_yaml(text: str, source: str) -> tuple[Any, Lines]:
    """Parse recipe text; returns (data, {key path: 1-based line})."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise RecipeError(f"{source}: the YAML is nested too deeply to read (brackets inside "
                          f"brackets); a recipe nests a few levels, at most {MAX_DEPTH}.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError(
            f"{source}: not valid YAML{where}: {problem}. Check indentation and that "
            "values containing ':' or '#' are quoted."
        ) from None
    if node is None:
        return None, {}
    lines: Lines = {}
    _index_lines(node, (), lines, [0], source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # e.g. a duplicate merge key that compose accepted
        raise RecipeError(f"{source}: not valid YAML: {exc}") from None
    return data, lines


def _index_lines(node, path: tuple, lines: Lines, count: list[int], source: str) -> None:
    import yaml

    count[0] += 1
    if len(path) > MAX_DEPTH:
        raise RecipeError(f"{source}: the recipe nests more than {MAX_DEPTH} levels deep (at line "
                          f"{node.start_mark.line + 1}); a recipe nests a few levels.")
    if count[0] > MAX_EXPANDED_NODES:
        raise RecipeError(
            f"{source}: the recipe expands to more than {MAX_EXPANDED_NODES:,} values through "
            "YAML aliases (&anchor / *alias); this looks like an alias bomb. Write it out plainly."
        )
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":  # PyYAML keeps the last silently: a typo would hide
                where = ".".join(str(p) for p in (*path, key))
                raise RecipeError(
                    f"{source}: duplicate key '{where}' at line {line} (first at line "
                    f"{seen[key]}); YAML would silently keep only the last. Remove one of them."
                )
            seen[key] = line
            lines.setdefault((*path, key), line)
            _index_lines(value_node, (*path, key), lines, count, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, i), lines, count, source)


def parse_override(item: str, shown: str | None = None, example: str | None = None,
                   option: str | None = None) -> tuple[list[str | int], Any]:
    """'passes.0.amount=0.5' → (['passes', 0, 'amount'], 0.5). Values are parsed as YAML.
    For messages: ``shown``, the override as the user typed it; ``example``, a right one;
    ``option``, where it came from (a sweep's grid values are not --set options). Both default
    to how the caller spells overrides: --set on the command line, overrides= in Python."""
    import yaml

    option = option or spelled("set")
    example = example or spelled("set_example")
    key, sep, value_text = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise RecipeError(
            f"{option} '{shown or item}': expected dotted.path=value, e.g. {example}."
        )
    try:
        value = copy.deepcopy(_parse_value(value_text)) if value_text.strip() else ""
    except RecursionError:
        raise RecipeError(f"{option} '{(shown or item).partition('=')[0]}=…': the value is nested "
                          "too deeply to read.") from None
    except yaml.YAMLError:
        value = value_text  # not YAML: take it as a plain string
    path: list[str | int] = [int(p) if p.lstrip("-").isdigit() else p for p in key.split(".")]
    return path, value


@functools.lru_cache(maxsize=1024)
def _parse_value(text: str) -> Any:
    """A sweep sets the same few values in every variant; each parse took 2-3 ms (the callers
    copy the result, which is shared)."""
    import yaml

    return yaml.safe_load(text)


def apply_overrides(raw: Any, overrides, shown=None, example: str | None = None,
                    options=None) -> Any:
    """Return a copy of ``raw`` with each `--set` applied (validated later with the rest).
    ``shown[i]`` is ``overrides[i]`` as the user typed it, for messages (check-budgets strips a
    'budgets.' prefix before applying); ``example``: a right override, for a malformed one;
    ``options[i]``: the option that gave ``overrides[i]`` (--set, or overrides= in Python, unless
    told)."""
    _check_override_list(overrides)
    if not overrides:
        return raw
    data = copy.deepcopy(raw) if raw is not None else {}
    if not isinstance(data, dict):
        return data  # validate_recipe reports the wrong top-level type
    for item, name, option in zip(overrides, shown or overrides,
                                  options or [spelled("set")] * len(overrides), strict=True):
        path, value = parse_override(item, name, example, option)
        _set_path(data, path, value, f"{option} '{name}'")
    return data


def _check_override_list(overrides) -> None:
    """The Python API's ``overrides=`` is a list of strings; a bare string would be read one
    character at a time, and a dict or tuples failed deep inside with an AttributeError."""
    if overrides is None or (isinstance(overrides, (list, tuple))
                             and all(isinstance(o, str) for o in overrides)):
        return
    from edgec.errors import UsageError

    got = (f"the string {overrides!r}" if isinstance(overrides, str) else
           f"a {type(overrides).__name__}" if not isinstance(overrides, (list, tuple)) else
           "a list holding " + ", ".join(sorted({type(o).__name__ for o in overrides
                                                if not isinstance(o, str)})))
    raise UsageError(f"overrides must be a list of 'dotted.path=value' strings (what --set takes), "
                     f"not {got}.", hint="Pass e.g. overrides=['passes.0.amount=0.5', 'seed=1'].")


def lines_with_overrides(lines: Lines, overrides, shown=None) -> dict[tuple, int | str]:
    """Where each value comes from: its line in the file, or the override that replaced it, so an
    error in an overridden value names the override, not the line of the value it replaced.
    ``shown[i]`` names ``overrides[i]`` as the user typed it (default: the override itself)."""
    if not overrides:
        return lines
    out: dict[tuple, int | str] = dict(lines)
    for item, name in zip(overrides, shown or overrides, strict=True):
        path, _ = parse_override(item)
        key = tuple(path)
        for old in [p for p in out if p[: len(key)] == key]:
            del out[old]
        out[key] = f"set by {name.strip()}"
        for end in range(1, len(key)):  # keys the override created (--set foo.bar=1 makes foo)
            out.setdefault(key[:end], f"set by {name.strip()}")
    return out


@functools.lru_cache(maxsize=8)
def peek_recipe(path: str, overrides: tuple[str, ...] = ()) -> dict | None:
    """The recipe file's raw mapping with ``overrides`` applied, unvalidated, in milliseconds; None
    if it cannot be read or parsed. Only for guesses made before planning validates the recipe
    (a sweep starting its workers early); cached, so those guesses read the file once. Read-only:
    callers share the result."""
    import yaml

    try:
        raw = apply_overrides(yaml.safe_load(Path(path).read_text(encoding="utf-8")), overrides)
    except Exception:  # any problem: planning reports it properly a moment later
        return None
    return raw if isinstance(raw, dict) else None


def _set_path(data: Any, path: list, value: Any, named: str) -> None:
    """``named``: the override as messages name it, e.g. "--set 'passes.0.mode=static'"."""
    target = data
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(str(p) for p in path[: depth + 1])
        if isinstance(target, list):
            if not isinstance(part, int) or not -len(target) <= part < len(target):
                raise RecipeError(
                    f"{named}: '{where}' is not an index of a list with {len(target)} "
                    f"item(s); use 0..{len(target) - 1}."
                )
        elif isinstance(target, dict):
            part = str(part)
            if not last and part not in target:
                if isinstance(path[depth + 1], int):  # an index into a list the recipe lacks
                    raise RecipeError(
                        f"{named}: '{where}' is not in the recipe, so it has no item "
                        f"{path[depth + 1]}; add the list to the recipe first."
                    )
                target[part] = {}  # creating a section is fine; validation checks its keys
        else:
            parent = ".".join(str(p) for p in path[:depth]) or "(top level)"
            kind = type(target).__name__
            raise RecipeError(
                f"{named}: '{parent}' is {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not a "
                f"section, so it has no '{part}'."
            )
        if last:
            target[part] = value
        else:
            target = target[part]
