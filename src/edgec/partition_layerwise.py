"""Layer-wise split of one ONNX model across K devices in a chain (issue 10, `method: layerwise`).

The graph's nodes, in their (topological) execution order, form a chain; a cut between two nodes
sends every activation that is produced before it and still needed after it (residual branches
included, so a cut inside a block pays for both tensors). Weights and the nodes fed only by
weights (shape constants, DequantizeLinear of a weight) are not part of the chain: each piece gets
its own copy of the ones it reads. Dynamic programming over cut positions picks the K-1 cuts that
minimise the bytes sent per inference such that piece k fits device k's budget. Params, MACs and
weight bytes are additive over nodes (a prefix-sum difference per piece), peak activations a
range maximum (a sparse table), so checking a piece is O(1); the greedy fill (each device takes as
many nodes as fit) decides feasibility and names the device that cannot be served.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import BudgetError, UsageError
from edgec.partition_budget import (
    DeviceBudget,
    check_feasible,
    explain_no_split,
    overruns,
    per_device,
    what_fits,
)

if TYPE_CHECKING:
    import onnx


@dataclass
class Piece:
    """One device's share of the model."""

    device: int  # 1-based, in chain order
    nodes: list[str]
    node_range: tuple[int, int]  # [first, end) in compute_nodes(graph): node names need not be unique
    inputs: list[str]  # tensors received from the previous device (the model input for device 1)
    outputs: list[str]  # tensors sent to the next device (the model output for the last one)
    params: int
    macs: int
    flash_bytes: int  # weight bytes of this piece (its initializers; file overhead excluded)
    bytes_in: int
    bytes_out: int
    ram_bound_bytes: int  # activations live at the piece's busiest step, no buffer reuse
    onnx_path: str | None = None
    peak_activation_bytes: int | None = None  # memory.py's estimate of the exported piece
    compute_ms: float | None = None  # median onnxruntime time of the piece on this host, 1 thread


@dataclass
class LayerwisePlan:
    pieces: list[Piece]
    bytes_per_inference: int  # sum over the cuts of the activation bytes sent (batch 1)
    max_abs_diff: float | None = None  # assembled pieces vs the whole model, onnxruntime
    link_mbps: float | None = None
    estimated_latency_ms: float | None = None  # compute of every piece + every transfer, in turn
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """As in partition.json: file paths relative to its folder, so the folder can move (a
        run folder is renamed when the run finishes)."""
        d = asdict(self)
        for piece in d["pieces"]:
            piece["onnx_path"] = piece["onnx_path"] and Path(piece["onnx_path"]).name
        return d


@dataclass
class _Chain:
    """The model seen as a chain of compute nodes, with per-node costs and per-cut traffic."""

    model: onnx.ModelProto
    nodes: list  # compute NodeProtos in execution order
    params: list[int]
    macs: list[int]
    flash: list[int]
    live: list[list[str]]  # live[p]: tensors crossing a cut before node p (p = 0 … N)
    cross_bytes: list[int]
    step_bytes: list[int]  # activation bytes live while node i runs (its inputs and outputs too)

    def costs(self) -> _Costs:
        return _Costs({k: _prefix(getattr(self, k)) for k in ("params", "macs", "flash")},
                      _RangeMax(self.step_bytes))


class _RangeMax:
    """Maximum of values[a:b] in O(1) after O(n log n) set-up (a sparse table)."""

    def __init__(self, values: list[int]):
        self.table = [list(values)]
        width = 1
        while 2 * width <= len(values):
            prev = self.table[-1]
            self.table.append([max(prev[i], prev[i + width]) for i in range(len(prev) - width)])
            width *= 2

    def __call__(self, a: int, b: int) -> int:
        level = (b - a).bit_length() - 1
        row = self.table[level]
        return max(row[a], row[b - (1 << level)])


