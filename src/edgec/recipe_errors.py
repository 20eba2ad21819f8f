"""Turn pydantic's validation errors into lines a person can act on.

``passes[1].amount (line 7): must be < 1, got 1.5`` instead of pydantic's internal locations,
with a did-you-mean for misspelt keys and choices.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Union

from pydantic import BaseModel

from edgec.config import MEMBER_TAGS

TAG_FIELDS = ("type", "source")  # discriminators of our tagged unions

_BOUNDS = {
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
}


def describe_validation_error(exc, raw: Any, root: type[BaseModel], lines: dict) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        path = _clean_loc(err["loc"], raw)
        where = _format_path(path)
        line = _line_of(path, lines)
        source = f"line {line}" if isinstance(line, int) else line  # or the override's text
        prefix = f"{where} ({source})" if where and line else (where or "recipe")
        problems.append(f"{prefix}: {_describe(err, path, raw, root)}")
    return problems


def _clean_loc(loc: tuple, raw: Any) -> list:
    """Drop the parts of pydantic's location that are not in the user's data (union tags)."""
    path, current = [], raw
    for i, part in enumerate(loc):
        if isinstance(current, dict):
            if part not in current and any(current.get(t) == part for t in TAG_FIELDS):
                continue  # the discriminated-union member name pydantic inserts
            if part not in current and i < len(loc) - 1 and part in MEMBER_TAGS:
                continue  # a callable discriminator's member tag, never a key
            path.append(part)
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int):
            path.append(part)
            current = current[part] if 0 <= part < len(current) else None
        elif current is None and not path:
            path.append(part)
        # otherwise: a scalar's union-member name ('bool', "literal['auto']"): not a key
    return path


def _format_path(path: list) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(path: list, lines: dict) -> int | str | None:
    for end in range(len(path), 0, -1):
        if tuple(path[:end]) in lines:
            return lines[tuple(path[:end])]
    return None


def _describe(err: dict, path: list, raw: Any, root: type[BaseModel]) -> str:
    kind, ctx, given = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, path[:-1], raw)
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1) if allowed else []
        hint = f"; did you mean '{close[0]}'?" if close else "."
        known = f" Allowed here: {', '.join(allowed)}." if allowed else ""
        return f"unknown key '{path[-1]}'{hint}{known}"
    if kind == "missing":
        return "required key is missing"
    if kind in _BOUNDS:
        symbol, key = _BOUNDS[kind]
        return f"must be {symbol} {ctx.get(key)}, got {given!r}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag, expected = ctx.get("discriminator", "'type'").strip("'"), ctx.get("expected_tags", "")
        if kind == "union_tag_not_found":
            return f"needs a '{tag}' key, one of: {expected}"
        choices = [t.strip(" '") for t in str(expected).split(",")]
        close = difflib.get_close_matches(str(ctx.get("tag")), choices, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "."
        return f"unknown {tag} '{ctx.get('tag')}'{hint} Known: {expected}"
    if kind == "literal_error":
        choices = [c.strip(" '") for c in str(ctx.get("expected", "")).replace(" or ", ",").split(",")]
        close = difflib.get_close_matches(str(given), choices, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "."
        return f"must be {ctx.get('expected')}, got {given!r}{hint}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    message = err["msg"].replace("Input should be", "must be")
    shown = f", got {given!r}" if isinstance(given, (str, int, float, bool)) else ""
    return f"{message[0].lower()}{message[1:]}{shown}"


def _allowed_keys(root: type[BaseModel], parent: list, raw: Any) -> list[str]:
    """Keys a mapping at ``parent`` may have, found by walking the model's annotations."""
    annotation: Any = root
    value = raw
    for part in parent:
        model = _model_for(annotation, value)
        if isinstance(part, int):
            annotation = _list_item(annotation)
        elif model is not None and part in model.model_fields:
            annotation = model.model_fields[part].annotation
        else:
            return []
        value = value[part] if isinstance(value, (dict, list)) else None
    model = _model_for(annotation, value)
    return list(model.model_fields) if model else []


def _model_for(annotation: Any, value: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _model_for(args[0], value)
    if origin in (Union, types.UnionType):
        models = [m for a in args if (m := _model_for(a, value))]
        for m in models:
            for tag in TAG_FIELDS:
                field = m.model_fields.get(tag)
                if field and isinstance(value, dict) and value.get(tag) in typing.get_args(field.annotation):
                    return m
        return models[0] if len(models) == 1 else None
    return None


def _list_item(annotation: Any) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _list_item(args[0])
    if origin in (Union, types.UnionType):
        for a in args:
            if typing.get_origin(a) is list:
                return typing.get_args(a)[0]
    return args[0] if origin is list and args else None
