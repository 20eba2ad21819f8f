"""The quantize pass's sections of report.md: what stayed float and why, per layer.

Called from report_text.to_markdown for every pass; returns nothing for passes without these
details, so the report module needs no knowledge of quantization.
"""

from __future__ import annotations

from edgec.passes.quantize_errors import errors_markdown


def quantize_markdown(details: dict) -> list[str]:
    lines: list[str] = []
    if details.get("float_layers"):
        lines += [f"Returned to float by max_accuracy_drop ({details['max_accuracy_drop']}): "
                  + ", ".join(f"`{n}`" for n in details["float_layers"]), ""]
    lines += auto_markdown(details)
    lines += errors_markdown(details)
    if details.get("doctor"):
        lines += ["#### Doctor: speed on this CPU (`edgec doctor model.onnx` profiles it)", ""]
        lines += [f"- {f}" for f in details["doctor"]] + [""]
    return lines


def auto_markdown(details: dict) -> list[str]:
    rows = details.get("auto_decisions")
    if not rows:
        return []
    lines = ["#### mode: auto — per-layer decisions (onnxruntime profiler, float vs int8)", "",
             "| layer | op | float µs | int8 µs | int8 speed | kept in |", "|---|---|---|---|---|---|"]
    for r in rows:
        f, q = r["float_us"], r["int8_us"]
        speed = f"{f / q:.2f}x" if f and q else "n/a"
        lines.append(f"| {r['name']} | {r['op_type']} | {_us(f)} | {_us(q)} | {speed} | "
                     f"{r['decision']} |")
    return [*lines, ""]


def _us(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"
