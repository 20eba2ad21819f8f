"""Measured memory of an onnxruntime session, in a fresh subprocess so the numbers are clean.

The child process imports onnxruntime, then records resident memory (RSS) around two phases:
  load       session creation (graph optimization, weight prepacking): peak RSS growth;
  inference  the first inference after load: peak RSS growth above the RSS right before it.
Peaks come from the kernel's high-water mark (VmHWM), reset between phases through
/proc/self/clear_refs, so a phase's transient peak is caught even if freed before it ends.

With the memory arena disabled, onnxruntime allocates each activation with malloc and frees it
after its last use; glibc's mmap threshold is pinned so large buffers go straight to the kernel and
come back on free (its default adapts upward and would keep freed buffers resident), which makes
inference growth track the live activations the estimate (memory.py) predicts.
Linux only; elsewhere the measurement is reported as unavailable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# RSS noise of the probe itself (interpreter, numpy, page granularity, onnxruntime's per-run
# allocations) measured with tiny models on this machine: growth below this is not a measurement.
NOISE_FLOOR_BYTES = 1024 * 1024
_MMAP_THRESHOLD = "131072"


def measure_memory(path: Path | str, input_shape, arena: bool = False, threads: int = 1,
                   timeout: float = 300) -> dict:
    """Peak RSS growth (bytes) of loading ``path`` and running one inference, plus the settings.

    Returns {"available": False, "reason": ...} instead of raising when it cannot measure.
    """
    if not Path("/proc/self/status").exists():
        return {"available": False, "reason": "needs Linux /proc to read resident memory"}
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=_MMAP_THRESHOLD, OMP_NUM_THREADS=str(threads))
    src = str(Path(__file__).resolve().parents[1])  # this edgec, even from a worktree
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "edgec.memory_probe", str(path),
           ",".join(str(d) for d in input_shape), "1" if arena else "0", str(threads)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"available": False, "reason": f"the probe took over {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return {"available": False, "reason": f"the probe failed: {tail}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["available"] = True
    result["noise_floor_bytes"] = NOISE_FLOOR_BYTES
    result["inference_below_noise"] = result["inference_peak_bytes"] < NOISE_FLOOR_BYTES
    return result


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _probe(path: str, shape: tuple[int, ...], arena: bool, threads: int) -> dict:
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = arena
    opts.enable_mem_pattern = arena  # a memory pattern preallocates one block: arena-like
    opts.log_severity_level = 3
    inp_shape = shape
    x = np.random.default_rng(0).standard_normal(inp_shape).astype(np.float32)
    resettable = _reset_peak()
    before_load = _status_kb("VmRSS")
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    feed = {inp.name: x.astype(np.float16 if inp.type == "tensor(float16)" else np.float32)}
    load_peak = _status_kb("VmHWM") - before_load
    after_load = _status_kb("VmRSS")
    _reset_peak()
    before_run = _status_kb("VmRSS")
    session.run(None, feed)
    first_peak = _status_kb("VmHWM") - before_run
    steady = []
    for _ in range(3):  # later runs: one-off first-run allocations (thread pool, caches) are gone
        _reset_peak()
        start = _status_kb("VmRSS")
        session.run(None, feed)
        steady.append(_status_kb("VmHWM") - start)
    return {
        "load_peak_bytes": load_peak * 1024, "after_load_bytes": (after_load - before_load) * 1024,
        "first_inference_peak_bytes": first_peak * 1024,
        # With the arena, the first run allocates it and later runs reuse it: the first is the cost.
        "inference_peak_bytes": (max(steady) if resettable and not arena else first_peak) * 1024,
        "peak_reset": resettable, "arena": arena, "mem_pattern": arena, "threads": threads,
        "malloc_mmap_threshold": int(_MMAP_THRESHOLD), "onnxruntime": ort.__version__,
    }


if __name__ == "__main__":
    _path, _shape, _arena, _threads = sys.argv[1:5]
    out = _probe(_path, tuple(int(d) for d in _shape.split(",")), _arena == "1", int(_threads))
    print(json.dumps(out))
