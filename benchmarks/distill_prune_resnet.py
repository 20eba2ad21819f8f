"""Issue 4's pruned-ResNet target: KD recovery vs plain fine-tuning after the same channel pruning.

    PYTHONPATH=src python benchmarks/distill_prune_resnet.py [--epochs 8] [--threads 2]

The prune pass of configs/resnet-digits-prune.yaml (channel pruning of resnet20_digits to 20% of
the MACs, channels rounded to 8, in 3 steps with 2 fine-tuning epochs between) runs once; the
pruned model is then copied and recovered two ways with the same epochs, learning rate, optimizer,
schedule and seed:
  - plain fine-tuning on the labels (the finetune pass of resnet-digits-prune.yaml),
  - distillation from the unpruned model (the distill pass of resnet-digits-prune-distill.yaml).
Accuracy is on the real eval split (fp32, torch); the drop is in points vs the unpruned model.
Targets: KD drop ≤ 0.5 point, plain fine-tune ≤ 1 point.
"""

from __future__ import annotations

import argparse
import copy
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
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    plain = load_recipe(CONFIGS / "resnet-digits-prune.yaml")
    kd = load_recipe(CONFIGS / "resnet-digits-prune-distill.yaml")
    prune_cfg, finetune_cfg = plain.passes[0], plain.passes[1]
    distill_cfg = kd.passes[1]
    if kd.passes[0] != prune_cfg:
        raise SystemExit("the two recipes prune differently; the comparison needs the same pruning")
    if args.epochs:
        finetune_cfg = finetune_cfg.model_copy(update={"epochs": args.epochs})
        distill_cfg = distill_cfg.model_copy(update={"epochs": args.epochs})

    progress = Progress(enabled=False)
    shape = tuple(plain.model.input_shape)
    baseline = load_model(plain.model, CONFIGS, progress=progress).eval()
    data = load_data(plain.data, shape, CONFIGS)
    ctx = PassContext(data=data, baseline=baseline, input_shape=shape, seed=args.seed,
                      run_dir=Path(tempfile.mkdtemp(prefix="edgec-bench-")), recipe_dir=CONFIGS,
                      progress=progress)
    rows = []

    def record(name: str, model, seconds: float) -> None:
        acc = evaluate_accuracy(model, data.eval)
        rows.append((name, count_params(model)[0], acc, seconds))
        print(f"  {name}: {acc:.2%} ({seconds:.0f} s)", flush=True)

    def run(cfg, model):
        torch.manual_seed(args.seed + 1)  # as the pipeline seeds before each pass
        start = time.perf_counter()
        instance = get_pass(cfg.type)(cfg)
        out = instance.apply(model, ctx)
        return out.eval(), time.perf_counter() - start, instance

    record("unpruned (teacher)", baseline, 0.0)
    pruned, seconds, _ = run(prune_cfg, copy.deepcopy(baseline))
    record("pruned (3 steps × 2 fine-tuning epochs)", pruned, seconds)
    tuned, seconds, _ = run(finetune_cfg, copy.deepcopy(pruned))
    record(f"+ plain fine-tune {finetune_cfg.epochs} epochs", tuned, seconds)
    distilled, seconds, p = run(distill_cfg, copy.deepcopy(pruned))
    record(f"+ KD {p.config.epochs} epochs (T={distill_cfg.temperature:g}, "
           f"alpha={distill_cfg.alpha:g})", distilled, seconds)

    base = rows[0][2]
    print(f"\nresnet20_digits channel-pruned to 20% MACs, recovery lr {finetune_cfg.lr:g} "
          f"({finetune_cfg.optimizer}, {finetune_cfg.lr_schedule}), seed {args.seed}; eval split "
          f"{len(data.eval)} images\n")
    print("| model | params | eval accuracy | drop (points) | s |")
    print("|---|---:|---:|---:|---:|")
    for name, params, acc, secs in rows:
        print(f"| {name} | {params:,} | {acc:.2%} | {(base - acc) * 100:.2f} | {secs:.0f} |")
    for name, limit, acc in (("plain fine-tune", 1.0, rows[2][2]), ("KD recovery", 0.5, rows[3][2])):
        drop = (base - acc) * 100
        print(f"  {'PASS' if drop <= limit else 'FAIL'}  {name} drop {drop:.2f} (target ≤ {limit:g})")


if __name__ == "__main__":
    main()
