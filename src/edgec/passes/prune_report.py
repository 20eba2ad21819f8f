"""What the prune pass measures and tells the report: MACs, params, per-layer channels, notes.

MACs are counted by Torch-Pruning's op counter at batch 1 on the recipe's input shape (multiply-
accumulates, not FLOPs: 1 MAC = 2 FLOPs). These are torch-module counts, BatchNorm layers included:
the report's summary counts the exported ONNX graph, where export has folded BatchNorm into the
convolutions, so its numbers are a little lower; every note here says which it quotes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from edgec.passes.base import Pass


def measure(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    import torch_pruning as tp

    from edgec.passes.prune_unstructured import detach_masked, nonzero_params

    macs, params = tp.utils.count_ops_and_params(detach_masked(model), example)
    model.eval()  # the counter leaves a deep copy in eval mode, but be explicit for the caller
    return {"macs": int(macs), "params": int(params), "nonzero_params": nonzero_params(model)}


TORCH_COUNTS = "torch module, BatchNorm not folded"


def _counts(before: dict, after: dict) -> str:
    """MACs and params before → after, labelled as the torch module's (not the ONNX summary's)."""
    macs_x = before["macs"] / max(after["macs"], 1)
    return (f"MACs {_si(before['macs'])} → {_si(after['macs'])} ({macs_x:.2f}× fewer), params "
            f"{_si(before['params'])} → {_si(after['params'])} ({TORCH_COUNTS})")


def _si(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


def describe(p: Pass, cfg, engine, before: dict, after: dict, model: nn.Module, history: list,
             metric: str, budget: float | None) -> None:
    """Fill the pass's details and notes."""
    d = p.details
    d.update(structure=cfg.structure, importance=cfg.importance, global_ranking=cfg.global_ranking,
             **{f"{k}_before": v for k, v in before.items()}, **{f"{k}_after": v for k, v in after.items()},
             steps=history, protected=dict(engine.protected))
    if budget is not None:
        d["target"] = {"metric": metric, "budget": int(budget), "achieved": after[metric]}
    if engine.untraceable:
        d["untraceable"] = dict(engine.untraceable)
    if cfg.structure == "channel":
        _describe_channels(p, engine, before, after, model, cfg)
    elif cfg.structure == "block":
        _describe_blocks(p, engine, before, after, model)
    else:
        _describe_sparsity(p, engine, before, after, model)


def _describe_channels(p: Pass, engine, before: dict, after: dict, model: nn.Module, cfg) -> None:
    from edgec.passes.prune_graph import channel_counts

    now = channel_counts(model)
    channels = {name: [n, now.get(name, n)] for name, n in engine.channels_before.items()}
    prunable = [name for name in channels if name in engine.prunable]
    total = sum(channels[n][0] for n in prunable)
    removed = 1 - sum(channels[n][1] for n in prunable) / total if total else 0.0
    macs_x = before["macs"] / max(after["macs"], 1)
    p.details.update(round_to=engine.settings.round_to, channels=channels,
                     achieved_ratio=round(removed, 4), macs_reduction=round(macs_x, 3))
    p.note(f"removed {removed:.1%} of the prunable channels: {_counts(before, after)}")
    outputs = [n for n, why in engine.protected.items() if why == "produces the model output"]
    if outputs:
        p.note(f"kept the output channels of {', '.join(outputs)} (they produce the model output)")
    if engine.untraceable:
        where, why = next(iter(engine.untraceable.items()))
        p.note(f"Torch-Pruning cannot trace '{where}' as a whole ({why.split(':')[0]}); pruned "
               f"inside {len(engine.scopes)} of its parts separately, keeping the channels at their "
               "boundaries")
    step = engine.settings.round_to
    if step > 1:
        off = _rounded_off(channels, prunable, cfg, step)
        why = (f": {'; '.join(off)}, so {removed:.1%} of the prunable channels went, not the "
               f"{cfg.amount:.0%} asked (a lower round_to cuts closer to it, at some speed)"
               if off else "")
        p.note(f"channel counts above {step} rounded to multiples of it, fewer to its halvings "
               f"(onnxruntime's fast conv path needs them on this CPU){why}")
        below = [name for name in prunable if channels[name][0] >= step > channels[name][1]]
        if below:
            widths = sorted({channels[name][1] for name in below}, reverse=True)
            p.note(f"{_some(below)} went below one {step}-channel block (to "
                   f"{', '.join(map(str, widths))}), where no count gets onnxruntime's fast conv "
                   "path: on an AVX-512 CPU, ResNet-20's int8 convs narrowed from 16 channels to 8 "
                   "ran slower, not faster (fp32 ones kept pace with their MACs). To keep them at "
                   f"{step}, add them to ignore: (and relax the target if it needs them)")


def _rounded_off(channels: dict, prunable: list[str], cfg, step: int) -> list[str]:
    """'3 kept 32 of 32 channels, not the 24 asked' for each layer that round_to left above or below
    a uniform amount; nothing for global ranking, per-layer amounts or budgets (no one count is
    asked)."""
    from edgec.passes.prune_structured import sub_block_counts, units_kept

    if cfg.amount is None or cfg.global_ranking or cfg.layers or cfg.amount > cfg.max_per_layer:
        return []
    out = []
    for name in prunable:
        before, after = channels[name]
        asked = units_kept(before, cfg.amount)
        if after != asked and (after % step == 0 or after in sub_block_counts(step)):
            out.append(f"{name} kept {after} of {before} channels, not the {asked} asked")
    return out


