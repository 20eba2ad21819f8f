"""Write a layer-wise plan as one ONNX file per device, and check the pieces against the model.

Each piece is a standalone model: its own nodes, the weights and weight-only nodes they read, the
tensors received from the previous device as inputs and those sent on as outputs (a tensor only
passing through a device is both). The check runs the pieces one after another in onnxruntime, as
the devices would, and compares with the whole model on the same inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgec.partition_layerwise import compute_positions
from edgec.partition_layerwise import reads as _reads

if TYPE_CHECKING:
    import onnx

    from edgec.partition_layerwise import LayerwisePlan, Piece


def export_pieces(path: Path | str, plan: LayerwisePlan, out_dir: Path | str) -> list[Path]:
    """Write one ONNX file per device (device_1.onnx …) and fill in each piece's path and RAM."""
    import onnx

    from edgec.memory import estimate_model_memory

    model = onnx.load(str(path))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for piece in plan.pieces:
        sub = _submodel(model, piece)
        onnx.checker.check_model(sub, full_check=True)
        target = out_dir / f"device_{piece.device}.onnx"
        onnx.save(sub, str(target))
        piece.onnx_path = str(target)
        piece.peak_activation_bytes = estimate_model_memory(sub).peak_activation_bytes
        paths.append(target)
    return paths


def verify_pieces(path: Path | str, plan: LayerwisePlan, samples: int = 2, seed: int = 0) -> float:
    """Run the whole model and the pieces device by device on the same random inputs in
    onnxruntime; return (and record) the largest absolute difference of the outputs."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    whole = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    sessions = [ort.InferenceSession(p.onnx_path, opts, providers=["CPUExecutionProvider"])
                for p in plan.pieces]
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(samples):
        feed = {i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape])
                .astype(np.float32) for i in whole.get_inputs()}
        expected = whole.run(None, feed)
        tensors = dict(feed)
        for sess in sessions:
            got = sess.run(None, {i.name: tensors[i.name] for i in sess.get_inputs()})
            tensors.update(zip((o.name for o in sess.get_outputs()), got, strict=True))
        for out, want in zip(whole.get_outputs(), expected, strict=True):
            worst = max(worst, float(np.max(np.abs(tensors[out.name] - want))) if want.size else 0.0)
    plan.max_abs_diff = worst
    return worst


def measure_pieces(plan: LayerwisePlan, runs: int = 20, link_mbps: float | None = None) -> None:
    """Median compute time of each piece (onnxruntime, 1 thread, random inputs); with a link
    speed, the latency of one inference as the chain runs it: each device, then its transfer."""
    for piece in plan.pieces:
        piece.compute_ms = median_compute_ms(piece.onnx_path, runs)
    if link_mbps:
        plan.link_mbps = link_mbps
        transfer_ms = plan.bytes_per_inference * 8 / (link_mbps * 1e3)
        plan.estimated_latency_ms = sum(p.compute_ms for p in plan.pieces) + transfer_ms


def median_compute_ms(path: Path | str, runs: int = 20) -> float:
    """Median time of one batch-1 inference of the ONNX file at ``path`` (onnxruntime, 1 thread,
    random inputs, after a warm-up run)."""
    import statistics
    import time

    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    rng = np.random.default_rng(0)
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {i.name: _random_input(rng, i) for i in sess.get_inputs()}
    sess.run(None, feed)  # warm-up: the first run allocates the arena
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _random_input(rng, arg):
    """Random data of an onnxruntime input's shape and type: a cut after a QuantizeLinear
    receives int8, not float."""
    import numpy as np

    shape = [d if isinstance(d, int) else 1 for d in arg.shape]
    dtype = np.dtype({"tensor(float)": "float32", "tensor(float16)": "float16",
                      "tensor(double)": "float64"}.get(arg.type, arg.type[7:-1]))
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    low = 0 if dtype.kind in "ub" else -8
    return rng.integers(low, 8, size=shape).astype(dtype)


def _submodel(model: onnx.ModelProto, piece: Piece) -> onnx.ModelProto:
    """The piece as a standalone model: its nodes, the weight-only nodes and initializers they
    read, the live-in tensors as inputs and the live-out tensors as outputs."""
    from onnx import helper

    from edgec.memory import tensor_infos

    graph = model.graph
    infos = tensor_infos(model)
    # positions, not node objects: protobuf may hand out a new wrapper on every access
    all_nodes = list(graph.node)
    chosen = set(compute_positions(graph)[slice(*piece.node_range)])
    inits = {t.name: t for t in graph.initializer}
    producers = {o: i for i, nd in enumerate(all_nodes) for o in nd.output}
    need, stack = set(), [r for i in sorted(chosen) for r in _reads(all_nodes[i])]
    while stack:  # pull in weights and the weight-only nodes feeding this piece
        name = stack.pop()
        if not name or name in need or name in piece.inputs:
            continue
        need.add(name)
        src = producers.get(name)
        if src is not None and src not in chosen:
            stack.extend(_reads(all_nodes[src]))
    # keep execution order; weight-only nodes are copied into every piece that reads them
    nodes = [nd for i, nd in enumerate(all_nodes)
             if i in chosen or any(o in need for o in nd.output)]

    def vi(name: str):
        info = infos[name]
        return helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(_np_dtype(info.dtype)), info.shape)

    sub = helper.make_graph(
        nodes, f"{graph.name or 'model'}_device_{piece.device}",
        [vi(t) for t in piece.inputs], [vi(t) for t in piece.outputs],
        initializer=[inits[t] for t in sorted(need) if t in inits])
    return helper.make_model(sub, opset_imports=list(model.opset_import),
                             ir_version=model.ir_version, producer_name="edgec-partition")


def _np_dtype(name: str):
    import numpy as np

    return np.dtype(name)
