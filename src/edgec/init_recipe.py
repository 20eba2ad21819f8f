"""`edgec init`: write a commented starter recipe for a model source and a data kind.

The text is assembled from small commented blocks, then validated with the real recipe model
before it is written, so `edgec init` can never hand a user a recipe that `edgec validate` rejects.
"""

from __future__ import annotations

from pathlib import Path

from edgec.errors import OutputError, UsageError

MODEL_SOURCES = ("zoo", "torchvision", "python", "checkpoint")
DATA_KINDS = ("digits", "npz", "imagefolder", "synthetic")


def default_data(model: str) -> str:
    """The data kind `edgec init` offers first for ``model``: one their starter recipe runs with."""
    return "imagefolder" if model == "torchvision" else "digits"


def _check_combination(model: str, data: str) -> None:
    """A starter recipe must run, not only validate: no torchvision network takes the digits'
    single channel (mobilenet_v3_small failed at load: 'expected input[1, 1, 8, 8] to have 3
    channels'), and digits has no 3-channel form."""
    if model == "torchvision" and data == "digits":
        raise UsageError(
            "edgec init: --model torchvision with --data digits cannot run: torchvision's "
            "networks take 3-channel images, and the bundled digits are 1-channel 8×8 images.",
            hint="For the digits use --model zoo (edgec's trained reference models) or --model "
                 "python (your own 1-channel network); for a torchvision model use --data "
                 "imagefolder, npz or synthetic.")


def _shape(model: str, data: str) -> list[int]:
    if model == "zoo" or data == "digits":
        return [1, 1, 8, 8]  # the zoo models and the bundled digits are 1×8×8
    return [1, 3, 224, 224]


def _model_block(model: str, shape: list[int]) -> str:
    blocks = {
        "zoo": """\
  source: zoo                 # a reference model edgec trains on bundled data (cached)
  name: digits_cnn            # or resnet20_digits, resnet56_digits""",
        "torchvision": """\
  source: torchvision         # an architecture by name; nothing is downloaded
  name: mobilenet_v3_small    # any torchvision.models name
  num_classes: 10
  # weights: my_weights.pt    # a local state dict; without it weights are random (latency only)""",
        "python": """\
  source: python              # your own code: a function or class returning an nn.Module
  callable: "my_model.py:build"   # path relative to this file (or package.module:function)
  kwargs: {}                  # keyword arguments for the callable""",
        "checkpoint": f"""\
  source: checkpoint          # a torch.save file: a state dict plus its architecture
  path: model.pt              # relative to this file
  architecture: {_checkpoint_architecture(shape)}
  trust_pickle: false         # true only for whole pickled models from a source you trust""",
    }
    line = f"  input_shape: {shape}"
    return f"{blocks[model]}\n{line:<29} # batch first"  # in the column of the others


def _checkpoint_architecture(shape: list[int]) -> str:
    if shape[1] == 1:  # torchvision nets take 3 channels: 1-channel data needs a network of your own
        return '{source: python, callable: "my_model.py:build"}   # the network of the weights'
    return "{source: torchvision, name: resnet18, num_classes: 10}"


def _data_block(data: str, shape: list[int]) -> str:
    gray = shape[1] == 1
    blocks = {
        "digits": "  source: digits              # scikit-learn's 1,797 real 8×8 digits, 10 classes",
        "npz": """\
  source: npz                 # a NumPy .npz with arrays x (N×C×H×W float) and y (N int labels)
  path: data.npz              # relative to this file""",
        "imagefolder": f"""\
  source: imagefolder         # root/<class>/<image>, or root/train/... and root/val/...
  path: images
  resize: {shape[-1]}
  mean: {[0.5] if gray else [0.485, 0.456, 0.406]}
  std: {[0.5] if gray else [0.229, 0.224, 0.225]}
  grayscale: {"true" if gray else "false"}""",
        "synthetic": """\
  source: synthetic           # random inputs: latency and size only, no accuracy
  samples: 64""",
    }
    return blocks[data]


def _passes_block(data: str) -> str:
    if data == "synthetic":
        return """\
  # Random inputs can neither calibrate int8 nor train. Channel pruning needs no data and makes
  # the model really smaller and faster (mobilenet_v3_small: 2.0x smaller, 1.6x faster).
  - {type: prune, amount: 0.3, importance: l2}
  # Without real data the int8 choices are slow on CPU for conv nets: dynamic (ConvInteger) ran
  # 0.12x and fp16 0.34x the float speed on mobilenet_v3_small. Give real data (npz,
  # imagefolder) and use {type: quantize, mode: static} for fast int8."""
    return """\
  # - {type: prune, amount: 0.3}                # remove 30% of channels: smaller and faster
  # - {type: finetune, epochs: 3}               # recover accuracy after pruning (needs labels)
  - {type: quantize, mode: static, samples: 256}  # int8, calibrated on the data above"""


def render_recipe(model: str, data: str) -> str:
    """The starter recipe text for ``model`` source and ``data`` kind."""
    if model not in MODEL_SOURCES or data not in DATA_KINDS:
        raise UsageError(f"edgec init: unknown --model '{model}' or --data '{data}'.",
                         hint=f"Models: {', '.join(MODEL_SOURCES)}; data: {', '.join(DATA_KINDS)}.")
    _check_combination(model, data)
    shape = _shape(model, data)
    accuracy = "" if data == "synthetic" else "\n#   max_accuracy_drop: 0.01     # at most 1 point lost"
    return f"""\
# edgec recipe, written by `edgec init --model {model} --data {data}`.
# Check it:  edgec validate <this file>      Run it:  edgec compress <this file>
# Every field: docs/recipe.md, `edgec schema`, `edgec passes` (passes and their options).
version: 1

# The model to compress.
model:
{_model_block(model, shape)}

# Data for calibration, training and accuracy.
data:
{_data_block(data, shape)}

# Compression steps, in order; torch-stage passes (prune, finetune) before quantize.
passes:
{_passes_block(data)}

# How baseline and compressed are measured (side by side, interleaved, onnxruntime CPU).
benchmark:
  threads: 1                  # your device's core count for its real speed; 1 is most stable
  runs: 200

# Limits the compressed model must meet; a missed one makes `edgec compress` exit 1.
# budgets:
#   max_size_kb: 500
#   min_speedup: 1.2{accuracy}

# Where results go (`-o` wins); each run writes report.html, report.md, report.json, model.onnx.
# output: {{dir: runs/my-model}}
"""


def check_starter_path(path: Path, force: bool) -> None:
    """Refuse a path the starter recipe cannot go to, before any question is asked. A folder or
    a device (/dev/null: 'wrote /dev/null. Next: edgec validate /dev/null') is never replaced,
    not even with --force."""
    from edgec.output_files import output_file_problem

    if path.is_file() and not force:
        raise UsageError(f"'{path}' already exists; pass --force to replace it, or another file name.")
    problem = output_file_problem(path, "edgec init", "recipe.yaml")  # also a parent that is a file
    if problem:
        raise UsageError(problem)


def write_starter(path: Path, model: str, data: str, force: bool) -> str:
    """Validate and write the starter recipe; returns its text. Raises UsageError, or
    OutputError when the file cannot be written after all (disk full, permissions)."""
    from edgec.recipe import validate_recipe
    from edgec.recipe_yaml import parse_yaml

    check_starter_path(path, force)
    text = render_recipe(model, data)
    raw, lines = parse_yaml(text, str(path))
    validate_recipe(raw, source=f"starter recipe for {model}/{data}", lines=lines)  # never write a bad one
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"Cannot write '{path}': {exc.strerror or exc}.") from None
    return text
