"""mode: int4_weight — 4-bit block-wise weights for MatMul/Linear layers (onnxruntime MatMulNBits).

Weight-only: activations stay float, each block of ``block_size`` weights along the reduction axis
gets its own scale (and zero point unless symmetric), packed two weights per byte. onnxruntime's
``MatMulNBitsQuantizer`` converts MatMul nodes with constant weights; torch exports a 2-D
``nn.Linear`` as Gemm, so those are first rewritten as MatMul (+ Add for the bias) with the
weight transposed once — exact, and the node keeps its name so exclude_nodes still applies.
Convolutions are left in float: MatMulNBits has no convolution counterpart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import PassError

if TYPE_CHECKING:
    import onnx

    from edgec.passes.quantize import Quantize


def quantize_int4_weights(p: Quantize, src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    cfg = p.config
    model = onnx.load(str(src))
    excluded = p._excluded_nodes(model)
    bypass_weight_identities(model)
    rewritten = gemms_to_matmuls(model)
    quantizer = MatMulNBitsQuantizer(
        model, bits=4, block_size=cfg.block_size, is_symmetric=cfg.symmetric,
        nodes_to_exclude=excluded, quant_format=QuantFormat.QOperator, op_types_to_quantize=("MatMul",),
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)
    out = onnx.load(str(dst))
    packed = [n.name for n in out.graph.node if n.op_type == "MatMulNBits"]
    if not packed:
        raise PassError(
            "mode: int4_weight found no MatMul/Linear layer with a constant weight to pack into "
            "4 bits (convolutions are not supported by MatMulNBits). Use mode: static for conv "
            "nets, or check exclude_nodes/exclude_ops."
        )
    convs = sum(n.op_type in ("Conv", "ConvTranspose") for n in out.graph.node)
    p.details.update(format="MatMulNBits", weight_type="int4", activation_type="float32",
                     block_size=cfg.block_size, symmetric=cfg.symmetric, int4_layers=len(packed),
                     gemms_rewritten=rewritten, excluded_nodes=excluded)
    if convs:
        p.note(f"int4_weight packs MatMul/Linear weights only: {convs} convolution(s) stay float32")
    p.note(f"{len(packed)} MatMul/Linear layer(s) with 4-bit weights (blocks of {cfg.block_size}, "
           f"{'symmetric' if cfg.symmetric else 'asymmetric'}); activations stay float, so the "
           "gain is size and memory bandwidth, not int8 arithmetic")


def bypass_weight_identities(model: onnx.ModelProto) -> None:
    """Read weights directly where the exporter routed them through Identity (it does so for
    layers whose initial weights are equal, e.g. deep-copied transformer layers): the quantizer
    only packs MatMuls whose weight is an initializer."""
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    alias = {n.output[0]: n.input[0] for n in graph.node
             if n.op_type == "Identity" and n.input[0] in inits}
    outputs = {o.name for o in graph.output}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
    keep = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in alias
                                          and n.output[0] not in outputs)]
    del graph.node[:]
    graph.node.extend(keep)


def gemms_to_matmuls(model: onnx.ModelProto) -> int:
    """Rewrite Gemm(A, W[, b]) with a constant W, alpha = beta = 1 and no transA as MatMul (+Add).
    Returns how many were rewritten."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    nodes, count = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ok = (node.op_type == "Gemm" and len(node.input) >= 2 and node.input[1] in inits
              and not attrs.get("transA", 0) and attrs.get("alpha", 1.0) == 1.0
              and attrs.get("beta", 1.0) == 1.0)
        if not ok:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            w = w.T.copy()
        w_name = f"{node.input[1]}_KxN"
        graph.initializer.append(numpy_helper.from_array(w, w_name))
        has_bias = len(node.input) > 2 and node.input[2]
        mm_out = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], w_name], [mm_out], name=node.name))
        if has_bias:
            nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]],
                                          name=f"{node.name}_bias"))
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return count
