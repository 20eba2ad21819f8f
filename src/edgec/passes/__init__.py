"""Compression passes. Importing this package registers the built-in ones.

Adding a pass: write ``XConfig`` and an ``@register_pass`` class with ``apply`` in its own module,
import the module below. Tests parametrized over ``PASSES`` pick it up automatically.
"""

from edgec.passes import (  # noqa: F401  (registers)
    cluster,
    distill,
    finetune,
    partition,
    prune,
    qat,
    quantize,
)
from edgec.passes.base import OnnxPass, Pass, PassConfig, PassContext, PassRecord, TorchPass
from edgec.passes.registry import PASSES, get_pass, pass_config_union, register_pass

__all__ = [
    "PASSES",
    "OnnxPass",
    "Pass",
    "PassConfig",
    "PassContext",
    "PassRecord",
    "TorchPass",
    "get_pass",
    "pass_config_union",
    "register_pass",
]
