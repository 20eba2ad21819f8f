"""Pruning through the whole pipeline (CLI → prune → finetune → export → quantize → report).

test_prune.py checks the pass on its own; here the question is whether what it removed survives
export and quantization, and whether the report tells the user what happened.
"""

import json
import shutil

import pytest
from click.testing import CliRunner

from edgec.cli import cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PRUNE = "{type: prune, amount: 0.5, round_to: 1, schedule: {steps: 2, finetune_epochs: 1}}"
PIPELINE = """\
version: 1
model: {source: python, callable: "tiny_models.py:tiny_resnet", input_shape: [1, 1, 8, 8]}
data: {source: digits}
passes:
  - {type: prune, amount: 0.5, round_to: 1, schedule: {steps: 2, finetune_epochs: 1}}
  - {type: finetune, epochs: 2, lr: 0.05}
  - {type: quantize, mode: static, samples: 32}
benchmark: {threads: 1, runs: 10, warmup: 2}
"""


def compress(folder, text: str, *extra):
    from conftest import FIXTURES

    shutil.copy(FIXTURES / "tiny_models.py", folder / "tiny_models.py")
    (folder / "r.yaml").write_text(text)
    out = folder / "run"
    result = CliRunner().invoke(cli, ["compress", str(folder / "r.yaml"), "-o", str(out), "-q", *extra])
    return result, out


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    """One prune (2 steps) → finetune → static int8 run of the tiny residual/concat model."""
    result, out = compress(tmp_path_factory.mktemp("prune-pipeline"), PIPELINE)
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "report.json").read_text())


def test_pass_records_show_what_pruning_removed(pipeline_run):
    _, report = pipeline_run
    prune, finetune, quant = report["passes"]
    assert [p["type"] for p in report["passes"]] == ["prune", "finetune", "quantize"]
    assert prune["params_after"] < 0.5 * prune["params_before"]
    d = prune["details"]
    assert d["params_before"] == prune["params_before"] and d["params_after"] == prune["params_after"]
    assert d["macs_after"] < 0.5 * d["macs_before"]
    assert [s["step"] for s in d["steps"]] == [1, 2] and all("val_accuracy" in s for s in d["steps"])
    assert d["steps"][0]["macs"] > d["steps"][1]["macs"]
    assert d["achieved_ratio"] == pytest.approx(0.5, abs=0.05) and d["cut_verified"] is True
    assert d["channels"]["head"] == [10, 10]  # the output layer is protected
    assert d["channels"]["branch_a.0"][1] < 24 and d["channels"]["branch_b.0"][1] < 8
    # finetune starts from the pruned model and the quantizer from the finetuned export
    assert finetune["params_before"] == prune["params_after"] == finetune["params_after"]
    assert len(finetune["details"]["epochs"]) == 2
    assert quant["params_before"] < 0.5 * report["baseline"]["params"]


def test_exported_onnx_is_really_smaller_and_matches_torch(pipeline_run):
    from edgec.graph_stats import analyze_onnx

    out, report = pipeline_run
    base, pruned = analyze_onnx(out / "baseline.onnx"), analyze_onnx(out / "exported.onnx")
    prune = report["passes"][0]["details"]
    # the export folds BatchNorm into the convs, so ONNX counts differ from torch's a little
    assert pruned.params / base.params == pytest.approx(prune["params_after"] / prune["params_before"],
                                                        rel=0.05)
    assert pruned.params < 0.5 * base.params and pruned.macs < 0.5 * base.macs
    assert report["passes"][2]["params_before"] == pruned.params  # the quantizer got the pruned file
    assert pruned.macs == pytest.approx(prune["macs_after"], rel=0.05)  # both count conv/linear MACs
    assert (out / "exported.onnx").stat().st_size < 0.6 * (out / "baseline.onnx").stat().st_size
    parity = report["export"]["parity"]["compressed"]
    assert parity["max_abs_diff"] < 1e-3 and parity["top1_agreement"] == 1.0
    # the benchmarked final model (int8) carries the pruned shapes too
    assert report["compressed"]["macs"] < 0.5 * report["baseline"]["macs"]
    assert report["compressed"]["params"] == pruned.params
    assert report["ratios"]["size"] > 2  # fewer channels and int8 weights (graph overhead dominates)


