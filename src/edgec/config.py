"""The one base class for every typed config section (recipe sections, specs, pass configs).

``extra="forbid"`` turns a misspelt key into an error (with a did-you-mean, see recipe_errors);
``frozen`` makes a validated recipe immutable; ``allow_inf_nan=False`` refuses NaN/inf numbers.
"""

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