def _some(names: list[str], shown: int = 3) -> str:
    """'a, b, c and 4 more': a note stays one readable line on a deep network."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _describe_blocks(p: Pass, engine, before: dict, after: dict, model: nn.Module) -> None:
    removed = engine.removed(model)
    macs_x = before["macs"] / max(after["macs"], 1)
    p.details.update(blocks={n: {"removed": n in removed, "influence": engine.influence.get(n)}
                             for n in engine.blocks},
                     achieved_ratio=round(len(removed) / len(engine.blocks), 4),
                     macs_reduction=round(macs_x, 3))
    p.note(f"removed {len(removed)} of {len(engine.blocks)} residual blocks "
           f"({', '.join(removed) or 'none'}): {_counts(before, after)}")


def _describe_sparsity(p: Pass, engine, before: dict, after: dict, model: nn.Module) -> None:
    from edgec.passes.prune_unstructured import sparsity_by_layer

    layers = sparsity_by_layer(model)
    eligible = {n: model.get_submodule(n).weight.numel() for n in engine.names}
    zeros = sum(layers[n] * size for n, size in eligible.items())
    sparsity = zeros / max(sum(eligible.values()), 1)
    p.details.update(sparsity=layers, achieved_ratio=round(sparsity, 4))
    p.note(f"{sparsity:.1%} of the weights of {len(eligible)} conv/linear layers are now zero "
           f"(non-zero params {_si(before['nonzero_params'])} → {_si(after['nonzero_params'])})")
    p.note("unstructured sparsity keeps every shape and MAC: onnxruntime's CPU kernels are dense, "
           "so expect no speed-up; the gain shows in the gzip'd model size (size_gzip_bytes)")


def markdown_sections(report) -> list[str]:
    """report.md lines for each prune pass: per-layer channels (or sparsity), the steps of a
    schedule, and what the pruning did to the whole model, measured on the exported files."""
    lines: list[str] = []
    for rec in report.passes:
        if rec.type != "prune":
            continue
        d = rec.details
        lines += [f"## Pruning: {rec.label} ({d.get('structure')})", ""]
        removed = rec.params_before - rec.params_after
        zeroed = (rec.nonzero_params_before - rec.nonzero_params_after) - removed
        lines.append(f"{d.get('structure')} pruning, importance {d.get('importance')}"
                     f"{', global ranking' if d.get('global_ranking') else ''}: physically removed "
                     f"{removed:,} parameters ({removed / max(rec.params_before, 1):.1%}), zeroed "
                     f"{max(zeroed, 0):,} in place; MACs {_si(d.get('macs_before', 0))} → "
                     f"{_si(d.get('macs_after', 0))} ({TORCH_COUNTS}).")
        lines.append("")
        if d.get("structure") == "unstructured":
            lines += _sparsity_table(d) + _no_speed_statement(report)
        elif d.get("structure") == "block":
            lines += _block_table(d)
        else:
            lines += _channel_table(d)
        lines += _steps_table(d.get("steps", []))
    return lines


def _channel_table(d: dict) -> list[str]:
    protected = d.get("protected", {})
    rows = ["| layer | channels before → after | removed |", "|---|---|---|"]
    for name, (before, after) in d.get("channels", {}).items():
        why = f" ({protected[name]})" if name in protected and before == after else ""
        rows.append(f"| {name} | {before} → {after} | {before - after}{why} |")
    return [*rows, ""]


def _block_table(d: dict) -> list[str]:
    rows = ["| residual block | influence | removed |", "|---|---|---|"]
    for name, b in d.get("blocks", {}).items():
        inf = "—" if b.get("influence") is None else f"{b['influence']:.4f}"
        rows.append(f"| {name} | {inf} | {'yes' if b.get('removed') else 'no'} |")
    return [*rows, ""]


def _sparsity_table(d: dict) -> list[str]:
    rows = ["| layer | zero weights |", "|---|---|"]
    rows += [f"| {name} | {share:.1%} |" for name, share in d.get("sparsity", {}).items()]
    return [*rows, ""]


def _no_speed_statement(report) -> list[str]:
    speed = report.ratios.get("speedup_p50") if report.ratios else None
    gzip_x = report.ratios.get("size_gzip") if report.ratios else None
    measured = (f" Measured here: {speed:.2f}× the baseline's speed, gzip'd file {gzip_x:.2f}× "
                "smaller." if speed and gzip_x else "")
    return ["Unstructured sparsity keeps every tensor shape and MAC, and onnxruntime's CPU "
            "execution provider has no sparse kernels: expect no speed-up and no smaller raw "
            "file from it; the zeros pay off in the gzip'd size (or a runtime with sparse "
            f"kernels).{measured}", ""]


def _steps_table(steps: list[dict]) -> list[str]:
    if len(steps) < 2:
        return []
    rows = ["| step | cumulative ratio | MACs | params | val accuracy |", "|---|---|---|---|---|"]
    for s in steps:
        acc = s.get("val_accuracy")
        rows.append(f"| {s['step']} | {s['ratio']:g} | {_si(s['macs'])} | {_si(s['params'])} | "
                    f"{'—' if acc is None else f'{acc:.2%}'} |")
    return [*rows, ""]
