"""Operator-support check: can a target's runtime run this ONNX model?

Three kinds of problem, each listed with the nodes that cause it and, where one exists, the recipe
or architecture change that avoids it: an op the runtime does not implement, an op computing in a
dtype the runtime does not support (e.g. float on an int8-only microcontroller), and an opset
outside what the runtime or its converter accepts.

In QDQ models (what static quantization writes) an op fed by DequantizeLinear runs, once
converted or fused, in the quantized type: that is its "compute dtype" here, not float.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from edgec.targets import TargetProfile

# Activations a runtime fuses into the preceding conv / matmul (TFLite: fused_activation_function).
_FUSABLE = {"Relu", "Clip", "LeakyRelu"}
# Integer/bool tensors that only compute shapes: converters fold them into constants.
_SHAPE_DTYPES = {"int64", "bool", "int32"}

_REPLACE_ACTIVATION = ("replace the activation in the model with nn.ReLU or nn.ReLU6 (supported "
                       "almost everywhere) and fine-tune")
# op type → the change that avoids it
OP_FIXES = {
    "Erf": "GELU exports as Erf: " + _REPLACE_ACTIVATION,
    "Gelu": _REPLACE_ACTIVATION,
    "HardSigmoid": _REPLACE_ACTIVATION, "HardSwish": _REPLACE_ACTIVATION,
    "Elu": _REPLACE_ACTIVATION, "Selu": _REPLACE_ACTIVATION, "Celu": _REPLACE_ACTIVATION,
    "Softplus": _REPLACE_ACTIVATION, "Mish": _REPLACE_ACTIVATION,
    "ConvInteger": "quantize mode: dynamic writes ConvInteger; use mode: static (calibrated int8)",
    "MatMulInteger": "quantize mode: dynamic writes MatMulInteger; use mode: static",
    "DynamicQuantizeLinear": "quantize mode: dynamic quantizes at run time; use mode: static",
    "BatchNormalization": "a BatchNorm that follows no conv cannot be folded: move it after a conv "
                          "or remove it",
    "LayerNormalization": "replace LayerNorm with BatchNorm (folds into the preceding conv)",
    "InstanceNormalization": "replace InstanceNorm with BatchNorm (folds into the preceding conv)",
    "Cast": "a Cast usually comes from quantize mode: fp16 or from dtype changes in forward(); "
            "use mode: static for an integer target",
    "LSTM": "recurrent layers are not in this op set: use a 1-D conv (temporal conv) instead",
    "GRU": "recurrent layers are not in this op set: use a 1-D conv (temporal conv) instead",
    "Div": "divide by a constant as a multiply (x * (1/c)) in forward()",
}


@dataclass
class OpProblem:
    kind: Literal["op", "dtype", "opset"]
    op_type: str
    message: str
    nodes: list[str] = field(default_factory=list)
    fix: str | None = None


@dataclass
class OpCheckResult:
    target: str
    model: str
    opset: int
    problems: list[OpProblem] = field(default_factory=list)
    ops_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def only(self, *kinds: str) -> list[OpProblem]:
        return [p for p in self.problems if p.kind in kinds]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        return d

    def summary(self, max_nodes: int = 3) -> str:
        """Plain text, one problem per line with its nodes and fix."""
        if self.ok:
            return f"{self.model}: every op runs on target '{self.target}' ({self.ops_checked} nodes)."
        lines = [f"{self.model}: {len(self.problems)} problem(s) for target '{self.target}':"]
        for p in self.problems:
            more = f" (+{len(p.nodes) - max_nodes} more)" if len(p.nodes) > max_nodes else ""
            nodes = f" [nodes: {', '.join(p.nodes[:max_nodes])}{more}]" if p.nodes else ""
            lines.append(f"  - {p.message}{nodes}" + (f"; fix: {p.fix}." if p.fix else "."))
        return "\n".join(lines)


def check_model(path: Path | str, target: TargetProfile, input_shape=None) -> OpCheckResult:
    """Check the ONNX file at ``path`` against ``target``."""
    from edgec.graph_stats import load_onnx
    from edgec.memory import constant_tensors, tensor_infos

    model = load_onnx(Path(path))
    infos = tensor_infos(model, input_shape)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    result = OpCheckResult(target=target.name, model=Path(path).name, opset=opset,
                           ops_checked=len(model.graph.node))
    result.problems += _opset_problems(opset, target)
    constant = constant_tensors(model.graph)
    result.problems += _op_problems(model.graph, target, constant)
    result.problems += _dtype_problems(model.graph, target, infos, constant)
    return result


def _opset_problems(opset: int, target: TargetProfile) -> list[OpProblem]:
    if target.max_opset and opset > target.max_opset:
        return [OpProblem("opset", "", f"opset {opset} is newer than the {target.max_opset} the "
                          f"target's runtime accepts", fix=f"set export.opset: {target.max_opset}")]
    if target.min_opset and opset < target.min_opset:
        return [OpProblem("opset", "", f"opset {opset} is older than the {target.min_opset} the "
                          "target's converter needs", fix=f"set export.opset: {target.min_opset}")]
    return []


def _op_name(node) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"


def _runs(node, constant: set[str]) -> bool:
    """False for nodes a converter folds away: constants and ops on constants only."""
    return bool(node.output) and not all(o in constant for o in node.output)


def _op_problems(graph, target: TargetProfile, constant: set[str]) -> list[OpProblem]:
    if target.ops is None:
        return []
    allowed = set(target.ops)
    missing: dict[str, list[str]] = {}
    for node in graph.node:
        op = _op_name(node)
        if op not in allowed and _runs(node, constant):
            missing.setdefault(op, []).append(node.name or node.output[0])
    return [OpProblem("op", op, f"{op} is not in the op set of '{target.name}' "
                      f"({len(nodes)} node(s))", nodes,
                      OP_FIXES.get(op.split("::")[-1], "change the layer that exports as this op, "
                                   "or choose a target whose runtime implements it"))
            for op, nodes in missing.items()]


def compute_dtype(node, producers: dict, infos: dict, consumers: dict) -> str | None:
    """The dtype ``node`` really computes in (see the module docstring); None if unknown."""
    def dtype(name: str) -> str | None:
        info = infos.get(name)
        return info.dtype if info else None

    if node.op_type == "QuantizeLinear":
        return dtype(node.output[0])
    if node.op_type == "DequantizeLinear":
        return dtype(node.input[0])
    if not node.input or not node.input[0]:
        return None
    source = producers.get(node.input[0])
    if source is not None and source.op_type == "DequantizeLinear":
        return dtype(source.input[0])
    users = consumers.get(node.output[0], []) if node.output else []
    if (node.op_type in _FUSABLE and source is not None and users
            and all(u.op_type == "QuantizeLinear" for u in users)):
        return compute_dtype(source, producers, infos, consumers)  # fused into its producer
    return dtype(node.input[0])


def _dtype_problems(graph, target: TargetProfile, infos: dict, constant: set[str]) -> list[OpProblem]:
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    bad: dict[str, dict[str, list[str]]] = {}  # dtype → op → nodes: one problem per dtype
    for node in graph.node:
        allowed = target.allowed_dtypes(_op_name(node))
        if allowed is None or not _runs(node, constant):
            continue
        dt = compute_dtype(node, producers, infos, consumers)
        if dt is None or dt in allowed or dt in _SHAPE_DTYPES:
            continue
        bad.setdefault(dt, {}).setdefault(_op_name(node), []).append(node.name or node.output[0])
    out = []
    for dt, by_op in bad.items():
        ops = sorted(by_op, key=lambda o: -len(by_op[o]))
        allowed = sorted({d for o in ops for d in target.allowed_dtypes(o) or []})
        nodes = [n for o in ops for n in by_op[o]]
        what = ", ".join(f"{o} x{len(by_op[o])}" for o in ops)
        out.append(OpProblem("dtype", ops[0], f"{len(nodes)} node(s) compute in {dt} ({what}), "
                             f"but '{target.name}' runs them only in {'/'.join(allowed)}",
                             nodes, _dtype_fix(dt, allowed)))
    return out


def _dtype_fix(dtype: str, allowed: list[str]) -> str:
    if dtype == "uint8" and "int8" in allowed:
        return "set activation_type: int8 on the quantize pass (this runtime has no uint8 kernels)"
    if dtype == "float16":
        return "quantize mode: fp16 keeps float ops; use mode: static for integer kernels"
    if dtype.startswith("float"):
        return ("add a static quantization pass, {type: quantize, mode: static}; if one is there, "
                "this op was left in float: check the pass's op list and excluded nodes")
    return f"change the quantization so these ops compute in {'/'.join(allowed)}"
