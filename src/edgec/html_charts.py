"""Inline SVG bar charts for report.html: no JavaScript, no network, no plotting library.

Hand-written SVG keeps the page one self-contained file that renders anywhere (a CI artifact
viewer, an e-mail attachment) and costs nothing at import, unlike matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

PALETTE = {"baseline": "#9aa5b1", "compressed": "#2f6fdf", "float32": "#9aa5b1", "float16": "#e0a030",
           "int8": "#2e9e5b", "uint8": "#2e9e5b", "int4": "#1b6e3c", "uint4": "#1b6e3c",
           "none": "#d0d4d9"}


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]
    colors: list[str] | None = None  # one per bar, else PALETTE[name] for all


def _fmt(value: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.3g}{suffix}"
    return f"{value:.3g}" if isinstance(value, float) and not value.is_integer() else f"{value:.0f}"


def bar_chart(title: str, labels: list[str], series: list[Series], *, percent: bool = False,
              legend: list[tuple[str, str]] | None = None, width: int = 760) -> str:
    """Grouped horizontal bars: one group per label, one bar per series, value printed at the end."""
    bar_h, gap, label_w, value_w, top = 11, 8, 190, 64, 34
    group_h = bar_h * len(series) + gap
    legend = legend or [(s.name, PALETTE.get(s.name, "#555")) for s in series]
    height = top + group_h * len(labels) + 10
    plot_w = width - label_w - value_w
    peak = max((v for s in series for v in s.values), default=0) or 1
    out = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<text x="0" y="14" font-weight="bold" font-size="13">{escape(title)}</text>']
    x = 0
    for name, color in legend:
        out.append(f'<rect x="{label_w + x}" y="20" width="10" height="10" fill="{color}"/>'
                   f'<text x="{label_w + x + 14}" y="29">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    for i, label in enumerate(labels):
        y0 = top + i * group_h
        short = label if len(label) <= 30 else "…" + label[-29:]
        out.append(f'<text x="{label_w - 6}" y="{y0 + bar_h * len(series) / 2 + 4:.1f}" '
                   f'text-anchor="end"><title>{escape(label)}</title>{escape(short)}</text>')
        for j, s in enumerate(series):
            value = s.values[i]
            w = max(0.0, value) / peak * plot_w
            color = (s.colors[i] if s.colors else PALETTE.get(s.name, "#555"))
            y = y0 + j * bar_h
            text = f"{value * 100:.1f}%" if percent else _fmt(value)
            out.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{color}">'
                       f'<title>{escape(s.name)} {escape(label)}: {text}</title></rect>'
                       f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 3}" fill="#333">{text}</text>')
    out.append("</svg>")
    return "".join(out)
