"""The one base class for every typed config section (recipe sections, specs, pass configs).

``extra="forbid"`` turns a misspelt key into an error (with a did-you-mean, see recipe_errors);
``frozen`` makes a validated recipe immutable; ``allow_inf_nan=False`` refuses NaN/inf numbers.
YAML 1.1 reads ``yes``/``on``/``true`` as booleans and pydantic's lax mode would turn them into
``1`` for an int field (``runs: yes`` ran once); a bool where a number belongs is refused instead.
"""

import types
import typing
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

# Tags of unions told apart by a function (distill's teacher/student). pydantic puts them in an
# error's location; recipe_errors drops them. With a space, so never a recipe key.
SPEC_TAG, WIDTH_TAG = "model spec", "width copy"
MEMBER_TAGS = (SPEC_TAG, WIDTH_TAG)


def _takes_bool(annotation) -> bool:
    if annotation is bool:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _takes_bool(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, typing.Literal):
        return any(a is bool or isinstance(a, bool) or _takes_bool(a) for a in typing.get_args(annotation))
    # containers (list[int], dict[...]) and Any: leave the type check to pydantic
    return annotation is typing.Any or origin is not None


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data):
        # a model validator, not a field one: pydantic forbids before-validators on the
        # discriminator fields (source, type) that a field validator on "*" would also cover
        if isinstance(data, dict):
            for key, value in data.items():
                field = cls.model_fields.get(key) if isinstance(key, str) else None
                if isinstance(value, bool) and field is not None and not _takes_bool(field.annotation):
                    raise ValueError(f"{key}: expected a number or text, got the boolean "
                                     f"{str(value).lower()} (YAML reads yes/no/on/off as booleans)")
        return data

    # fields holding a path relative to the recipe's folder: recipe_files.py checks they exist
    # before any work. ClassVars, so pydantic never reads them as recipe keys.
    FILE_FIELDS: ClassVar[tuple[str, ...]] = ()
    FOLDER_FIELDS: ClassVar[tuple[str, ...]] = ()

    def local_paths(self) -> list[tuple[str, str, str]]:
        """(key, path, "file" or "folder") for every local path this section names."""
        found = [(name, getattr(self, name), "file") for name in self.FILE_FIELDS]
        found += [(name, getattr(self, name), "folder") for name in self.FOLDER_FIELDS]
        return [(key, path, kind) for key, path, kind in found if isinstance(path, str) and path]
