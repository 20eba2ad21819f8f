"""`edgec doctor model.onnx`: why is this (int8) model slow here, and what recipe change fixes it.

Reads the graph (and, with ``runs > 0``, profiles it with onnxruntime on this host) and reports,
each with its measured or documented cost and the fix:

- the CPU's int8/fp16 instruction sets (AVX2 / AVX-512 / VNNI / AMX / NEON dot-product);
- the quantized format: QDQ vs QOperator, S8S8 (signed activations) vs U8S8;
- the share of compute (MACs) that runs in int8, int4-weight or float;
- DequantizeLinear→QuantizeLinear pairs and Q/DQ nodes onnxruntime left unfused (float
  requantization between int8 kernels), measured with the profiler;
- ConvInteger from dynamic quantization of convolutions;
- fp16 weights on a CPU without fast fp16 arithmetic;
- full-range int8 weights on x86 without VNNI (int16 saturation).
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.cpu import cpu_flags, has_vnni, is_x86

if TYPE_CHECKING:
    import onnx

QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
QOPERATOR_OPS = {"QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul",
                 "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSigmoid"}
INT8_WEIGHTS = {"int8", "uint8"}
# why int8 gains little without VNNI; report.py's "slower" finding gives the same reason
NO_VNNI = ("This x86 CPU has no VNNI: int8 products are summed in pairs into int16 (vpmaddubsw), "
           "slower than VNNI and saturating with full-range weights.")


@dataclass
class Finding:
    code: str  # stable id, e.g. "s8s8", for scripts and tests
    message: str
    cost: str  # measured here, or documented (with where it was measured)
    fix: str


@dataclass
class Diagnosis:
    path: str
    cpu: dict
    format: str  # "float" | "qdq" | "qoperator" | "dynamic" | "int4_weight" | "fp16" | mixes
    mac_share: dict[str, float]  # compute class → share of MACs
    findings: list[Finding] = field(default_factory=list)
    profile: dict | None = None  # op type → µs per inference in the optimized graph
    # checks that did not run, and why: "no problem found" must not cover what was never looked at
    not_checked: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def diagnose(path: Path, input_shape: tuple[int, ...] | None = None, runs: int = 20,
             flags: frozenset[str] | None = None) -> Diagnosis:
    """Inspect (and with runs > 0, profile) the ONNX model at ``path`` on this host."""
    from edgec.graph_stats import analyze_onnx, load_onnx
    from edgec.passes.quantize import DYNAMIC_CONV_SPEED, FP16_SPEED, S8S8_QDQ_SPEED, U8S8_QDQ_SPEED

    flags = cpu_flags() if flags is None else flags
    model = load_onnx(path)
    stats = analyze_onnx(path, input_shape)
    ops = Counter(n.op_type for n in model.graph.node)
    cpu = {"x86": is_x86(), "vnni": has_vnni(flags), "avx2": "avx2" in flags,
           "avx512": "avx512f" in flags, "amx": bool(flags & {"amx_int8", "amx_tile"}),
           "neon_dot": "asimddp" in flags,
           "fast_fp16": bool(flags & {"avx512_fp16", "amx_fp16", "asimdhp"})}
    d = Diagnosis(str(path), cpu, _format(model, ops), _mac_share(stats), [])
    quantized = d.format not in ("float", "fp16")
    int8 = any(k in d.format for k in ("qdq", "qoperator", "dynamic"))
    add = d.findings.append
    if int8 and cpu["x86"] and not cpu["vnni"]:
        add(Finding("no_vnni", NO_VNNI,
                    "documented: onnxruntime MLAS u8s8 path; int8 gains are smaller than on VNNI "
                    "CPUs and small convolutions can be slower than fp32",
                    "quantize: {mode: auto} keeps float where int8 does not pay on this CPU"))
        wide = _full_range_weights(model)
        if wide:
            add(Finding("saturation", f"{wide} int8 weight tensor(s) use the full 8-bit range: "
                        "on a CPU without VNNI their int16 sums can saturate.",
                        "accuracy, not speed: measured 0.7 vs 0.013 max logit error on a QAT "
                        "digits CNN here", "quantize/qat: reduce_range: auto (7-bit weights)"))
    if _signed_activations(model):
        add(Finding("s8s8", "Activations are quantized to int8 (S8S8); x86 onnxruntime kernels "
                    "are fastest with uint8 activations (U8S8).",
                    f"measured (benchmarks/quant_settings.py, ResNet-20): S8S8 QDQ {S8S8_QDQ_SPEED} "
                    f"vs U8S8 {U8S8_QDQ_SPEED} the fp32 speed",
                    "quantize: {activation_type: uint8}"))
    if ops["ConvInteger"]:
        add(Finding("convinteger", f"{ops['ConvInteger']} ConvInteger node(s) from dynamic "
                    "quantization of convolutions: onnxruntime has no fast kernel for them.",
                    f"measured: {DYNAMIC_CONV_SPEED} the fp32 speed (6–7× slower)",
                    "quantize: {mode: static} for conv nets (or dynamic with exclude_ops: [Conv])"))
    fp16 = any(t.data_type == 10 for t in model.graph.initializer)
    if fp16 and not cpu["fast_fp16"]:
        add(Finding("fp16_cpu", "fp16 weights on a CPU without native fp16 arithmetic: kernels "
                    "compute in float32 behind Cast nodes.",
                    f"measured: {FP16_SPEED} the fp32 speed (half the file, no speed-up)",
                    "keep fp32, or quantize: {mode: static} for speed"))
    pairs = _dq_q_pairs(model)
    if pairs:
        add(Finding("dq_q_chain", f"{pairs} DequantizeLinear→QuantizeLinear pair(s): tensors are "
                    "dequantized and requantized in float between int8 ops.",
                    "each costs a float pass over the tensor", "use one scale per tensor "
                    "(quantize with edgec's static pass, which places one Q/DQ per tensor)"))
    if quantized and d.mac_share.get("float", 0) > 0.2:
        add(Finding("float_share", f"{d.mac_share['float']:.0%} of the MACs run in float.",
                    "those layers get no int8 speed-up",
                    "check exclude_ops/exclude_nodes, or whether auto/max_accuracy_drop kept them "
                    "float on purpose (see report.md)"))
    if runs <= 0 and quantized:
        d.not_checked.append(
            "unfused_qdq: Quantize/DequantizeLinear nodes onnxruntime leaves unfused (format "
            "conversions between int8 kernels) are found by profiling, and --runs 0 profiles "
            "nothing: run with --runs 1 or more (default 20)")
    if runs > 0 and quantized:
        from edgec.model_input import check_runnable_input

        check_runnable_input(model, Path(path))  # profiling feeds it one random float tensor
        _profile_findings(d, path, tuple(stats.input_shape), runs)
    return d


def _format(model: onnx.ModelProto, ops: Counter) -> str:
    kinds = []
    if ops["MatMulNBits"]:
        kinds.append("int4_weight")
    if ops["ConvInteger"] or ops["MatMulInteger"] or ops["DynamicQuantizeLinear"]:
        kinds.append("dynamic")
    if set(ops) & QOPERATOR_OPS:
        kinds.append("qoperator")
    if ops["QuantizeLinear"] or ops["DequantizeLinear"]:
        kinds.append("qdq")
    if not kinds and any(t.data_type == 10 for t in model.graph.initializer):
        kinds.append("fp16")
    return "+".join(kinds) or "float"


def _mac_share(stats) -> dict[str, float]:
    total = sum(layer.macs for layer in stats.layers) or 1
    share: Counter = Counter()
    for layer in stats.layers:
        kind = ("int8" if layer.weight_dtype in INT8_WEIGHTS or layer.op_type.startswith("QLinear")
                or layer.op_type in ("QGemm", "ConvInteger", "MatMulInteger")
                else "int4_weight" if layer.weight_dtype == "int4" else "float")
        share[kind] += layer.macs / total
    return {k: round(v, 4) for k, v in share.items()}


def _signed_activations(model: onnx.ModelProto) -> bool:
    """A QuantizeLinear of an activation (not an initializer) with an int8 zero point."""
    inits = {t.name: t for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] not in inits and len(n.input) > 2:
            zp = inits.get(n.input[2])
            if zp is not None and zp.data_type == 3:  # TensorProto.INT8
                return True
    return False


def _full_range_weights(model: onnx.ModelProto) -> int:
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    count = 0
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            t = inits[n.input[0]]
            if t.data_type == 3 and abs(numpy_helper.to_array(t).astype(int)).max() > 64:
                count += 1
    return count


def _dq_q_pairs(model: onnx.ModelProto) -> int:
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    return sum(1 for n in model.graph.node
               if n.op_type == "QuantizeLinear" and producers.get(n.input[0]) == "DequantizeLinear")


def _profile_findings(d: Diagnosis, path: Path, shape: tuple[int, ...], runs: int) -> None:
    """What onnxruntime actually runs after its fusions, and where the time goes, at ``shape``
    (checked against the model by analyze_onnx)."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from edgec.benchmark import _feed
    from edgec.latency import run_session

    with tempfile.TemporaryDirectory(prefix="edgec-doctor-") as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        opts.enable_profiling = True
        opts.profile_file_prefix = f"{tmp}/profile"
        opts.optimized_model_filepath = f"{tmp}/optimized.onnx"
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        feed = _feed(session, x, Path(path).name)  # the input's dtype (fp16 io) and fixed batch
        for _ in range(runs):
            run_session(session, feed, Path(path).name)
        events = json.loads(Path(session.end_profiling()).read_text())
        optimized = Counter(n.op_type for n in onnx.load(f"{tmp}/optimized.onnx").graph.node)
    per_op: Counter = Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            per_op[e["args"].get("op_name", "?")] += float(e["dur"]) / runs
    total = sum(per_op.values()) or 1.0
    d.profile = {op: round(us, 2) for op, us in per_op.most_common()}
    conversions = sum(per_op[op] for op in ("QuantizeLinear", "DequantizeLinear", "Transpose",
                                            "ReorderInput", "ReorderOutput"))
    left = optimized["QuantizeLinear"] + optimized["DequantizeLinear"]
    float_compute = sum(optimized[op] for op in ("Conv", "FusedConv", "MatMul", "Gemm",
                                                 "FusedGemm"))
    if left > 2 or conversions / total > 0.15:
        d.findings.append(Finding(
            "unfused_qdq", f"After onnxruntime's fusions {left} Quantize/DequantizeLinear node(s) "
            f"remain (plus layout transposes) and {float_compute} float compute node(s).",
            f"measured: {conversions / total:.0%} of the profiled time is format conversion "
            f"({conversions:.0f} of {total:.0f} µs per inference)",
            "quantize: {mode: auto} drops int8 where conversions eat the gain; keep int8 "
            "regions contiguous (exclude fewer isolated layers)"))


def print_diagnosis(d: Diagnosis, file=None) -> None:
    from rich.markup import escape

    from edgec.console import console as make_console

    console = make_console(file)
    cpu = ", ".join(k for k, v in d.cpu.items() if v) or "none of the fast paths"
    console.print(f"{escape(d.path)}: format {d.format}; CPU: {cpu}")
    console.print("compute by MACs: " + ", ".join(f"{k} {v:.0%}" for k, v in d.mac_share.items()))
    if d.profile:
        top = list(d.profile.items())[:6]
        console.print("profile (µs/inference): " + ", ".join(f"{op} {us:.0f}" for op, us in top))
    if not d.findings:
        console.print("no known int8/fp16 speed problem found"
                      + (" by the checks that ran" if d.not_checked else ""))
    for f in d.findings:  # text, not markup: a fix like "exclude_ops: [conv]" must print whole
        console.print(f"[yellow]{f.code}[/]: {escape(f.message)}\n  cost: {escape(f.cost)}\n"
                      f"  fix: {escape(f.fix)}")
    for why in d.not_checked:
        console.print(f"[yellow]not checked[/]: {escape(why)}")
