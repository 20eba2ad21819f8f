"""The pass registry: the one place that maps a recipe's ``type:`` to a Pass class.

Registering a pass also registers its config in the recipe schema, so the two can never disagree.
"""

from __future__ import annotations

import difflib
import typing
from typing import Annotated, Union

from pydantic import Field

from edgec.passes.base import Pass

PASSES: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make ``cls`` available as ``type: cls.name`` in recipes."""
    tag = typing.get_args(cls.Config.model_fields["type"].annotation)
    if tag != (cls.name,):
        raise TypeError(f"{cls.__name__}.Config.type must be Literal['{cls.name}'], got {tag}")
    if cls.name in PASSES and PASSES[cls.name] is not cls:
        raise TypeError(f"pass '{cls.name}' is registered twice")
    PASSES[cls.name] = cls
    return cls


def get_pass(name: str) -> type[Pass]:
    try:
        return PASSES[name]
    except KeyError:
        close = difflib.get_close_matches(name, PASSES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise KeyError(f"unknown pass type '{name}'.{hint} Known: {', '.join(sorted(PASSES))}") from None


def pass_config_union():
    """The discriminated union of every registered pass config (for the recipe model)."""
    configs = tuple(cls.Config for cls in PASSES.values())
    if len(configs) == 1:
        return configs[0]
    return Annotated[Union[configs], Field(discriminator="type")]  # noqa: UP007
