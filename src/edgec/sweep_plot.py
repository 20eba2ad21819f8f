"""A sweep's pareto.png: the first axis against each other one, the front joined and highlighted.

Variants often land on (nearly) the same point: per_channel or calibration samples that change
nothing measurable. Their names are written once, together ("v008, v009"), and a label that
would cover another moves below it, so every name stays readable; the best is named in the title.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgec.sweep_results import SweepResult


def load_plotting() -> None:
    """Import matplotlib (0.5-0.9 s here) once, before the plot needs it."""
    import matplotlib

    matplotlib.use("Agg")  # no display on CI runners
    import matplotlib.pyplot


def warm_plotting() -> None:
    """Import matplotlib and draw a throwaway figure: the first drawing in a process loads fonts
    and the renderer, 0.3 s more than any later one. The sweep runs this while its worker
    processes start, so the plot at the end costs only its own drawing."""
    load_plotting()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.scatter([0, 1], [0, 1])
    ax.annotate("v", (0, 0), fontsize=7)
    ax.set_xlabel("x")
    fig.suptitle("t", fontsize=9)
    fig.savefig(io.BytesIO(), format="png", dpi=30)
    plt.close(fig)


def plot_png(result: SweepResult) -> bytes | None:
    """Scatter of the first axis against each other axis; the front joined and highlighted."""
    from edgec.pareto import AXES

    ok = [i for i, r in enumerate(result.rows) if r["status"] == "ok"]
    axes = result.front_axes
    if not ok or len(axes) < 2:
        return None
    load_plotting()
    import matplotlib.pyplot as plt

    x_axis, others = axes[0], axes[1:]
    fig, axs = plt.subplots(1, len(others), figsize=(5.5 * len(others), 4.2), squeeze=False)
    # fixed margins sized for the axis labels: tight_layout drew the figure once more (0.2 s);
    # set first, so the labels are placed in the axes' final size
    width = fig.get_figwidth()  # inches: ~0.8 in for y tick labels and label, 0.25 in to the right
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.25 / width, bottom=0.13, top=0.86, wspace=0.3)
    for ax, y_axis in zip(axs[0], others, strict=True):
        pts = [(result.rows[i][x_axis], result.rows[i][y_axis], i) for i in ok
               if result.rows[i][x_axis] is not None and result.rows[i][y_axis] is not None]
        # one scatter call per style, not per point: 24 calls took 0.13 s of a 0.36-s plot
        for on_front, passed in ((False, True), (False, False), (True, True), (True, False)):
            group = [(x, y) for x, y, i in pts
                     if (i in result.front) == on_front and result.rows[i]["passed"] == passed]
            if group:
                ax.scatter(*zip(*group, strict=True), s=60 if on_front else 30,
                           c="tab:red" if on_front else "tab:gray", marker="o" if passed else "x",
                           zorder=3)
        front = sorted((x, y) for x, y, i in pts if i in result.front)
        if len(front) > 1:
            ax.plot(*zip(*front, strict=True), color="tab:red", lw=1, alpha=0.6)
        ax.set_xlabel(AXES[x_axis][1])
        ax.set_ylabel(AXES[y_axis][1])
        ax.grid(alpha=0.3)
        _label_points(ax, fig, result, [p for p in pts if _labelled(result, p[2], len(ok))])
    best = (f"best: {result.rows[result.best]['variant']} ★" if result.best is not None
            else "no best: no variant meets the budgets")
    fig.suptitle("edgec sweep: Pareto front over " + ", ".join(axes) + f"; {best}"
                 "\nred = on the front; x = misses a budget"
                 + ("; labels: the front only" if len(ok) > LABEL_ALL_UP_TO else ""), fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


# Beyond this many points the plot names only the front's: 100 labels hid the points they name.
LABEL_ALL_UP_TO = 30
# Points closer than this share one label (fraction of the axis' span on both axes): at 110 dpi
# a 7-pt label is ~10 px high, and 4% of a 4.5 x 3 in axes is 20 px across, 13 px up.
NEAR = 0.04
# Label size in inches for 7-pt text (DejaVu Sans: ~0.6 em a character, a line of 1.2 em).
CHAR_IN, LINE_IN = 7 * 0.6 / 72, 7 * 1.2 / 72
NAMES_PER_LABEL = 4


def _labelled(result: SweepResult, i: int, points: int) -> bool:
    return points <= LABEL_ALL_UP_TO or i in result.front or bool(result.rows[i]["best"])


def _label_points(ax, fig, result: SweepResult, pts: list[tuple]) -> None:
    """One label per cluster of near points ("v008, v009 ★"), moved down a line while it would
    cover a label already placed. Sizes are estimated, not measured: measuring text means
    drawing the figure, which took as long again as the whole plot."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()  # autoscaled to the points by now
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    clusters: list[list[tuple]] = []
    for p in sorted(pts):
        home = next((c for c in clusters if any(abs(p[0] - q[0]) <= NEAR * span_x and
                                                abs(p[1] - q[1]) <= NEAR * span_y for q in c)), None)
        if home is None:
            clusters.append([p])
        else:
            home.append(p)
    box = ax.get_position()  # in figure fractions
    width_in, height_in = box.width * fig.get_figwidth(), box.height * fig.get_figheight()
    placed: list[tuple[float, float, float, float]] = []  # label boxes in axes fractions
    for cluster in clusters:
        rows = [result.rows[i] for _, _, i in sorted(cluster, key=lambda p: p[2])]
        names = [r["variant"] + (" ★" if r["best"] else "") for r in rows]
        if len(names) > NAMES_PER_LABEL:
            names = [*names[:NAMES_PER_LABEL - 1], f"+{len(names) - NAMES_PER_LABEL + 1} more"]
        text = ", ".join(names)
        x, y = max(p[0] for p in cluster), max(p[1] for p in cluster)
        w, h = len(text) * CHAR_IN / width_in, LINE_IN / height_in
        left, bottom = (x - x0) / span_x + 3 / 72 / width_in, (y - y0) / span_y + 3 / 72 / height_in
        flip = left + w > 1  # past the right edge, cut off there: written left of the point
        if flip:
            left -= w + 6 / 72 / width_in
        shift = 0
        while shift < 6 and any(_overlap((left, bottom - shift * h, w, h), b) for b in placed):
            shift += 1
        placed.append((left, bottom - shift * h, w, h))
        ax.annotate(text, (x, y), fontsize=7, xytext=(-3 if flip else 3, 3 - shift * LINE_IN * 72),
                    textcoords="offset points", ha="right" if flip else "left")


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
