"""mode: fp16 — float16 weights and activations, with float32 at the graph's edges.

Half the file; rarely faster on a CPU: onnxruntime's CPU kernels mostly compute in float32
behind Cast nodes unless the CPU has native fp16 arithmetic (the note says which).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgec.cpu import cpu_flags

if TYPE_CHECKING:
    import onnx

    from edgec.passes.quantize import Quantize


def quantize_fp16(p: Quantize, model: onnx.ModelProto, dst: Path) -> None:
    """Convert ``model`` for the pass ``p`` (its config, exclusions, details and notes)."""
    import onnx
    from onnxruntime.transformers.float16 import (
        DEFAULT_OP_BLOCK_LIST,
        convert_float_to_float16,
    )

    from edgec.passes.quantize import FP16_SPEED

    cfg = p.config
    excluded = p._excluded_nodes(model)
    # keep_io_types inserts Casts at the graph's edges, so callers still feed and get float32
    half = convert_float_to_float16(
        model, keep_io_types=True, op_block_list=[*DEFAULT_OP_BLOCK_LIST, *cfg.exclude_ops],
        node_block_list=excluded or None,
    )
    _toposort(half.graph)  # the converter appends its input Casts last; onnx.checker refuses
    onnx.save(half, str(dst))
    p.details.update(format="float16", weight_type="float16", activation_type="float16",
                     io_type="float32", excluded_nodes=excluded)
    fast = cpu_flags() & {"avx512_fp16", "amx_fp16"}
    p.note(f"fp16 halves the file, but onnxruntime's CPU kernels mostly compute in float32 "
           f"behind Cast nodes: measured {FP16_SPEED} the fp32 speed here"
           + ("" if fast else "; this CPU has no native fp16 arithmetic either"))


def _toposort(graph: onnx.GraphProto) -> None:
    """Order nodes so every input is produced before it is read (stable otherwise)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for n in pending:  # one sweep in the original order takes every node it can
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):  # a cycle or a dangling input: keep the remainder as is
            ordered += rest
            break
        pending = rest
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered, strict=True):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)
