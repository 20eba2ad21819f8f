from types import SimpleNamespace

from edgec.budgets import check_budgets
from edgec.recipe import BudgetsConfig


def _metrics(size, p50, accuracy, params=1000, macs=10_000):
    return SimpleNamespace(size_bytes=size, size_gzip_bytes=size // 2, params=params, macs=macs,
                           latency_ms=SimpleNamespace(p50=p50, p90=p50 * 1.2), accuracy=accuracy)


def test_each_budget_direction():
    base, comp = _metrics(40_000, 1.0, 0.99), _metrics(10_000, 0.5, 0.985)
    ratios = {"size": 4.0, "speedup_p50": 2.0, "accuracy_drop": 0.005}
    budgets = BudgetsConfig(max_size_kb=10, min_speedup=2.5, min_size_reduction=3.9,
                            max_accuracy_drop=0.01, min_accuracy=0.99, max_latency_ms=0.55,
                            latency_percentile="p90")
    rows = {r.name: r for r in check_budgets(budgets, base, comp, ratios)}
    assert rows["max_size_kb"].passed  # 9.77 KiB <= 10
    assert not rows["min_speedup"].passed  # 2.0 < 2.5
    assert rows["min_size_reduction"].passed
    assert rows["max_accuracy_drop"].passed
    assert not rows["min_accuracy"].passed
    assert not rows["max_latency_ms"].passed and rows["max_latency_ms"].actual == 0.6


def test_unmeasurable_budget_fails():
    base, comp = _metrics(1, 1.0, None), _metrics(1, 1.0, None)
    (row,) = check_budgets(BudgetsConfig(max_accuracy_drop=0.01), base, comp, {"accuracy_drop": None})
    assert row.actual is None and row.passed is False


def test_no_budgets_no_rows():
    assert check_budgets(BudgetsConfig(), _metrics(1, 1, 1), _metrics(1, 1, 1), {}) == []


def test_numbers_read_as_people_write_them():
    from edgec.budgets import number
    from edgec.report_text import _shrink

    assert (number(200000), number(93964), number(0.01), number(2.5e-7)) == \
        ("200,000", "93,964", "0.01", "2.5e-07")
    assert _shrink(3.58, "smaller", "larger") == "3.58x smaller"
    assert _shrink(0.55, "smaller", "larger") == "1.82x larger"  # a model that grew says so
    assert _shrink(0.999, "fewer", "more") == "1.00x fewer" and _shrink(None, "a", "b") == "n/a"


def test_slower_finding_names_the_cause_and_fix_for_the_mode_that_ran():
    from edgec.report import find_findings

    base = SimpleNamespace(latency_ms=SimpleNamespace(p50=1.0), macs=10_000)
    comp = SimpleNamespace(latency_ms=SimpleNamespace(p50=4.0), macs=10_000, params=100,
                           nonzero_params=100)

    def finding(mode, **ops):
        details = {"mode": mode, "quant_ops": ops}
        passes = [SimpleNamespace(type="quantize", details=details)] if mode else []
        [text] = find_findings(base, comp, {"speedup_p50": 0.25}, passes)
        return text

    conv = finding("dynamic", ConvInteger=3, DynamicQuantizeLinear=3)
    assert "SLOWER" in conv and "turned 3 Conv node(s) into ConvInteger" in conv
    # an MLP: its dynamic graph has MatMulInteger and no Conv, which the fix must not blame
    mlp = finding("dynamic", MatMulInteger=2, DynamicQuantizeLinear=2, Cast=2)
    assert "Conv" not in mlp and "each of the 2 MatMulInteger node(s)" in mlp
    assert "DynamicQuantizeLinear" in mlp and "mode: static" in mlp and "mode: auto" in mlp
    assert "Conv" not in finding("dynamic")  # ops not recorded: no op is named that may not be there
    assert "mode: static" in finding("fp16")
    assert "mode: auto" in finding("static")
    assert "edgec doctor" in finding(None)
    assert find_findings(base, SimpleNamespace(**{**vars(comp), "latency_ms": base.latency_ms}),
                         {"speedup_p50": 1.0}, []) == []


def test_slower_dynamic_int8_mlp_finding_names_what_its_graph_has(tmp_path):
    """The fix said 'Dynamic int8 turns Conv into ConvInteger … for conv nets' for an MLP with no
    Conv: the finding follows the ops the real quantize pass recorded."""
    import torch
    import torch.nn as nn

    from edgec.passes.base import PassContext
    from edgec.passes.quantize import Quantize, QuantizeConfig
    from edgec.progress import Progress
    from edgec.report import find_findings

    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    src, dst = tmp_path / "mlp.onnx", tmp_path / "int8.onnx"
    torch.onnx.export(mlp, torch.randn(1, 1, 8, 8), str(src), opset_version=17, dynamo=False)
    ctx = PassContext(data=None, baseline=None, input_shape=(1, 1, 8, 8), seed=0, run_dir=tmp_path,
                      recipe_dir=tmp_path, progress=Progress(enabled=False))
    quantize = Quantize(QuantizeConfig(type="quantize", mode="dynamic"))
    quantize.apply(src, dst, ctx)
    record = SimpleNamespace(type="quantize", details=quantize.details)
    base = SimpleNamespace(latency_ms=SimpleNamespace(p50=1.0), macs=2_368)
    comp = SimpleNamespace(latency_ms=SimpleNamespace(p50=1.4), macs=2_368, params=100,
                           nonzero_params=100)
    [text] = find_findings(base, comp, {"speedup_p50": 0.71}, [record])
    assert "Conv" not in text and "MatMulInteger" in text and "DynamicQuantizeLinear" in text