def test_report_markdown_has_per_layer_channels(pipeline_run):
    out, report = pipeline_run
    text = (out / "report.md").read_text()
    assert "## Pruning: prune" in text
    assert "| layer | channels before → after | removed |" in text
    before, after = report["passes"][0]["details"]["channels"]["branch_a.0"]
    assert f"| branch_a.0 | {before} → {after} | {before - after} |" in text
    assert "| head | 10 → 10 | 0 (produces the model output) |" in text
    removed = report["passes"][0]["params_before"] - report["passes"][0]["params_after"]
    assert f"physically removed {removed:,} parameters" in text
    # torch-module counts (BatchNorm not folded) are labelled, never passed off as the summary's
    # ONNX counts: the note, the Pruning section and the line under the Passes table say which
    note = report["passes"][0]["notes"][0]
    assert "(torch module, BatchNorm not folded)" in note and "MACs" in note
    assert "(torch module, BatchNorm not folded)." in text
    assert "The summary counts the exported ONNX graph, where BatchNorm is folded" in text
    assert "| step | cumulative ratio | MACs | params | val accuracy |" in text


def test_unstructured_through_the_pipeline_says_no_speed(tmp_path):
    text = PIPELINE.replace(PRUNE, "{type: prune, structure: unstructured, amount: 0.8}")
    text = text.replace("  - {type: quantize, mode: static, samples: 32}\n", "")
    result, out = compress(tmp_path, text)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    b, c = report["baseline"], report["compressed"]
    assert c["macs"] == b["macs"]  # nothing removed physically (the exporter may fold a few
    assert c["params"] == pytest.approx(b["params"], rel=0.01)  # constants differently)…
    assert c["nonzero_params"] < 0.35 * b["nonzero_params"]  # …but the zeros reach the ONNX file
    assert report["ratios"]["size_gzip"] > 2
    assert any("kernels are dense" in f for f in report["findings"])
    md = (out / "report.md").read_text()
    assert "no sparse kernels" in md and "| layer | zero weights |" in md


def test_unreachable_target_fails_the_run_with_exit_3(tmp_path):
    text = PIPELINE.replace("amount: 0.5, round_to: 1, schedule: {steps: 2, finetune_epochs: 1}",
                            "target_macs: 100")
    result, out = compress(tmp_path, text)
    assert result.exit_code == 3
    assert "cannot bring macs down" in result.output
    report = json.loads((out.with_name(out.name + ".partial") / "report.json").read_text())
    assert report["status"] == "failed" and report["error"]["step"] == "pass prune"


def test_misspelt_prune_field_exits_2_before_any_work(tmp_path):
    result, out = compress(tmp_path, PIPELINE.replace("amount: 0.5", "amont: 0.5"))
    assert result.exit_code == 2
    assert "amont" in result.output and not out.exists()


BLOCKS = """\
version: 1
model: {source: python, callable: "tiny_models.py:tiny_blocks", input_shape: [1, 1, 8, 8]}
data: {source: digits}
passes:
  - {type: prune, structure: block, amount: 0.67}
  - {type: prune, amount: 0.5, round_to: 1}
  - {type: finetune, epochs: 1, lr: 0.05}
  - {type: quantize, mode: static, samples: 32}
benchmark: {threads: 1, runs: 10, warmup: 2}
"""


def test_block_then_channel_pruning_through_the_pipeline(tmp_path):
    from edgec.graph_stats import analyze_onnx

    result, out = compress(tmp_path, BLOCKS)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    blocks, channels = report["passes"][0]["details"], report["passes"][1]["details"]
    removed = [n for n, b in blocks["blocks"].items() if b["removed"]]
    assert len(blocks["blocks"]) == 3 and len(removed) == 2  # 0.67 x 3 blocks
    assert all(b["influence"] is not None for b in blocks["blocks"].values())
    assert channels["macs_before"] == blocks["macs_after"]  # channels pruned what blocks left
    base, pruned = analyze_onnx(out / "baseline.onnx"), analyze_onnx(out / "exported.onnx")
    assert pruned.op_counts["Conv"] == base.op_counts["Conv"] - 4  # two blocks of two convs gone
    assert pruned.macs < 0.5 * base.macs
    assert report["export"]["parity"]["compressed"]["top1_agreement"] == 1.0
    text = (out / "report.md").read_text()
    assert "| residual block | influence | removed |" in text
    assert f"| {removed[0]} | {blocks['blocks'][removed[0]]['influence']:.4f} | yes |" in text