@dataclass
class _Costs:
    sums: dict[str, list[int]]
    ram: _RangeMax

    def __call__(self, a: int, b: int) -> dict:
        """What a piece holding nodes [a, b) needs: params, MACs, flash bytes, RAM bytes."""
        return {**{k: p[b] - p[a] for k, p in self.sums.items()}, "ram": self.ram(a, b)}


def plan_layerwise(path: Path | str, devices: int, budgets: DeviceBudget | list[DeviceBudget],
                   input_shape: tuple[int, ...] | None = None) -> LayerwisePlan:
    """Choose cut points for ``devices`` devices; raises BudgetError naming the device that
    cannot be served. ``budgets`` is one budget for every device or one per device."""
    chain = _build_chain(path, input_shape)
    budgets = per_device(budgets, devices)
    n = len(chain.nodes)
    if devices > n:
        raise UsageError(f"Cannot split a model of {n} compute nodes across {devices} devices.",
                         hint=f"Use {n} devices or fewer.")
    cost = chain.costs()
    try:
        cuts = _cheapest_cuts(chain, budgets, cost)
    except BudgetError as exc:
        fits = what_fits(budgets, lambda raised: _splits(chain, raised, cost), cost(0, n))
        if not fits:
            raise
        raise BudgetError(f"{exc.message} The smallest budget that splits this model across "
                          f"{devices} devices: {fits} per device (other limits as given).") from None
    pieces = [_piece(chain, k + 1, cuts[k], cuts[k + 1], cost) for k in range(devices)]
    return LayerwisePlan(pieces=pieces, bytes_per_inference=sum(p.bytes_out for p in pieces[:-1]))


def _splits(chain: _Chain, budgets: list[DeviceBudget], cost: _Costs) -> bool:
    try:
        _cheapest_cuts(chain, budgets, cost)
    except BudgetError:
        return False
    return True


def _cheapest_cuts(chain: _Chain, budgets: list[DeviceBudget], cost: _Costs) -> list[int]:
    """[0, cut 1, …, n]: the piece boundaries that send the fewest bytes with every piece within
    its device's budget; raises BudgetError naming the device that cannot be served."""
    n, devices = len(chain.nodes), len(budgets)

    def fits(k: int, a: int, b: int) -> bool:
        return not overruns(budgets[k], cost(a, b))

    check_feasible(chain.nodes, budgets, fits, cost)
    inf = math.inf
    # best[k][b]: fewest bytes sent when devices 0..k hold nodes [0, b); prev[k][b]: its last cut.
    best = [[inf] * (n + 1) for _ in range(devices)]
    prev = [[-1] * (n + 1) for _ in range(devices)]
    for b in range(1, n + 1):
        if fits(0, 0, b):
            best[0][b] = 0
    for k in range(1, devices):
        for b in range(k + 1, n + 1):
            for a in range(k, b):
                if best[k - 1][a] < inf and fits(k, a, b):
                    sent = best[k - 1][a] + chain.cross_bytes[a]
                    if sent < best[k][b]:
                        best[k][b], prev[k][b] = sent, a
    if best[devices - 1][n] == inf:
        explain_no_split(chain.nodes, budgets, fits, cost)
    cuts, b = [n], n
    for k in range(devices - 1, 0, -1):
        b = prev[k][b]
        cuts.append(b)
    return [0, *reversed(cuts)]


