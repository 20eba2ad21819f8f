"""The bad-input matrix: every way a user (or a file from someone else) can be wrong, through the CLI.

Each case must end with the documented exit code, a message that names the thing at fault, and no
traceback. Cases stop before any slow work (they fail at validation or load), so the matrix is fast.
"""

# ruff: noqa: E501  (the matrix reads best as one case per line)
from __future__ import annotations

import errno
import re
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgec.cli import cli

FIXTURES = Path(__file__).parent / "fixtures"

PY = "model: {source: python, callable: 'tiny_models.py:tiny_cnn', input_shape: [1, 1, 8, 8]}\n"
HEAD = "version: 1\n"
TINY = HEAD + PY + "data: {source: digits}\nbenchmark: {runs: 2, warmup: 0}\n"


def ckpt(arch: str = "{source: python, callable: 'tiny_models.py:tiny_cnn'}", extra: str = "") -> str:
    return (HEAD + "model: {source: checkpoint, path: w.pt, input_shape: [1, 1, 8, 8], "
            f"architecture: {arch}{extra}}}\n")


def npz(extra: str = "") -> str:
    return HEAD + PY + f"data: {{source: npz, path: d.npz{extra}}}\n"


# ---- files the cases need, written into the recipe's folder ----------------------------------

def _tiny_state():
    import sys

    sys.path.insert(0, str(FIXTURES))
    try:
        import tiny_models
    finally:
        sys.path.remove(str(FIXTURES))
    return tiny_models.tiny_cnn()


def save_state(d: Path, transform=lambda s: s) -> None:
    import torch

    torch.save(transform(_tiny_state().state_dict()), d / "w.pt")


def save_truncated(d: Path) -> None:
    save_state(d)
    data = (d / "w.pt").read_bytes()
    (d / "w.pt").write_bytes(data[: len(data) // 2])


def save_whole_model(d: Path) -> None:
    import torch

    torch.save(_tiny_state(), d / "w.pt")


def save_npz(d: Path, n: int = 40, ny: int | None = None, labels=None, nan: bool = False,
             shape=(1, 8, 8)) -> None:
    import numpy as np

    x = np.random.default_rng(0).standard_normal((n, *shape)).astype(np.float32)
    if nan:
        x[3, 0, 0, 0] = np.nan
    y = np.arange(ny if ny is not None else n) % 10 if labels is None else np.asarray(labels)
    np.savez(d / "d.npz", x=x, y=y)


def save_images(d: Path, classes: int) -> None:
    from PIL import Image

    root = d / "imgs"
    root.mkdir()
    for c in range(classes):
        (root / f"c{c}").mkdir()
        for i in range(3):
            Image.new("L", (8, 8), color=i * 40).save(root / f"c{c}" / f"{i}.png")


def save_onnx(d: Path, op: str = "NoSuchOp", domain: str = "com.example.custom") -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node(op, ["input"], ["output"], domain=domain)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), d / "m.onnx")


def save_good_onnx(d: Path, name: str = "m.onnx") -> Path:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["input"], ["output"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), d / name)
    return d / name


