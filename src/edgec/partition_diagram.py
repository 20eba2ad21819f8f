"""A PNG of a partition: one box per device (its share of the model) and the traffic between them:
a chain for a layer-wise split, a star into device 1 for NoNN."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgec.partition_layerwise import LayerwisePlan
    from edgec.partition_nonn import NonnPlan


def draw_partition(plan: LayerwisePlan, path: Path | str, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, works without a display
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    k = len(plan.pieces)
    fig, ax = plt.subplots(figsize=(2.6 * k + 0.6, 2.4))
    for i, p in enumerate(plan.pieces):
        x = i * 2.6
        ax.add_patch(FancyBboxPatch((x, 0), 1.8, 1.6, boxstyle="round,pad=0.05",
                                    facecolor="#dbe8f5", edgecolor="#2b5d8a"))
        lines = [f"device {p.device}", f"{len(p.nodes)} nodes", f"{p.params:,} params",
                 f"{p.macs:,} MACs", f"{p.flash_bytes / 1024:.1f} KiB weights"]
        if p.compute_ms is not None:
            lines.append(f"{p.compute_ms:.3f} ms here")
        ax.text(x + 0.9, 0.8, "\n".join(lines), ha="center", va="center", fontsize=8)
        if i < k - 1:
            ax.annotate("", xy=(x + 2.55, 0.8), xytext=(x + 1.85, 0.8),
                        arrowprops={"arrowstyle": "->", "color": "#a33"})
            ax.text(x + 2.2, 1.0, f"{p.bytes_out:,} B", ha="center", fontsize=8, color="#a33")
    summary = f"{plan.bytes_per_inference:,} B sent per inference"
    if plan.estimated_latency_ms is not None:
        summary += f"; ~{plan.estimated_latency_ms:.2f} ms at {plan.link_mbps:g} Mbit/s"
    ax.set_title(f"{title}\n{summary}" if title else summary, fontsize=9)
    ax.set_xlim(-0.2, 2.6 * k - 0.6)
    ax.set_ylim(-0.2, 1.8)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def draw_nonn(plan: NonnPlan, path: Path | str, title: str = "") -> Path:
    """Device 1 (its student and the head) on the left, devices 2..K stacked on the right, an
    arrow per device with the bytes its pooled vector takes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    others = plan.devices[1:]
    rows = max(len(others), 1)
    fig, ax = plt.subplots(figsize=(6.4, 1.0 + 1.9 * rows))
    height = 1.9 * rows - 0.3

    def box(x, y, h, lines, color):
        ax.add_patch(FancyBboxPatch((x, y), 2.2, h, boxstyle="round,pad=0.05", facecolor=color,
                                    edgecolor="#2b5d8a"))
        ax.text(x + 1.1, y + h / 2, "\n".join(lines), ha="center", va="center", fontsize=8)

    def lines_of(d):
        out = [f"device {d.device}", f"student w={d.width}, {len(d.filters)} filters",
               f"{d.params:,} params", f"{d.macs:,} MACs", f"{d.flash_bytes / 1024:.1f} KiB weights",
               f"{d.ram_bound_bytes / 1024:.1f} KiB RAM (bound)"]  # the measure max_ram_kb limits
        return out + ([f"{d.compute_ms:.3f} ms here"] if d.compute_ms is not None else [])

    first = plan.devices[0]
    box(0, 0, height, [*lines_of(first), f"+ head ({plan.head['params']:,} params)"], "#dbe8f5")
    for i, d in enumerate(others):
        y = height - (i + 1) * 1.9 + 0.3
        box(3.6, y, 1.6, lines_of(d), "#e8f2dc")
        ax.annotate("", xy=(2.3, y + 0.8), xytext=(3.55, y + 0.8),
                    arrowprops={"arrowstyle": "->", "color": "#a33"})
        ax.text(2.95, y + 0.95, f"{d.bytes_out:,} B", ha="center", fontsize=8, color="#a33")
    summary = f"{plan.bytes_per_inference:,} B sent per inference"
    if plan.accuracy is not None:
        summary += f"; accuracy {plan.accuracy:.2%}"
    if plan.estimated_latency_ms is not None:
        summary += f"; ~{plan.estimated_latency_ms:.2f} ms at {plan.link_mbps:g} Mbit/s"
    ax.set_title(f"{title}\n{summary}" if title else summary, fontsize=9)
    ax.set_xlim(-0.2, 6.0)
    ax.set_ylim(-0.2, height + 0.2)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
