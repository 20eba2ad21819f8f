"""A sweep computes a torch stage (export, pruning, training) once and its variants reuse it, only
when they would have computed the same files."""

from __future__ import annotations

import filecmp
import json
import shutil
import threading
import time
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from edgec.cli import cli
from edgec.stage_cache import StageCache

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RECIPE = """\
version: 1
model: {source: python, callable: "tiny_models.py:tiny_cnn", input_shape: [1, 1, 8, 8]}
data: {source: digits}
passes:
  - {type: finetune, epochs: 1, lr: 0.05}
  - {type: quantize, mode: static, samples: 32}
benchmark: {threads: 1, runs: 5, warmup: 1}
"""


def sweep(folder, *grid):
    from conftest import FIXTURES

    shutil.copy(FIXTURES / "tiny_models.py", folder / "tiny_models.py")
    (folder / "r.yaml").write_text(RECIPE)
    args = ["sweep", str(folder / "r.yaml"), "-o", str(folder / "sw"), "-q", "--json"]
    for g in grid:
        args += ["--grid", g]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return folder / "sw"


def entries(sw):
    return sorted(p.name for p in (sw / "cache").iterdir() if (p / "meta.json").is_file())


def test_variants_that_differ_after_export_share_one_torch_stage(tmp_path):
    sw = sweep(tmp_path, "passes.1.per_channel=true,false")
    assert len(entries(sw)) == 1
    first, second = (json.loads((sw / "variants" / v / "report.json").read_text())
                     for v in ("v000", "v001"))
    assert "reused" not in " ".join(first["passes"][0]["notes"])
    assert "reused from the sweep's shared stage" in second["passes"][0]["notes"][-1]
    assert second["passes"][0]["details"] == first["passes"][0]["details"]  # the same training
    assert second["export"] == first["export"]
    for name in ("baseline.onnx", "exported.onnx"):
        assert filecmp.cmp(sw / "variants/v000" / name, sw / "variants/v001" / name, shallow=False)
    assert second["compressed"]["size_bytes"] != first["compressed"]["size_bytes"]  # own quantize


def test_a_different_torch_pass_is_computed_not_reused(tmp_path):
    sw = sweep(tmp_path, "passes.0.lr=0.05,0.01")
    assert len(entries(sw)) == 2
    reports = [json.loads((sw / "variants" / v / "report.json").read_text()) for v in ("v000", "v001")]
    assert not any("reused" in " ".join(r["passes"][0]["notes"]) for r in reports)


def test_a_second_claimant_waits_and_then_reuses(tmp_path):
    cache, work = StageCache(tmp_path / "cache"), tmp_path / "work"
    work.mkdir()
    (work / "baseline.onnx").write_bytes(b"model")
    seen, order = {}, []

    def first():
        with cache.claim("k") as shared:
            order.append("first computes")
            time.sleep(0.3)
            shared.save(work, work / "baseline.onnx", SimpleNamespace(passes=[], export={"opset": 17}))

    def second():
        time.sleep(0.1)
        with cache.claim("k") as shared:
            order.append("second gets the entry")
            seen["meta"] = shared.meta

    threads = [threading.Thread(target=f) for f in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order == ["first computes", "second gets the entry"]
    assert seen["meta"]["export"] == {"opset": 17} and seen["meta"]["files"] == ["baseline.onnx"]
    with cache.claim("other") as shared:
        assert not shared.hit
