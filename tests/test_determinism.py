"""Same recipe + seed on the same machine → byte-identical ONNX files and identical non-timing
metrics. What may differ is declared in report.json (environment.nondeterministic)."""

from __future__ import annotations

import json

RECIPE = """\
version: 1
model: {source: python, callable: "tiny_models.py:tiny_cnn", input_shape: [1, 1, 8, 8]}
data: {source: digits}
passes:
  - {type: finetune, epochs: 1}
  - {type: quantize, mode: static, per_channel: true, samples: 64}
benchmark: {threads: 1, runs: 5, warmup: 1}
budgets: {max_size_kb: 200, max_accuracy_drop: 0.05}
seed: 3
"""

TIMING_RATIOS = ("speedup_p1", "speedup_p50", "speedup_p90", "speedup_paired")


def _comparable(report: dict) -> dict:
    """The report without what it declares nondeterministic (timings) or run-specific (paths)."""
    r = json.loads(json.dumps(report))
    for key in ("started", "seconds", "run_dir", "op_profile"):
        r.pop(key)
    for side in ("baseline", "compressed"):
        r[side].pop("latency_ms")
        r[side].pop("path")
    for key in TIMING_RATIOS:
        r["ratios"].pop(key)
    for p in r["passes"]:
        p.pop("seconds")
    r["findings"] = [f for f in r["findings"] if "SLOWER" not in f]
    return r


def test_two_runs_are_identical(write_recipe, tmp_path):
    import onnx

    import edgec

    recipe = write_recipe(RECIPE)
    a = edgec.compress(recipe, output=tmp_path / "a")
    b = edgec.compress(recipe, output=tmp_path / "b")
    files = sorted(p.name for p in (tmp_path / "a").glob("*.onnx"))
    assert {"baseline.onnx", "exported.onnx", "model.onnx"} <= set(files)
    assert files == sorted(p.name for p in (tmp_path / "b").glob("*.onnx"))
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        # every ONNX file edgec writes passes the checker with full (shape/type) checks
        onnx.checker.check_model(onnx.load(str(tmp_path / "a" / name)), full_check=True)
    assert (tmp_path / "a" / "recipe.yaml").read_text() == (tmp_path / "b" / "recipe.yaml").read_text()
    ra, rb = a.to_dict(), b.to_dict()
    assert _comparable(ra) == _comparable(rb)
    assert ra["compressed"]["accuracy"] is not None  # the comparison covered real metrics
    declared = ra["environment"]["nondeterministic"]
    assert any("latency_ms" in k for k in declared)
    assert all(why for why in declared.values())
    assert "## Reproducibility" in (tmp_path / "a" / "report.md").read_text()

