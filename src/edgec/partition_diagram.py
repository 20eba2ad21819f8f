"""A PNG of a partition: one box per device (its share of the model) and the traffic between them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgec.partition_layerwise import LayerwisePlan


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