def save_conv_onnx(d: Path, dims=("N", 1, 8, 8), inputs: int = 1, elem: int = 1) -> None:
    """m.onnx: one 3x3 convolution whose input has ``dims`` (str: dynamic) and type ``elem``
    (TensorProto: 1 float, 7 int64); extra ``inputs`` are added to its output."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, dims[1], 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])]
    names = ["x"] + [f"x{i}" for i in range(1, inputs)]
    for i, name in enumerate(names[1:]):
        nodes.append(helper.make_node("Add", [nodes[-1].output[0], name], [f"s{i}"]))
    out = [*dims[:1], 4, *dims[2:]]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, elem, list(dims if n == "x" else out)) for n in names],
        [helper.make_tensor_value_info(nodes[-1].output[0], 1, out)], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), d / "m.onnx")


def save_dynamic_hw(d: Path) -> None:
    save_conv_onnx(d, dims=("N", 3, "H", "W"))


def truncate_onnx(d: Path) -> None:
    data = save_good_onnx(d).read_bytes()
    (d / "m.onnx").write_bytes(data[: len(data) - 7])


def write(name: str, text: str | bytes) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        (d / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return setup


# ---- the matrix -----------------------------------------------------------------------------

@dataclass
class Case:
    id: str
    recipe: str | None  # written to r.yaml; None: no recipe file
    code: int
    match: str  # regex the output must contain (names the thing at fault)
    args: tuple[str, ...] = ("compress", "{recipe}", "-o", "{out}", "-q")
    setup: Callable[[Path], None] | None = None
    patch: Callable[[pytest.MonkeyPatch, Path], None] | None = None
    extra: tuple[str, ...] = field(default=())


BOMB = HEAD + "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6))


def _no_access(mp: pytest.MonkeyPatch, d: Path) -> None:
    import os

    real = os.access
    mp.setattr(os, "access", lambda p, mode, *a, **k: False if str(p).startswith(str(d / "ro"))
               else real(p, mode, *a, **k))


def _mkdir_denied(mp: pytest.MonkeyPatch, d: Path) -> None:
    real = Path.mkdir

    def mkdir(self, *a, **k):
        if "out" in self.name:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *a, **k)
    mp.setattr(Path, "mkdir", mkdir)


def _disk_full(marker: str):
    """Writes to files whose path contains ``marker`` fail as on a full disk."""
    def patch(mp: pytest.MonkeyPatch, d: Path) -> None:
        import builtins
        import io

        def guard(opener):
            def fake(file, mode="r", *a, **k):
                if any(m in mode for m in "wax+") and marker in str(file):
                    raise OSError(errno.ENOSPC, "No space left on device", str(file))
                return opener(file, mode, *a, **k)
            return fake
        mp.setattr(builtins, "open", guard(builtins.open))
        mp.setattr(io, "open", guard(io.open))
    return patch


CASES = [
    # -- recipe text and structure (exit 2: nothing runs) --
    Case("yaml-malformed", HEAD + "model: {source: zoo\n", 2, r"not valid YAML at line"),
    Case("yaml-tab-indent", HEAD + "model:\n\tsource: zoo\n", 2, r"not valid YAML"),
    Case("yaml-bomb", BOMB, 2, r"alias bomb"),
    Case("recipe-is-list", "- version: 1\n- model: x\n", 2, r"recipe is a list"),
    Case("recipe-is-scalar", "hello\n", 2, r"recipe is a str"),
    Case("recipe-empty", "", 2, r"recipe is empty"),
    Case("recipe-only-comments", "# nothing here\n", 2, r"recipe is empty"),
    Case("recipe-not-utf8", None, 2, r"Cannot read recipe", setup=write("r.yaml", b"\xff\xfe\x00bad")),
    Case("recipe-missing", None, 2, r"r\.yaml' does not exist"),
    Case("recipe-is-folder", None, 2, r"is a folder", setup=lambda d: (d / "r.yaml").mkdir()),
    Case("version-missing", PY, 2, r"version.*required key is missing"),
    Case("version-wrong", "version: 2\n" + PY, 2, r"version \(line 1\): must be 1"),
    Case("unknown-top-key", TINY + "bechmark: {runs: 3}\n", 2, r"unknown key 'bechmark'; did you mean 'benchmark'"),
    Case("unknown-model-key", HEAD + "model: {source: zoo, name: digits_cnn, input_shape: [1,1,8,8], nmae: x}\n",
         2, r"model.nmae.*unknown key"),
    Case("unknown-data-key", HEAD + PY + "data: {source: digits, rezise: 16}\n", 2, r"data.rezise.*did you mean 'resize'"),
    Case("unknown-pass-key", TINY + "passes: [{type: quantize, mdoe: static}]\n", 2, r"passes\[0\].mdoe.*did you mean 'mode'"),
    Case("unknown-benchmark-key", HEAD + PY + "benchmark: {thread: 2}\n", 2, r"benchmark.thread.*did you mean 'threads'"),
    Case("unknown-budget-key", HEAD + PY + "budgets: {max_size: 3}\n", 2, r"budgets.max_size.*unknown key"),
    Case("unknown-export-key", HEAD + PY + "export: {opsets: 17}\n", 2, r"export.opsets.*did you mean 'opset'"),
    Case("unknown-output-key", HEAD + PY + "output: {folder: x}\n", 2, r"output.folder.*unknown key"),
    Case("unknown-pass-type", TINY + "passes: [{type: quantise}]\n", 2, r"unknown type 'quantise'; did you mean 'quantize'"),
    Case("unknown-model-source", HEAD + "model: {source: hub, input_shape: [1, 2]}\n", 2, r"unknown source 'hub'"),
    Case("out-of-range-runs", HEAD + PY + "benchmark: {runs: 0}\n", 2, r"benchmark.runs \(line 3\): must be >= 1"),
    Case("out-of-range-opset", HEAD + PY + "export: {opset: 99}\n", 2, r"export.opset.*must be <= 23"),
    Case("out-of-range-shape", HEAD + "model: {source: zoo, name: digits_cnn, input_shape: [1, 1, 0, 8]}\n",
         2, r"model.input_shape\[2\].*>= 1"),
    Case("negative-seed", TINY + "seed: -1\n", 2, r"seed.*>= 0"),
    Case("nan-budget", TINY + "budgets: {max_size_kb: .nan}\n", 2, r"budgets.max_size_kb.*finite"),
    Case("inf-budget", TINY + "budgets: {max_latency_ms: .inf}\n", 2, r"budgets.max_latency_ms.*finite"),
    Case("wrong-type-shape", HEAD + "model: {source: zoo, name: digits_cnn, input_shape: abc}\n",
         2, r"model.input_shape.*tuple"),
    Case("string-for-int", HEAD + PY + "benchmark: {runs: many}\n", 2, r"benchmark.runs.*integer.*many"),
    Case("duplicate-key", TINY + "seed: 1\nseed: 2\n", 2, r"duplicate key 'seed'.*line"),
    Case("torch-pass-after-onnx", TINY + "passes: [{type: quantize}, {type: finetune, epochs: 1}]\n",
         2, r"passes\[1\] \(finetune\) is a torch-stage pass but comes after"),
    Case("static-quant-synthetic", HEAD + PY + "passes: [{type: quantize, mode: static}]\n",
         2, r"passes\[0\] \(quantize\).*synthetic"),
    Case("output-dir-traversal", TINY + "output: {dir: ../../escape}\n", 2, r"output.dir.*'\.\.'"),
    Case("output-dir-absolute", TINY + "output: {dir: /etc/edgec-run}\n", 2, r"output.dir.*absolute"),
    # -- --set overrides (exit 2) --
    Case("set-unknown-path", TINY, 2, r"nosuch.*unknown key", extra=("--set", "nosuch.key=1")),
    Case("set-bad-index", TINY + "passes: [{type: quantize}]\n", 2, r"'passes.5' is not an index of a list with 1",
         extra=("--set", "passes.5.mode=static")),
    Case("set-missing-list", TINY, 2, r"'passes' is not in the recipe, so it has no item 5",
         extra=("--set", "passes.5.mode=static")),
    Case("set-into-scalar", TINY, 2, r"'benchmark.runs' is an int, not a section", extra=("--set", "benchmark.runs.x=1")),
    Case("set-no-equals", TINY, 2, r"expected dotted.path=value", extra=("--set", "benchmark.runs")),
    Case("set-out-of-range", TINY, 2, r"benchmark.runs.*>= 1", extra=("--set", "benchmark.runs=-5")),
    # -- model loading (exit 3: a runtime failure with a failed report) --
    Case("callable-no-module", HEAD + "model: {source: python, callable: 'no_such_mod:f', input_shape: [1, 2]}\n",
         3, r"importing 'no_such_mod' failed with ModuleNotFoundError"),
    Case("callable-no-file", HEAD + "model: {source: python, callable: 'nofile.py:f', input_shape: [1, 2]}\n",
         2, r"model.callable: 'nofile.py' does not exist"),
    Case("callable-syntax-error", HEAD + "model: {source: python, callable: 'broken.py:f', input_shape: [1, 2]}\n",
         3, r"importing 'broken.py' failed with SyntaxError", setup=write("broken.py", "def f(:\n")),
    Case("callable-missing-attr", HEAD + "model: {source: python, callable: 'tiny_models.py:nope', input_shape: [1, 2]}\n",
         3, r"has no 'nope'"),
    Case("callable-raises", HEAD + "model: {source: python, callable: 'tiny_models.py:raises', input_shape: [1, 2]}\n",
         3, r"raised RuntimeError: boom"),
    Case("callable-not-module", HEAD + "model: {source: python, callable: 'tiny_models.py:not_a_module', input_shape: [1, 2]}\n",
         3, r"returned a int, not a torch.nn.Module"),
    Case("output-tuple", HEAD + "model: {source: python, callable: 'tiny_models.py:TupleOutput', input_shape: [1, 1, 8, 8]}\n",
         3, r"returns a tuple.*single tensor"),
    Case("output-dict", HEAD + "model: {source: python, callable: 'tiny_models.py:DictOutput', input_shape: [1, 1, 8, 8]}\n",
         3, r"returns a dict.*single tensor"),
    Case("nan-weights", HEAD + "model: {source: python, callable: 'tiny_models.py:nan_weights', input_shape: [1, 1, 8, 8]}\n",
         3, r"weight '.*' holds NaN"),
    Case("wrong-rank-shape", HEAD + "model: {source: python, callable: 'tiny_models.py:tiny_cnn', input_shape: [1, 8, 8, 8, 8]}\n",
         3, r"fails on an input of model.input_shape \[1, 8, 8, 8, 8\]"),
    Case("checkpoint-missing", ckpt(), 2, r"model.path: 'w.pt' does not exist"),
    Case("checkpoint-truncated", ckpt(), 3, r"w.pt' \(model.path\) is not a readable PyTorch checkpoint",
         setup=save_truncated),
    Case("checkpoint-not-torch", ckpt(), 3, r"not a readable PyTorch checkpoint",
         setup=write("w.pt", "just some text\n")),
    Case("checkpoint-pickle-no-optin", HEAD + "model: {source: checkpoint, path: w.pt, input_shape: [1, 1, 8, 8]}\n",
         3, r"trust_pickle: true", setup=save_whole_model),
    Case("checkpoint-keys-mismatch", ckpt(), 3, r"does not fit the model: missing keys",
         setup=lambda d: save_state(d, lambda s: {f"x{k}": v for k, v in s.items()})),
    Case("checkpoint-shape-mismatch", ckpt("{source: python, callable: 'tiny_models.py:tiny_cnn', kwargs: {width: 4}}"),
         3, r"shape mismatches", setup=save_state),
    Case("torchvision-unknown", HEAD + "model: {source: torchvision, name: resnet19, input_shape: [1, 3, 32, 32]}\n",
         2, r"model.name \(line 2\): torchvision has no model 'resnet19'.*resnet18"),
    Case("model-too-big", HEAD + "model: {source: torchvision, name: vgg11, input_shape: [1, 3, 32, 32], max_memory_mb: 50}\n",
         3, r"vgg11.*MiB.*max_memory_mb"),
    Case("checkpoint-too-big", ckpt(extra=", max_memory_mb: 0.001"), 3, r"w.pt.*max_memory_mb", setup=save_state),
    # -- data (exit 3) --
    Case("imagefolder-empty", HEAD + PY + "data: {source: imagefolder, path: imgs, resize: 8, mean: [0.5], std: [0.5], grayscale: true}\n",
         3, r"imgs' has no images", setup=lambda d: (d / "imgs").mkdir()),
    Case("imagefolder-one-class", HEAD + PY + "data: {source: imagefolder, path: imgs, resize: 8, mean: [0.5], std: [0.5], grayscale: true}\n",
         3, r"only one class", setup=lambda d: save_images(d, 1)),
    Case("imagefolder-missing", HEAD + PY + "data: {source: imagefolder, path: imgs, resize: 8, mean: [0.5], std: [0.5], grayscale: true}\n",
         2, r"data.path: 'imgs' does not exist"),
    Case("npz-length-mismatch", npz(), 3, r"'y' must be one integer label per sample",
         setup=lambda d: save_npz(d, ny=30)),
    Case("npz-labels-out-of-range", npz(), 3, r"label.*12.*10 outputs",
         setup=lambda d: save_npz(d, labels=[i % 13 for i in range(40)])),
    Case("npz-negative-labels", npz(), 3, r"negative labels", setup=lambda d: save_npz(d, labels=[-1] * 40)),
    Case("npz-nan-inputs", npz(), 3, r"NaN or infinite", setup=lambda d: save_npz(d, nan=True)),
    Case("npz-wrong-shape", npz(), 3, r"shape \[3, 8, 8\] per sample", setup=lambda d: save_npz(d, shape=(3, 8, 8))),
    Case("npz-corrupt", npz(), 3, r"Cannot read .*d.npz", setup=write("d.npz", b"PK\x03\x04garbage")),
    Case("npz-missing-key", npz(", x_key: inputs"), 3, r"no array 'inputs'", setup=save_npz),
    # -- ONNX files given to inspect / bench --
    Case("onnx-corrupt", None, 2, r"m.onnx' is not a valid ONNX model", args=("inspect", "{dir}/m.onnx"),
         setup=write("m.onnx", b"\x08\x07garbage")),
    Case("onnx-truncated", None, 2, r"m.onnx' is not a valid ONNX model", args=("bench", "{dir}/m.onnx", "--runs", "1"),
         setup=truncate_onnx),
    Case("onnx-empty-file", None, 2, r"m.onnx' is not a valid ONNX model", args=("inspect", "{dir}/m.onnx"),
         setup=write("m.onnx", b"")),
    Case("onnx-unrunnable-op", None, 3, r"onnxruntime cannot load '.*m.onnx'.*NoSuchOp",
         args=("bench", "{dir}/m.onnx", "--runs", "1"), setup=save_onnx),
    Case("onnx-missing", None, 2, r"nope.onnx' does not exist", args=("bench", "{dir}/nope.onnx")),
    Case("bench-bad-shape", None, 2, r"--input-shape '1,x'", args=("bench", "{dir}/m.onnx", "--input-shape", "1,x"),
         setup=save_good_onnx),
    Case("bench-shape-mismatch", None, 2, r"--input-shape 1,8 does not fit .*m.onnx', whose input "
         r"'input' is 1,4\.", args=("bench", "{dir}/m.onnx", "--input-shape", "1,8"), setup=save_good_onnx),
    # -- an --input-shape the model cannot take, a dynamic height/width without one: every command
    # that takes an ONNX file refuses them as bench does, before any work (model_input.py) --
    Case("bench-fixed-batch", None, 2, r"--input-shape 8,4 does not fit .*whose input 'input' is 1,4\.",
         args=("bench", "{dir}/m.onnx", "--input-shape", "8,4"), setup=save_good_onnx),
    Case("inspect-shape-mismatch", None, 2, r"--input-shape 1,1,16,16 does not fit .*m.onnx', whose input 'x' is N,1,8,8 \(N: any batch\)",
         args=("inspect", "{dir}/m.onnx", "--input-shape", "1,1,16,16"), setup=save_conv_onnx),
    Case("inspect-channels-mismatch", None, 2, r"--input-shape 1,3,8,8 does not fit .*'x' is N,1,8,8",
         args=("inspect", "{dir}/m.onnx", "--input-shape", "1,3,8,8"), setup=save_conv_onnx),
    Case("check-shape-mismatch", None, 2, r"--input-shape 1,1,16,16 does not fit .*'x' is N,1,8,8",
         args=("check", "{dir}/m.onnx", "--target", "mcu", "--measure", "--input-shape", "1,1,16,16"), setup=save_conv_onnx),
    Case("doctor-shape-mismatch", None, 2, r"--input-shape 1,1,16,16 does not fit .*'x' is N,1,8,8",
         args=("doctor", "{dir}/m.onnx", "--input-shape", "1,1,16,16"), setup=save_conv_onnx),
    Case("partition-shape-mismatch", None, 2, r"--input-shape 1,1,16,16 does not fit .*'x' is N,1,8,8",
         args=("partition", "{dir}/m.onnx", "--devices", "1", "-o", "{dir}/p", "--input-shape", "1,1,16,16"),
         setup=save_conv_onnx),
    *[Case(f"{cmd[0]}-dynamic-hw", None, 2, r"m.onnx' has a dynamic input shape \(x: N,3,\?,\?\) beyond the "
           r"batch dimension.*Give the shape to measure with --input-shape", args=(cmd[0], "{dir}/m.onnx", *cmd[1:]),
           setup=save_dynamic_hw)
      for cmd in [("bench",), ("inspect",), ("check", "--target", "mcu"), ("doctor",),
                  ("partition", "--devices", "1", "-o", "{dir}/p")]],
    # -- models bench cannot feed: refused before anything runs (exit 2), saying why --
    Case("bench-two-inputs", None, 2, r"m.onnx' has 2 inputs \('x', 'x1'\); edgec measures single-input models",
         args=("bench", "{dir}/m.onnx"), setup=lambda d: save_conv_onnx(d, inputs=2)),
    Case("bench-int64-input", None, 2, r"m.onnx' takes input 'x' of type int64; edgec runs models on random "
         r"float32/float16 tensors", args=("bench", "{dir}/m.onnx"), setup=lambda d: save_conv_onnx(d, elem=7)),
    Case("check-measure-int64-input", None, 2, r"takes input 'x' of type int64",
         args=("check", "{dir}/m.onnx", "--target", "host", "--measure"), setup=lambda d: save_conv_onnx(d, elem=7)),
    # -- numeric options: nan and values past the config's bounds are option errors, not tracebacks --
    Case("bench-nan-min-seconds", None, 2, r"Invalid value for '--min-seconds': nan is not a finite number",
         args=("bench", "{dir}/m.onnx", "--min-seconds", "nan"), setup=save_good_onnx),
    Case("bench-threads-past-bound", None, 2, r"Invalid option:\n  - --threads: must be <= 256, got 1000",
         args=("bench", "{dir}/m.onnx", "--threads", "1000"), setup=save_good_onnx),
    Case("bench-warmup-past-bound", None, 2, r"--warmup: must be <= 100000",
         args=("bench", "{dir}/m.onnx", "--warmup", "100001"), setup=save_good_onnx),
    Case("check-budgets-nan-min-seconds", None, 2, r"--min-seconds: must be a finite number, got nan",
         args=("check-budgets", "{dir}/m.onnx", "--budgets", "{dir}/b.yaml", "--min-seconds", "nan"),
         setup=lambda d: (save_good_onnx(d), (d / "b.yaml").write_text("max_size_kb: 100\n"))),
    Case("partition-nan-link", None, 2, r"Invalid value for '--link-mbps': nan is not a finite number",
         args=("partition", "{dir}/m.onnx", "--devices", "1", "--link-mbps", "nan"), setup=save_good_onnx),
    Case("partition-inf-flash", None, 2, r"Invalid value for '--max-flash-kb': inf is not a finite number",
         args=("partition", "{dir}/m.onnx", "--devices", "1", "--max-flash-kb", "inf"), setup=save_good_onnx),
    Case("partition-epochs-past-bound", None, 2, r"--epochs: must be <= 10000, got 20000",
         args=("partition", "{dir}/r.yaml", "--method", "nonn", "--devices", "2", "--epochs", "20000"),
         setup=write("r.yaml", TINY)),
    Case("sensitivity-nan-max-drop", None, 2, r"Invalid value for '--max-drop': nan is not a finite number",
         args=("sensitivity", "{dir}/r.yaml", "--max-drop", "nan", "-o", "{dir}/s"), setup=write("r.yaml", TINY)),
    # -- the output folder --
    Case("output-exists", TINY, 2, r"out' already exists.*--force", setup=lambda d: (d / "out").mkdir()),
    Case("output-unfinished-run", TINY, 2, r"unfinished run .*out.partial.*--resume.*--force",
         setup=lambda d: (d / "out.partial").mkdir()),
    Case("output-resume-complete", TINY, 2, r"already complete", extra=("--resume",),
         setup=lambda d: (d / "out").mkdir()),
    Case("output-is-file", TINY, 2, r"out' exists and is a file", setup=write("out", "x")),
    Case("output-parent-is-file", TINY, 2, r"f' is a file, not a folder", args=("compress", "{recipe}", "-o", "{dir}/f/out", "-q"),
         setup=write("f", "x")),
    Case("output-unwritable", TINY, 2, r"ro/out'.*not writable", args=("compress", "{recipe}", "-o", "{dir}/ro/out", "-q"),
         setup=lambda d: (d / "ro").mkdir(), patch=_no_access),
    Case("output-mkdir-denied", TINY, 2, r"Cannot create run folder.*Permission denied", patch=_mkdir_denied),
    Case("disk-full-at-start", TINY, 2, r"Cannot create run folder .*out.partial.*No space left",
         patch=_disk_full("out.partial")),
    Case("disk-full-mid-run", TINY, 3, r"File system error on .*model.onnx' during 'write model.onnx': No space "
         r"left on device.*--resume", patch=_disk_full("model.onnx")),
]


def test_matrix_is_large_enough():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, monkeypatch):
    d = tmp_path / "work"
    d.mkdir()
    shutil.copy(FIXTURES / "tiny_models.py", d / "tiny_models.py")
    if case.setup:
        case.setup(d)
    if case.recipe is not None:
        (d / "r.yaml").write_text(textwrap.dedent(case.recipe))
    monkeypatch.chdir(d)
    if case.patch:
        case.patch(monkeypatch, d)
    args = [a.format(recipe=d / "r.yaml", out=d / "out", dir=d) for a in (*case.args, *case.extra)]
    result = CliRunner().invoke(cli, args)
    monkeypatch.undo()
    output = result.output
    assert result.exit_code == case.code, output
    assert re.search(case.match, output, re.S), output
    assert "Traceback" not in output and "internal error" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