def test_slower_int8_finding_gives_the_reason_of_the_cpu_the_report_records():
    """'no VNNI' was said on a VNNI machine: the reason follows the recorded CPU flags."""
    from edgec.doctor import NO_VNNI
    from edgec.report import find_findings

    base = SimpleNamespace(latency_ms=SimpleNamespace(p50=1.0), macs=10_000)
    comp = SimpleNamespace(latency_ms=SimpleNamespace(p50=2.0), macs=10_000, params=100,
                           nonzero_params=100)
    static = [SimpleNamespace(type="quantize", details={"mode": "static"})]

    def finding(flags, machine="x86_64"):
        env = {"cpu_flags": flags, "machine": machine}
        [text] = find_findings(base, comp, {"speedup_p50": 0.5}, static, environment=env)
        return text

    vnni = finding(["avx2", "avx512f", "avx512_vnni"])
    assert "fast int8 dot products" in vnni and "no VNNI" not in vnni and "mode: auto" in vnni
    assert NO_VNNI in finding(["avx2", "fma"])
    arm = finding(["asimd"], machine="aarch64")
    assert "no int8 dot-product instructions" in arm and "VNNI" not in arm
    assert "fast int8 dot products" in finding(["asimd", "asimddp"], machine="aarch64")


def test_zoo_model_on_another_digits_split_is_flagged():
    """A zoo model learnt seed 0's train split: with data.seed 3, 389 of the 539 eval images are
    ones it was trained on, and its 100% accuracy is no result."""
    from edgec.report import find_findings

    same = SimpleNamespace(latency_ms=SimpleNamespace(p1=1.0, p50=1.0), macs=10, params=10,
                           nonzero_params=10, accuracy=1.0)
    ratios = {"speedup_p1": 1.0, "accuracy_drop": 0.0}

    def findings(model, data):
        return find_findings(same, same, ratios, [], recipe={"model": model, "data": data})

    zoo = {"source": "zoo", "name": "digits_cnn"}
    [text] = findings(zoo, {"source": "digits", "seed": 3})
    assert "data.seed is 3" in text and "389 of the 539 eval images (72%)" in text
    assert "100.00% baseline, 100.00% compressed" in text and "Keep data.seed: 0" in text
    assert findings(zoo, {"source": "digits", "seed": 0}) == []
    assert findings({"source": "python", "callable": "m.py:f"}, {"source": "digits", "seed": 3}) == []


def test_slower_finding_reads_the_gated_p1_speedup_not_p50():
    """On a noisy host p50 can say 'slower' while the p1 ratio min_speedup decides on says
    faster: the finding follows the gate, and quotes the p1 times it used."""
    from edgec.report import find_findings

    base = SimpleNamespace(latency_ms=SimpleNamespace(p1=1.0, p50=1.0), macs=10_000)
    comp = SimpleNamespace(latency_ms=SimpleNamespace(p1=0.8, p50=1.3), macs=10_000, params=100,
                           nonzero_params=100)
    assert find_findings(base, comp, {"speedup_p1": 1.25, "speedup_p50": 0.77}, []) == []
    slow = SimpleNamespace(**{**vars(comp), "latency_ms": SimpleNamespace(p1=2.0, p50=1.0)})
    [text] = find_findings(base, slow, {"speedup_p1": 0.5, "speedup_p50": 1.0}, [])
    assert "0.50x the baseline speed (p1 2.000 ms vs 1.000 ms)" in text


def test_a_miss_never_reads_limit_equal_to_actual():
    """Limit and actual get the digits it takes to tell them apart; growth budgets read as %."""
    from edgec.budgets import BudgetRow

    near = BudgetRow("min_speedup", 1.25, 1.2403, False, "x", "fail", 1.2012, 1.2499)
    assert near.missed_text() == "min_speedup (limit 1.25, actual 1.2403 x, CI 1.2012–1.2499)"
    plain = BudgetRow("max_size_kb", 200, 200.01, False, "KiB")
    assert plain.missed_text() == "max_size_kb (limit 200, actual 200.01 KiB)"
    growth = BudgetRow("max_size_growth", 0.05, 0.050004, False, "fraction", "fail")
    assert growth.missed_text() == "max_size_growth (limit +5%, actual +5.0004%)"
    unmeasured = BudgetRow("max_accuracy_loss", 0.01, None, False, "fraction")
    assert unmeasured.missed_text() == "max_accuracy_loss (limit +1 points, actual not measured)"
    far = BudgetRow("min_speedup", 1.5, 1.49, True, "x", "inconclusive", 1.4, 1.6)
    assert far.texts() == ("1.5", "1.49 x", "1.4–1.6")  # short where short is enough
