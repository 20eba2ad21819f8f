"""What the cluster pass measures and tells the report: distinct values per layer, gzip'd weights.

The pass sees only the torch model, so it measures the clustered layers' weights as the exporter
writes them (float32, little-endian, gzip level 9 like the report's size_gzip_bytes). The whole
exported file, measured by the benchmark, is in report.md's section next to these numbers.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch.nn as nn

    from edgec.passes.base import Pass
    from edgec.training import TrainResult


@dataclass
class Snapshot:
    """The clustered layers' weights at one moment: distinct values and sizes."""

    distinct: dict[str, int]
    weights: dict[str, int]
    raw_bytes: int
    gzip_bytes: int

    @classmethod
    def of(cls, model: nn.Module, names) -> Snapshot:
        import numpy as np

        arrays = {n: model.get_submodule(n).weight.detach().cpu().numpy().astype("<f4") for n in names}
        blob = b"".join(a.tobytes() for a in arrays.values())
        return cls({n: int(np.unique(a).size) for n, a in arrays.items()},
                   {n: int(a.size) for n, a in arrays.items()}, len(blob),
                   len(gzip.compress(blob, compresslevel=9, mtime=0)))


def codebook_bytes(weights: int, values: int) -> int:
    """Storage with a codebook: ceil(log2 k) bits per weight plus k float32 values."""
    bits = max(1, math.ceil(math.log2(max(values, 2))))
    return math.ceil(weights * bits / 8) + 4 * values


def _kib(n: float) -> str:
    return f"{n / 1024:,.1f} KiB"


def describe(p: Pass, cfg, before: Snapshot, after: Snapshot, layers: dict, folded: int,
             accuracy: dict, result: TrainResult | None) -> None:
    """Fill the pass's details and notes."""
    codebook = sum(codebook_bytes(after.weights[n], after.distinct[n]) for n in after.weights)
    p.details.update(
        clusters=cfg.clusters, init=cfg.init, folded_batchnorms=folded,
        layers={n: {"weights": after.weights[n], "clusters": c.clusters,
                    "distinct_before": before.distinct[n], "distinct_after": after.distinct[n],
                    "zeros_pinned": c.zeros_pinned} for n, c in layers.items()},
        max_distinct_after=max(after.distinct.values()),
        weights_bytes=after.raw_bytes, weights_gzip_bytes_before=before.gzip_bytes,
        weights_gzip_bytes_after=after.gzip_bytes, codebook_bytes=codebook,
        **{f"eval_accuracy_{k}": v for k, v in accuracy.items()},
    )
    if result is not None:
        p.details["epochs"] = result.history
        if result.best_epoch is not None:  # only with a hold-out slice (finetune.val_fraction)
            p.details.update(best_epoch=result.best_epoch, best_val_accuracy=result.best_accuracy)
    shrink = before.gzip_bytes / max(after.gzip_bytes, 1)
    p.note(f"clustered {len(layers)} conv/linear layers to at most {p.details['max_distinct_after']} "
           f"shared values each: their float32 weights gzip to {_kib(after.gzip_bytes)} instead of "
           f"{_kib(before.gzip_bytes)} ({shrink:.2f}× smaller); as indices + codebook "
           f"{_kib(codebook)} (raw {_kib(after.raw_bytes)})")
    if accuracy.get("before") is not None:
        text = f"eval accuracy {accuracy['before']:.2%} → {accuracy['clustered']:.2%} after k-means"
        if "finetuned" in accuracy:
            epochs = cfg.finetune.epochs
            text += (f" → {accuracy['finetuned']:.2%} after {epochs} epoch{'s' if epochs > 1 else ''} "
                     "of centroid fine-tuning")
        p.note(text)
    if folded:
        p.note(f"folded {folded} BatchNorm layers into their convolutions first (the exporter folds "
               "them too, and would otherwise rescale each channel's shared values)")
    p.note("the exported model stays float32: same raw size and speed; the sharing shows in the "
           "gzip'd size (size_gzip_bytes)")


def markdown_sections(report) -> list[str]:
    """report.md lines for each cluster pass: distinct values per layer, and the whole file's
    sizes as the benchmark measured them."""
    lines: list[str] = []
    for rec in report.passes:
        if rec.type != "cluster":
            continue
        d = rec.details
        lines += [f"## Weight clustering: {rec.label}", "",
                  f"k-means per layer ({d.get('init')} init), at most {d.get('clusters')} shared "
                  f"values per layer unless set per layer; clustered weights gzip to "
                  f"{_kib(d.get('weights_gzip_bytes_after', 0))} instead of "
                  f"{_kib(d.get('weights_gzip_bytes_before', 0))}.", ""]
        rows = ["| layer | weights | clusters | distinct values before → after |", "|---|---|---|---|"]
        for name, info in d.get("layers", {}).items():
            pinned = " (zeros kept)" if info.get("zeros_pinned") else ""
            rows.append(f"| {name} | {info['weights']:,} | {info['clusters']}{pinned} | "
                        f"{info['distinct_before']:,} → {info['distinct_after']} |")
        lines += [*rows, ""]
        ratios = report.ratios or {}
        if ratios.get("size_gzip"):
            lines += [f"Whole model file after every pass, measured: gzip'd {ratios['size_gzip']:.2f}× "
                      f"smaller, raw {ratios.get('size', 0):.2f}× smaller than the baseline. "
                      "Clustering alone leaves the raw size as it was (a float32 weight takes 4 "
                      "bytes whatever its value); only compression sees the shared values.", ""]
    return lines