def _build_chain(path, input_shape) -> _Chain:
    from onnx import numpy_helper

    from edgec.graph_stats import _COMPUTE as COMPUTE_OPS
    from edgec.graph_stats import analyze_onnx, load_onnx
    from edgec.memory import constant_tensors, tensor_infos

    model = load_onnx(Path(path))
    graph = model.graph
    # analyze_onnx lists one layer per compute op, in graph order: match by position, since
    # node names need not be unique
    layers = iter(analyze_onnx(Path(path), input_shape).layers)
    all_nodes = list(graph.node)
    stats = {i: next(layers) for i, nd in enumerate(all_nodes) if nd.op_type in COMPUTE_OPS}
    infos = tensor_infos(model, input_shape)
    const = constant_tensors(graph)
    positions = compute_positions(graph)
    nodes = [all_nodes[i] for i in positions]
    producer_of = {o: i for i, nd in enumerate(nodes) for o in nd.output}
    last_use = {}
    for i, nd in enumerate(nodes):
        for name in reads(nd):
            if name and name not in const:
                last_use[name] = i
    n = len(nodes)
    for out in graph.output:
        last_use[out.name] = n  # outputs travel to the end of the chain
    inits = {t.name: numpy_helper.to_array(t).nbytes for t in graph.initializer}
    const_producers = {o: nd for nd in graph.node for o in nd.output if o in const}
    seen: set[str] = set()
    flash = []
    for nd in nodes:  # a weight shared by several nodes is counted once, at its first reader
        names = _weights_of(nd, const_producers, inits) - seen
        seen |= names
        flash.append(sum(inits[w] for w in names))
    live = [[] for _ in range(n + 1)]
    graph_inputs = [i.name for i in graph.input if i.name not in inits]
    for name, end in last_use.items():
        start = producer_of[name] + 1 if name in producer_of else 0
        if name not in producer_of and name not in graph_inputs:
            continue
        for p in range(start, end + 1):
            live[p].append(name)
    cross, size = [], {}
    for names in live:
        sizes = [infos[t].nbytes if t in infos else None for t in names]
        if any(s is None for s in sizes):
            unknown = [t for t, s in zip(names, sizes, strict=True) if s is None]
            raise UsageError(f"The size of tensor(s) {', '.join(unknown[:3])} is unknown after "
                             "shape inference, so the traffic of a cut cannot be counted.",
                             hint="Give a fixed --input-shape, or export the model with static shapes.")
        cross.append(sum(sizes))
        size.update(zip(names, sizes, strict=True))
    return _Chain(model=model, nodes=nodes,
                  params=[stats[i].params if i in stats else 0 for i in positions],
                  macs=[stats[i].macs if i in stats else 0 for i in positions],
                  flash=flash, live=[sorted(v) for v in live[:n]] + [[o.name for o in graph.output]],
                  cross_bytes=cross,
                  step_bytes=[sum(size[t] for t in set(live[i]) | set(live[i + 1])) for i in range(n)])


def compute_positions(graph) -> list[int]:
    """The chain, as positions in graph.node: every node except those fed only by weights
    (copied into each piece that reads them instead)."""
    from edgec.memory import constant_tensors

    const = constant_tensors(graph)
    return [i for i, nd in enumerate(graph.node) if not all(o in const for o in nd.output)]


def reads(node) -> list[str]:
    """Tensors a node reads, including those its subgraphs (If/Loop bodies) take from outside."""
    names = list(node.input)
    for attr in node.attribute:
        for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            for inner in g.node:
                names.extend(reads(inner))
    return names


def _weights_of(node, const_producers: dict, inits: dict) -> set[str]:
    """Initializers a node reads, directly or through nodes fed only by weights."""
    found, stack, seen = set(), list(reads(node)), set()
    while stack:
        name = stack.pop()
        if name in seen or not name:
            continue
        seen.add(name)
        if name in inits:
            found.add(name)
        elif name in const_producers:
            stack.extend(reads(const_producers[name]))
    return found


def _prefix(values: list[int]) -> list[int]:
    out = [0]
    for v in values:
        out.append(out[-1] + v)
    return out


def _piece(chain: _Chain, device: int, a: int, b: int, cost: _Costs) -> Piece:
    c = cost(a, b)
    return Piece(
        device=device, nodes=[nd.name or nd.output[0] for nd in chain.nodes[a:b]], node_range=(a, b),
        inputs=chain.live[a], outputs=chain.live[b], params=c["params"], macs=c["macs"],
        flash_bytes=c["flash"], ram_bound_bytes=c["ram"],
        bytes_in=chain.cross_bytes[a], bytes_out=chain.cross_bytes[b] if b < len(chain.nodes) else 0,
    )
