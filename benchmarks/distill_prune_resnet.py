"""Issue 4's pruned-ResNet target: KD recovery vs plain fine-tuning after the same channel pruning.

    PYTHONPATH=src python benchmarks/distill_prune_resnet.py [--seeds 0 1 2] [--threads 2]
    PYTHONPATH=src python benchmarks/distill_prune_resnet.py --kd-variant '{"alpha": 1}'

Per seed, the prune passes of configs/resnet-digits-prune.yaml (residual blocks, then channels,
each with fine-tuning epochs between steps) run once; the pruned model is then copied and
recovered two ways with the same epochs, learning rate, optimizer, schedule and seed:
  - plain fine-tuning on the labels (the finetune pass of resnet-digits-prune.yaml),
  - distillation from the unpruned model (the distill pass of resnet-digits-prune-distill.yaml).
Accuracy is on the real eval split (fp32, torch); the drop is in points vs the unpruned model,
averaged over seeds (each seed prunes anew: one eval image is 0.19 point, so one seed is noise).
Targets: KD drop ≤ 0.5 point, plain fine-tune ≤ 1 point.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def main() -> None:
    import torch

    from edgec.data import load_data
    from edgec.models import load_model
    from edgec.passes import get_pass
    from edgec.passes.base import PassContext
    from edgec.progress import Progress
    from edgec.recipe import load_recipe
    from edgec.torch_stats import count_params
    from edgec.training import evaluate_accuracy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, help="recovery epochs for both (default: the recipes')")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="each seed prunes and recovers anew (539 eval images: 1 image = 0.19 point)")
    ap.add_argument("--kd-variant", action="append", default=[], metavar="JSON",
                    help='extra KD row with these distill settings, e.g. \'{"alpha": 1}\'')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    plain = load_recipe(CONFIGS / "resnet-digits-prune.yaml")
    kd = load_recipe(CONFIGS / "resnet-digits-prune-distill.yaml")
    prune_cfgs = [p for p in plain.passes if p.type == "prune"]
    finetune_cfg = next(p for p in plain.passes if p.type == "finetune")
    kd_cfg = next(p for p in kd.passes if p.type == "distill")
    if [p for p in kd.passes if p.type == "prune"] != prune_cfgs:
        raise SystemExit("the two recipes prune differently; the comparison needs the same pruning")
    epochs = {"epochs": args.epochs} if args.epochs else {}
    finetune_cfg = finetune_cfg.model_copy(update=epochs)
    recoveries = [(f"+ plain fine-tune {finetune_cfg.epochs} epochs", finetune_cfg)]
    for extra in [{}, *(json.loads(v) for v in args.kd_variant)]:
        cfg = type(kd_cfg).model_validate({**kd_cfg.model_dump(), **extra, **epochs})
        used = cfg.for_data(synthetic=False)  # the defaults the pass fills in
        shown = ("epochs", "temperature", "alpha")
        settings = ", ".join(f"{k}={v}" for k, v in extra.items() if k not in shown)
        recoveries.append((f"+ KD {used.epochs} epochs (T={used.temperature:g}, alpha={used.alpha:g}"
                           f"{', ' + settings if settings else ''})", cfg))

    progress = Progress(enabled=False)
    shape = tuple(plain.model.input_shape)
    baseline = load_model(plain.model, CONFIGS, progress=progress).eval()
    data = load_data(plain.data, shape, CONFIGS)
    base = evaluate_accuracy(baseline, data.eval)
    drops: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    params, pruned = 0, None
    start_all = time.perf_counter()
    scratch = tempfile.TemporaryDirectory(prefix="edgec-bench-")  # passes may leave artifacts
    for seed in args.seeds:
        ctx = PassContext(data=data, baseline=baseline, input_shape=shape, seed=seed,
                          run_dir=Path(scratch.name), recipe_dir=CONFIGS, progress=progress)
        for name, cfg in [("pruned (with its schedules' fine-tuning)", None), *recoveries]:
            start = time.perf_counter()
            if cfg is None:  # the prune passes, one after the other, as in the recipe
                out = copy.deepcopy(baseline)
                for i, prune_cfg in enumerate(prune_cfgs):
                    torch.manual_seed(seed + 1 + i)  # as the pipeline seeds before each pass
                    out = get_pass("prune")(prune_cfg).apply(out, ctx).eval()
                pruned, params = out, count_params(out)[0]
            else:
                torch.manual_seed(seed + 1)
                out = get_pass(cfg.type)(cfg).apply(copy.deepcopy(pruned), ctx).eval()
            acc = evaluate_accuracy(out, data.eval)
            drops.setdefault(name, []).append((base - acc) * 100)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            print(f"  seed {seed}, {name}: {acc:.2%}", flush=True)

    scratch.cleanup()
    n = len(args.seeds)
    print(f"\nresnet20_digits ({count_params(baseline)[0]:,} params, {base:.2%}) pruned as "
          f"resnet-digits-prune.yaml ({params:,} params at seed {args.seeds[-1]}); recovery lr "
          f"{finetune_cfg.lr:g} "
          f"({finetune_cfg.optimizer}, {finetune_cfg.lr_schedule}); eval split {len(data.eval)} "
          f"images; seeds {args.seeds}; {args.threads} threads, {time.perf_counter() - start_all:.0f} s"
          f"\n")
    print("| model | " + " | ".join(f"drop seed {s}" for s in args.seeds) + " | mean drop | s per seed |")
    print("|---|" + "---:|" * (n + 2))
    for name, values in drops.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values)
              + f" | **{statistics.mean(values):.2f}** | {seconds[name] / n:.0f} |")
    print("(drop in points vs the unpruned model)")
    names = list(drops)
    for name, limit in ((names[1], 1.0), (names[2], 0.5)):
        mean = statistics.mean(drops[name])
        print(f"  {'PASS' if mean <= limit else 'FAIL'}  {name}: mean drop {mean:.2f} (target ≤ "
              f"{limit:g}; worst seed {max(drops[name]):.2f})")


if __name__ == "__main__":
    main()
