"""Reports for people: a Markdown file (report.md) and a console table.

Both come from the same rows (``summary_rows``) so the two can never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgec.benchmark import Metrics
    from edgec.report import Report


def _kib(n: float) -> str:
    return f"{n / 1024:,.1f} KiB"


def _count(n: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.2f}{suffix}"
    return f"{n:.0f}"


def _pct(x: float | None, missing: str = "n/a (no labels)") -> str:
    return missing if x is None else f"{x * 100:.2f}%"


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def _shrink(x: float | None, less: str, more: str) -> str:
    """A baseline/compressed ratio in words that stay true when the model grew: '3.58x smaller',
    '1.82x larger' (not '0.55x smaller')."""
    if x is None:
        return "n/a"
    if round(x, 2) >= 1.0:
        return f"{x:.2f}x {less}"
    return f"{1 / x:.2f}x {more}" if x > 0 else "n/a"


# under every Passes table (report.md, report.html): its counts and the summary's differ a little
PASS_COUNTS = ("Params (and the MACs in notes) count each pass's own model: the torch module for "
               "torch-stage passes, BatchNorm layers included; the ONNX graph for ONNX-stage "
               "passes. The summary counts the exported ONNX graph, where BatchNorm is folded into "
               "the convolutions, so torch-stage counts run a little higher.")


def summary_rows(report: Report) -> list[tuple[str, str, str, str]]:
    """(metric, baseline, compressed, change) rows shared by Markdown and console output."""
    b, c, r = report.baseline, report.compressed, report.ratios
    if b is None or c is None:
        return []

    def lat(m: Metrics, p: str) -> str:
        return f"{getattr(m.latency_ms, p):.3f} ms"

    drop = r.get("accuracy_drop")
    return [
        ("ONNX size", _kib(b.size_bytes), _kib(c.size_bytes), _shrink(r.get("size"), "smaller", "larger")),
        ("gzip size", _kib(b.size_gzip_bytes), _kib(c.size_gzip_bytes),
         _shrink(r.get("size_gzip"), "smaller", "larger")),
        ("params", _count(b.params), _count(c.params), _shrink(r.get("params"), "fewer", "more")),
        ("non-zero params", _count(b.nonzero_params), _count(c.nonzero_params), ""),
        ("MACs (batch 1)", _count(b.macs), _count(c.macs), _shrink(r.get("macs"), "fewer", "more")),
        ("latency p1 (undisturbed)", lat(b, "p1"), lat(c, "p1"),
         f"{_ratio(r.get('speedup_p1'))} speed"),
        ("latency p50", lat(b, "p50"), lat(c, "p50"), f"{_ratio(r.get('speedup_p50'))} speed"),
        ("latency p90", lat(b, "p90"), lat(c, "p90"), f"{_ratio(r.get('speedup_p90'))} speed"),
        ("accuracy", _pct(b.accuracy), _pct(c.accuracy),
         "" if drop is None else f"{round(-drop * 100, 2) + 0.0:+.2f} points"),  # no "-0.00"
        ("agreement with baseline", _pct(b.agreement, "n/a"), _pct(c.agreement, "n/a"), ""),
    ]


def budget_lines(report: Report) -> list[tuple[str, str, str, str]]:
    rows = []
    for row in report.budgets:
        limit, actual, interval = row.texts()
        if interval:  # noise-aware gate: show the interval it decided on
            actual += f" (CI {interval})"
        result = "PASS" if row.passed else "FAIL"
        if getattr(row, "verdict", None) == "inconclusive":
            result += " (inconclusive)"
        elif getattr(row, "verdict", None) == "skipped":  # e.g. a regression budget, no --against
            result = "SKIPPED"
        name = row.name if row.source == "recipe" else f"{row.name} ({row.source})"
        rows.append((name, limit, actual, result))
    return rows


def to_markdown(report: Report) -> str:
    from edgec.device import markdown_lines as device_markdown

    status = {"ok": "completed", "failed": "FAILED", "interrupted": "INTERRUPTED"}[report.status]
    verdict = "all budgets met" if report.passed else "budget missed"
    lines = [f"# edgec report — {status}" + (f", {verdict}" if report.status == "ok" else ""), ""]
    if report.error:
        lines += [f"**Failed at step `{report.error['step']}`:** {report.error['message']}", ""]
    model = report.recipe.get("model", {})
    # the batch really timed: a fixed-batch model is fed its own batch, whatever the setting
    batch = (report.compressed.latency_ms.batch if report.compressed else
             report.recipe.get("benchmark", {}).get("batch_size", 1))
    lines += [f"Model: `{model.get('name') or model.get('callable') or model.get('path')}` "
              f"({model.get('source')}), input {model.get('input_shape')}. "
              f"Latency: onnxruntime CPU, {report.environment.get('threads')} thread(s), batch "
              f"{batch}, baseline and compressed "
              "interleaved in one process. MACs: multiply-accumulates at batch 1 (1 MAC = 2 FLOPs).",
              ""]
    rows = summary_rows(report)
    if rows:
        lines += ["| metric | baseline | compressed | change |", "|---|---|---|---|"]
        lines += [f"| {' | '.join(r)} |" for r in rows] + [""]
    if report.findings:
        lines += ["## Findings", ""] + [f"- {f}" for f in report.findings] + [""]
    if report.budgets:
        lines += ["## Budgets", "", "| budget | limit | actual | result |", "|---|---|---|---|"]
        lines += [f"| {' | '.join(r)} |" for r in budget_lines(report)] + [""]
    lines += device_markdown(report.device)
    if report.passes:
        lines += ["## Passes", "", "| step | stage | seconds | params before → after | notes |",
                  "|---|---|---|---|---|"]
        for p in report.passes:
            notes = "<br>".join(p.notes)
            lines.append(f"| {p.label} | {p.stage} | {p.seconds:.1f} | "
                         f"{_count(p.params_before)} → {_count(p.params_after)} | {notes} |")
        lines += ["", PASS_COUNTS, ""]
        for p in report.passes:
            if p.details:
                lines += [f"### {p.label}", ""]
                lines += [f"- {k}: {v}" for k, v in p.details.items() if not isinstance(v, (list, dict))]
                lines.append("")
                lines += _pass_sections(p.details)
    from edgec.passes.cluster_report import markdown_sections as cluster_sections
    from edgec.passes.prune_report import markdown_sections  # per-layer channels of prune passes

    lines += markdown_sections(report) + cluster_sections(report)
    if report.export:
        lines += ["## Export", ""] + [f"- {k}: {v}" for k, v in report.export.items()] + [""]
    env = report.environment
    lines += ["## Environment", ""] + [f"- {k}: {v}" for k, v in env.items()
                                       if k not in ("cpu_flags", "nondeterministic")]
    lines.append(f"- cpu_flags: {' '.join(env.get('cpu_flags', []))}")
    if env.get("nondeterministic"):
        lines += ["", "## Reproducibility", "", "Same recipe, seed and machine give byte-identical "
                  "ONNX files and metrics, except:", ""]
        lines += [f"- {k}: {why}" for k, why in env["nondeterministic"].items()]
    return "\n".join(lines) + "\n"


def _pass_sections(details: dict) -> list[str]:
    from edgec.passes.partition import partition_markdown  # per-device tables
    from edgec.passes.quantize_report import quantize_markdown  # per-layer quantization tables

    return quantize_markdown(details) + partition_markdown(details)


def print_console(report: Report, file=None) -> None:
    """A compact table for a person at a shell."""
    from rich.markup import escape
    from rich.table import Table

    from edgec.console import console as make_console

    console = make_console(file)
    rows = summary_rows(report)
    if rows:
        table = Table(title="edgec: baseline vs compressed", title_justify="left")
        for col in ("metric", "baseline", "compressed", "change"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for r in rows:
            table.add_row(*r)
        console.print(table)
    for finding in report.findings:
        console.print(f"[yellow]note:[/] {escape(finding)}")  # text: "[min, max]" is no markup
    if report.budgets:
        table = Table(title="budgets", title_justify="left")
        for col in ("budget", "limit", "actual", "result"):
            table.add_column(col)
        for name, limit, actual, result in budget_lines(report):
            style = "green" if result.startswith("PASS") else "bold red"
            table.add_row(escape(name), escape(limit), escape(actual), f"[{style}]{escape(result)}[/]")
        console.print(table)
    if report.error:
        console.print(f"[bold red]failed at {escape(str(report.error['step']))}:[/] "
                      f"{escape(report.error['message'])}")
    if report.run_dir:
        console.print(f"results in {escape(report.run_dir)}/ ({', '.join(run_files(report.run_dir))})")


def run_files(run_dir: str) -> list[str]:
    """The files a person opens first, those this run wrote (report.html is optional)."""
    from pathlib import Path

    names = ("report.html", "report.json", "report.md", "model.onnx")
    return [name for name in names if (Path(run_dir) / name).is_file()]


def print_metrics(metrics: dict[str, Metrics], threads: int, file=None) -> None:
    """Side-by-side table for `edgec bench`: one column per model, ratios vs the first."""
    from rich.markup import escape
    from rich.table import Table

    from edgec.console import console as make_console

    names = list(metrics)
    first = metrics[names[0]]
    table = Table(title=f"onnxruntime CPU, {threads} thread(s), interleaved", title_justify="left")
    table.add_column("metric")
    for name in names:  # file names are text, not markup
        table.add_column(escape(name), justify="right")
    rows = [
        ("size", lambda m: _kib(m.size_bytes)),
        ("gzip size", lambda m: _kib(m.size_gzip_bytes)),
        ("params", lambda m: _count(m.params)),
        ("MACs (batch 1)", lambda m: _count(m.macs)),
        # a time is for the whole batch timed; MACs are per sample
        (f"p50 latency (batch {first.latency_ms.batch})", lambda m: f"{m.latency_ms.p50:.3f} ms"),
        (f"p90 latency (batch {first.latency_ms.batch})", lambda m: f"{m.latency_ms.p90:.3f} ms"),
        # in words: a bare "0.55x" was read both ways ("A vs B" sounds like A's speed-up over B)
        (f"speed vs {names[0]}", lambda m: "reference" if m is first else
         _shrink(first.latency_ms.p50 / m.latency_ms.p50, "faster", "slower")),
        (f"size vs {names[0]}", lambda m: "reference" if m is first else
         _shrink(first.size_bytes / m.size_bytes, "smaller", "larger")),
    ]
    for label, fmt in rows[:None if len(names) > 1 else -2]:  # one model: nothing to compare
        table.add_row(escape(label), *(fmt(metrics[n]) for n in names))
    make_console(file).print(table)


def print_layers(path, stats, file=None) -> None:
    """Per-layer table for `edgec inspect`."""
    from rich.markup import escape
    from rich.table import Table

    from edgec.console import console as make_console

    console = make_console(file)
    console.print(f"{escape(str(path))}: {_count(stats.params)} params "
                  f"({_count(stats.nonzero_params)} non-zero), "
                  f"{_count(stats.macs)} MACs = {_count(stats.flops)} FLOPs at batch "
                  f"{stats.input_shape[0] if stats.input_shape else 1}, "
                  f"opset {stats.opset}")
    table = Table(title_justify="left")
    for col in ("layer", "op", "params", "MACs", "output shape"):
        table.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for layer in stats.layers:
        table.add_row(escape(layer.name), escape(layer.op_type), _count(layer.params), _count(layer.macs),
                      str(layer.output_shape))
    console.print(table)
