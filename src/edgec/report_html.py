"""report.html: one self-contained page per run (inline CSS and SVG; no script, no network).

Sections: verdict, summary table, findings, budgets, passes, per-layer charts (params, output
channels, non-zero weights and weight precision, baseline vs compressed, matched by ONNX node
name) and the operator time profile. The numbers are the report's own (report_text's rows) or read
from the run's ONNX files, so the page never disagrees with report.md.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from edgec.config import ConfigModel
from edgec.profile_ops import ProfileConfig

if TYPE_CHECKING:
    from edgec.report import Report

MAX_LAYERS = 150  # beyond this the charts stop being readable; the table says how many were left


class ReportConfig(ConfigModel):
    """What the run folder's human-readable reports contain."""

    html: bool = Field(True, description="Write report.html: summary, budgets, per-layer charts and "
                       "the operator time profile in one self-contained page.")
    profile: ProfileConfig = Field(default_factory=ProfileConfig,
                                   description="onnxruntime operator profile (where time goes).")


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:60em;
color:#1d2329;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;border-bottom:1px solid #eee;
text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f4f6f8}
.verdict{display:inline-block;padding:.3em .8em;border-radius:4px;font-weight:bold;color:#fff}
.ok{background:#2e9e5b}.bad{background:#c62828}.warn{background:#e0a030}
.PASS{color:#2e9e5b;font-weight:bold}.FAIL{color:#c62828;font-weight:bold}
.note{background:#fff8e1;border-left:4px solid #e0a030;padding:.4em .8em;margin:.4em 0}
td.txt{text-align:left}.muted{color:#66707a;font-size:.9em}svg.chart{display:block;margin:1em 0}
.profiles{display:flex;gap:2em;flex-wrap:wrap}
"""


def _table(header: list[str], rows: list[list[str]], raw_cols: tuple[int, ...] = (),
           text_cols: tuple[int, ...] = ()) -> str:
    """An HTML table; ``raw_cols`` hold trusted markup, ``text_cols`` prose (left-aligned)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f"<td{' class=txt' if i in text_cols else ''}>{c if i in raw_cols else escape(str(c))}</td>"
        for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def layer_rows(run_dir: Path, input_shape: tuple[int, ...] | None) -> list[dict]:
    """Per compute layer of the baseline: its stats before and (matched by name) after."""
    from edgec.graph_stats import analyze_onnx

    base_path, comp_path = run_dir / "baseline.onnx", run_dir / "model.onnx"
    if not base_path.is_file() or not comp_path.is_file():
        return []
    base, comp = analyze_onnx(base_path, input_shape), analyze_onnx(comp_path, input_shape)
    after = {layer.name: layer for layer in comp.layers}

    def channels(layer) -> int | None:
        shape = layer.output_shape if layer is not None else None
        return shape[1] if shape and len(shape) > 1 and isinstance(shape[1], int) else None

    rows = []
    for b in base.layers:
        c = after.get(b.name)
        rows.append({
            "name": b.name, "op_type": b.op_type, "params_before": b.params,
            "params_after": c.params if c else 0, "channels_before": channels(b),
            "channels_after": channels(c), "nonzero_after": c.nonzero_params if c else 0,
            "dtype_after": c.weight_dtype if c else "none", "op_after": c.op_type if c else "(removed)",
        })
    return rows


def _layer_section(rows: list[dict]) -> str:
    from edgec.html_charts import PALETTE, Series, bar_chart

    if not rows:
        return "<p class='muted'>No per-layer data: the run did not reach the export.</p>"
    shown = rows[:MAX_LAYERS]
    names = [r["name"] for r in shown]
    parts = [bar_chart("Parameters per layer", names, [
        Series("baseline", [r["params_before"] for r in shown]),
        Series("compressed", [r["params_after"] for r in shown])])]
    with_channels = [r for r in shown if r["channels_before"] is not None]
    if with_channels:
        parts.append(bar_chart("Output channels per layer", [r["name"] for r in with_channels], [
            Series("baseline", [r["channels_before"] for r in with_channels]),
            Series("compressed", [r["channels_after"] or 0 for r in with_channels])]))
    parts.append(bar_chart("Non-zero weights after compression (1 - sparsity)", names, [
        Series("compressed", [r["nonzero_after"] / r["params_after"] if r["params_after"] else 0.0
                              for r in shown])], percent=True))
    dtypes = [r["dtype_after"] or "none" for r in shown]
    legend = [(d, PALETTE.get(d, "#555")) for d in dict.fromkeys(dtypes)]
    parts.append(bar_chart("Weight precision after compression (bar = parameters)", names, [
        Series("compressed", [r["params_after"] for r in shown],
               colors=[PALETTE.get(d, "#555") for d in dtypes])], legend=legend))
    quantized = sum(1 for d in dtypes if d.startswith(("int", "uint")))
    table = _table(["layer", "op (after)", "params", "channels", "non-zero", "weights"], [
        [r["name"], r["op_after"], f"{r['params_before']:,} → {r['params_after']:,}",
         f"{r['channels_before']} → {r['channels_after']}" if r["channels_before"] else "",
         f"{r['nonzero_after'] / r['params_after']:.0%}" if r["params_after"] else "",
         r["dtype_after"] or ""] for r in shown])
    hidden = len(rows) - len(shown)
    more = f"<p class='muted'>{hidden} more layers not shown.</p>" if hidden else ""
    summary = (f"<p>{len(rows)} compute layers; {quantized} with integer weights, "
               f"{len(shown) - quantized} float.</p>")
    return summary + "".join(parts) + "<details><summary>layer table</summary>" + table + "</details>" + more


def _profile_section(profile: dict | None, top: int) -> str:
    from edgec.html_charts import Series, bar_chart
    from edgec.profile_ops import top_ops

    if not profile:
        return ("<p class='muted'>Not profiled (report.profile.enabled is false, or the run "
                "stopped early).</p>")
    blocks = []
    for name, p in profile["models"].items():
        ops = top_ops(p, top)
        chart = bar_chart(f"{name}: share of latency by operator", [o["op_type"] for o in ops],
                          [Series(name, [o["share"] for o in ops])], percent=True, width=560)
        table = _table(["operator", "share", "µs / run", "calls / run"], [
            [o["op_type"], f"{o['share']:.1%}", f"{o['us_per_run']:.1f}", f"{o['calls_per_run']:g}"]
            for o in ops])
        blocks.append(f"<div>{chart}{table}<p class='muted'>{p['runs']} profiled runs, "
                      f"{p['run_us']:.0f} µs median per run with the profiler on.</p></div>")
    return (f"<p class='muted'>onnxruntime profiler, {profile['threads']} thread(s), batch "
            f"{profile['batch_size']}; operators as executed after onnxruntime's graph "
            "optimizations. Shares are within one model; absolute µs include profiler cost.</p>"
            f"<div class='profiles'>{''.join(blocks)}</div>")


def to_html(report: Report, run_dir: Path) -> str:
    from edgec.report_text import PASS_COUNTS, budget_lines, summary_rows

    recipe = report.recipe
    if report.status != "ok":
        verdict, cls = f"run {report.status.upper()}", "bad"
    else:
        verdict, cls = ("all budgets met", "ok") if report.passed else ("budget missed", "bad")
    model = recipe.get("model", {})
    what = model.get("name") or model.get("callable") or model.get("path") or model.get("source")
    parts = [f"<h1>edgec report: {escape(str(what))}</h1>",
             f"<p><span class='verdict {cls}'>{escape(verdict)}</span> "
             f"<span class='muted'>started {escape(str(report.started))}, {report.seconds or 0:.1f} s, "
             f"input {escape(str(model.get('input_shape')))}, {escape(str(model.get('source')))} model"
             "</span></p>"]
    if report.error:
        parts.append(f"<div class='note'><b>Failed at step {escape(report.error['step'])}:</b> "
                     f"{escape(report.error['message'])}</div>")
    rows = summary_rows(report)
    if rows:
        parts += ["<h2 id='summary'>Summary</h2>", _table(["metric", "baseline", "compressed", "change"],
                                                           [list(r) for r in rows])]
    parts += [f"<div class='note'>{escape(f)}</div>" for f in report.findings]
    parts.append("<h2 id='budgets'>Budgets</h2>")
    if report.budgets:
        parts.append(_table(["budget", "limit", "actual", "result"], [
            [n, lim, act, f"<span class='{res}'>{res}</span>"] for n, lim, act, res in budget_lines(report)],
            raw_cols=(3,)))
    else:
        parts.append("<p class='muted'>No budgets set in the recipe.</p>")
    if report.passes:
        parts += ["<h2 id='passes'>Passes</h2>", _table(
            ["step", "stage", "seconds", "params before → after", "notes"],
            [[p.label, p.stage, f"{p.seconds:.1f}", f"{p.params_before:,} → {p.params_after:,}",
              "; ".join(p.notes)] for p in report.passes], text_cols=(4,)),
            f"<p class='muted'>{escape(PASS_COUNTS)}</p>"]
    shape = tuple(model["input_shape"]) if model.get("input_shape") else None
    parts += ["<h2 id='layers'>Layers</h2>", _layer_section(layer_rows(run_dir, shape))]
    top = recipe.get("report", {}).get("profile", {}).get("top", 8)
    parts += ["<h2 id='profile'>Where does the time go</h2>", _profile_section(report.op_profile, top)]
    env = report.environment
    parts += ["<h2 id='environment'>Environment</h2>", _table(["key", "value"], [
        [k, " ".join(v) if isinstance(v, list) else v] for k, v in env.items() if k != "cpu_flags"])]
    title = f"edgec report: {what} ({verdict})"
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<meta name='viewport' content='width=device-width'><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")


def write_html_report(report: Report, run_dir: Path) -> None:
    from edgec.report import write_text_atomic

    write_text_atomic(run_dir / "report.html", to_html(report, run_dir))
