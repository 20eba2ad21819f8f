"""A small temperature × alpha sweep of KD on the digits (real data), to choose the pass defaults.

    PYTHONPATH=src python benchmarks/distill_sweep.py [--seeds 0 1] [--init random]

Student: a width-scaled copy of digits_cnn (0.45 → 21% of the parameters), trained with the distill
pass's objective for the same epochs / optimizer / schedule in every cell; only T and alpha change.
Accuracy is on the real eval split, averaged over the seeds (seed = shuffling, jitter and, for
random init, the initialization). The data-free path is swept in distill_digits.py (--images …).
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    import torch

    from edgec.data import digits_splits
    from edgec.passes.distill import DistillConfig, distillation_objective
    from edgec.passes.distill_datafree import frozen
    from edgec.passes.distill_models import width_scaled_copy
    from edgec.progress import Progress
    from edgec.training import evaluate_accuracy, holdout, train
    from edgec.zoo import load_zoo_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=0.45)
    ap.add_argument("--init", default="random", choices=["random", "teacher"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--temperatures", type=float, nargs="+", default=[2, 4, 8])
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.5, 0.9, 1.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    progress = Progress(enabled=False)
    teacher = load_zoo_model("digits_cnn", progress=progress)
    data = digits_splits()
    shape = (1, 1, 8, 8)
    start = time.perf_counter()
    cells: dict[tuple[float, float], list[float]] = {}
    for seed in args.seeds:
        split, val = holdout(data.train, 0.1, seed)
        for temperature in args.temperatures:
            for alpha in args.alphas:
                cfg = DistillConfig(epochs=args.epochs, temperature=temperature, alpha=alpha)
                student = width_scaled_copy(teacher, args.width, shape, seed,
                                            reinitialize=args.init == "random")
                wrapper, loss_fn = distillation_objective(student, teacher, cfg, shape, seed=seed)
                with frozen(teacher):
                    train(wrapper, split, val, cfg, epochs=cfg.epochs, seed=seed, progress=progress,
                          loss_fn=loss_fn)
                wrapper.release()
                acc = evaluate_accuracy(student.eval(), data.eval)
                cells.setdefault((temperature, alpha), []).append(acc)
                print(f"  seed {seed} T {temperature:g} alpha {alpha:g}: {acc:.2%}", flush=True)

    print(f"\nKD on real digits, width {args.width:g} student ({args.init} init), {args.epochs} "
          f"epochs, lr {DistillConfig().lr:g}; eval accuracy, mean over seeds {args.seeds} "
          f"({time.perf_counter() - start:.0f} s)\n")
    print("| T \\ alpha | " + " | ".join(f"{a:g}" for a in args.alphas) + " |")
    print("|---|" + "---:|" * len(args.alphas))
    for temperature in args.temperatures:
        means = [statistics.mean(cells[(temperature, a)]) for a in args.alphas]
        print(f"| {temperature:g} | " + " | ".join(f"{m:.2%}" for m in means) + " |")


if __name__ == "__main__":
    main()
