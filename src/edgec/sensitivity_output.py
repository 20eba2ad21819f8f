"""What `edgec sensitivity` leaves behind: sensitivity.csv / .json, a plot, a console table, and
the suggested prune settings as a recipe snippet to paste."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.report import write_text_atomic

if TYPE_CHECKING:
    from edgec.sensitivity import SensitivityResult

CSV_COLUMNS = ("layer", "members", "ratio", "removed", "macs", "params", "nonzero_params", "metric",
               "value", "drop")


def write_outputs(result: SensitivityResult, folder: Path) -> list[Path]:
    """sensitivity.csv, sensitivity.json and sensitivity.png in ``folder``; returns their paths."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in result.rows:
        writer.writerow([r["layer"], " ".join(r["members"]), r["ratio"], r["removed"], r["macs"],
                         r["params"], r["nonzero_params"], result.metric, r[result.metric], r["drop"]])
    paths = [folder / "sensitivity.csv", folder / "sensitivity.json", folder / "sensitivity.png"]
    write_text_atomic(paths[0], out.getvalue())
    write_text_atomic(paths[1], json.dumps(result.to_dict(), indent=2) + "\n")
    plot(result, paths[2])
    return paths


def plot(result: SensitivityResult, path: Path) -> None:
    """Accuracy (or agreement) against the pruned ratio, one line per layer."""
    import matplotlib

    matplotlib.use("Agg")  # no display here; and never open a window from a CLI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for name in result.layers():
        rows = [r for r in result.rows if r["layer"] == name]
        ax.plot([0] + [r["ratio"] for r in rows], [result.baseline] + [r[result.metric] for r in rows],
                marker="o", label=name, linewidth=1)
    ax.axhline(result.baseline - result.max_drop, color="grey", linestyle="--", linewidth=1,
               label=f"target (drop ≤ {result.max_drop:g})")
    ax.set_xlabel(f"fraction of {'channels' if result.structure == 'channel' else 'weights'} "
                  "removed from this layer alone")
    ax.set_ylabel(f"eval {result.metric}")
    ax.set_title(f"pruning sensitivity ({result.structure}, importance {result.importance}, no fine-tuning)")
    ax.legend(fontsize="x-small", ncol=2 if len(result.layers()) > 12 else 1, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def suggestion_yaml(result: SensitivityResult) -> str:
    """The suggested prune pass, ready to paste into a recipe's passes: list."""
    import yaml

    s = result.suggestion
    entry: dict = {"type": "prune", "structure": result.structure, "importance": result.importance}
    if s.get("layers"):
        entry["layers"] = s["layers"]
    if s.get("ignore"):
        entry["ignore"] = s["ignore"]
    return yaml.safe_dump([entry], sort_keys=False, width=100)


def print_result(result: SensitivityResult, file=None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from edgec.console import console as make_console

    console = make_console(file, width=120)
    table = Table(title=f"{result.metric} drop (points) when one layer alone is pruned; baseline "
                  f"{result.baseline:.2%}, no fine-tuning", title_justify="left")
    table.add_column("layer")
    table.add_column("MACs removed at max", justify="right")
    for ratio in result.ratios:
        table.add_column(f"{ratio:g}", justify="right")
    for name in result.layers():
        rows = {r["ratio"]: r for r in result.rows if r["layer"] == name}
        last = rows[max(rows)]
        cells = []
        for ratio in result.ratios:
            r = rows.get(ratio)
            if r is None:
                cells.append("—")
                continue
            text = f"{r['drop'] * 100:+.1f}"
            if r["removed"] == 0:  # rounded to nothing removed: its +0.0 measures nothing
                cells.append("[dim]none cut[/]")
            else:
                cells.append(text if r["drop"] <= result.max_drop else f"[red]{text}[/]")
        coupled = len(last["members"]) - 1  # e.g. layers tied by a residual add, cut together
        label = f"{name} (+{coupled} coupled)" if coupled > 0 else name
        table.add_row(escape(label), f"{1 - last['macs'] / result.macs:.1%}", *cells)  # a name is text
    console.print(table)
    if any(r["removed"] == 0 for r in result.rows):
        console.print("none cut: the ratio removes nothing from that layer (channels go in "
                      "multiples of round_to), so it says nothing about the layer")
    for name, why in result.skipped.items():
        console.print(f"[yellow]not scanned:[/] {escape(name)}: {escape(why)}")
    s = result.suggestion
    console.print(f"suggested for an {result.metric} drop of at most {result.max_drop * 100:g} "
                  "point(s) per layer:")
    console.print(suggestion_yaml(result).rstrip(), markup=False)
    for name, why in s.get("why", {}).items():
        # a YAML comment, if pasted too: one line, never wrapped into a line that is not one
        console.print(f"# ignore '{escape(name)}': {escape(why)}", soft_wrap=True)
    if "drop" in s:
        console.print(f"measured with all of it at once (before fine-tuning): MACs "
                      f"{result.macs:,} → {s['macs']:,} ({result.macs / max(s['macs'], 1):.2f}× fewer), "
                      f"params {result.params:,} → {s['params']:,} (counted on {result.counted}), "
                      f"{result.metric} {result.baseline:.2%} → {s[result.metric]:.2%}. Fine-tuning "
                      "usually recovers much of the combined drop.")
