"""Knowledge distillation (``type: distill``): a student learns from a teacher's outputs.

The teacher (default: the recipe's original model) labels every training batch with its soft
predictions; the student trains on them (``kd_loss``, T²-scaled) mixed with the hard labels
(``alpha``), plus optional feature losses between named layers. Training reuses the shared loop in
``edgec.training`` through its ``loss_fn`` hook, so the optimizer, schedule, hold-out choice of the
best epoch and progress bar are the same as fine-tuning.

Without real training data (the recipe's data is synthetic, or ``data: synthetic`` here), the
training inputs are synthesized from the teacher first (``distill_datafree``), saved in the run
folder, and, when the recipe has no real data at all, handed on as calibration data to later
passes such as static quantization.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from edgec.errors import DataError
from edgec.passes.base import PassContext, TorchPass
from edgec.passes.distill_config import DistillConfig
from edgec.passes.distill_models import WidthStudentConfig
from edgec.passes.registry import register_pass
from edgec.training import holdout, train

if TYPE_CHECKING:
    import numpy as np
    import torch.nn as nn

    from edgec.data import Split


@register_pass
class DistillPass(TorchPass):
    name = "distill"
    Config = DistillConfig

    def apply(self, model: nn.Module, ctx: PassContext) -> nn.Module:
        from edgec.passes.distill_datafree import frozen
        from edgec.passes.distill_models import build_student, load_teacher
        from edgec.passes.prune_unstructured import zeros_kept
        from edgec.torch_stats import count_params

        synthetic = self.config.data == "synthetic" or (self.config.data == "auto"
                                                        and _no_training_data(ctx))
        cfg = self.config.for_data(synthetic)
        teacher = load_teacher(cfg.teacher, ctx)
        student = build_student(cfg.student, model, teacher, ctx)
        train_split, val = (self._synthetic_splits(cfg, teacher, ctx) if synthetic
                            else self._real_splits(cfg, ctx))
        eval_x = ctx.data.eval.x
        teacher_acc = _accuracy(teacher, ctx.data.eval)
        before = (_accuracy(student, ctx.data.eval), agreement(student, teacher, eval_x))
        wrapper, loss_fn = distillation_objective(student, teacher, cfg, ctx.input_shape,
                                                  jitter=cfg.synthetic.jitter if synthetic else 0,
                                                  seed=ctx.seed)
        try:
            # after unstructured pruning the student's zeros must stay zeros (no regrowth)
            with frozen(teacher), zeros_kept(student):
                result = train(wrapper, train_split, val, cfg, epochs=cfg.epochs, seed=ctx.seed,
                               progress=ctx.progress, loss_fn=loss_fn, description="distilling")
        finally:
            wrapper.release()  # the feature hooks must not stay on the exported models
        student.eval()
        after = (_accuracy(student, ctx.data.eval), agreement(student, teacher, eval_x))
        self.details.update(
            teacher="baseline" if cfg.teacher == "baseline" else cfg.teacher.source,
            student=_describe_student(cfg.student), data="synthetic" if synthetic else "real",
            teacher_params=count_params(teacher)[0], student_params=count_params(student)[0],
            teacher_accuracy=teacher_acc, student_accuracy_before=before[0],
            student_accuracy_after=after[0], agreement_before=before[1], agreement_after=after[1],
            temperature=cfg.temperature, alpha=cfg.alpha, train_samples=len(train_split),
            features=[p.model_dump() for p in cfg.features], epochs=result.history,
            best_epoch=result.best_epoch, best_val_accuracy=result.best_accuracy,
        )
        self._summarize(teacher_acc, before, after)
        return student

    def _real_splits(self, cfg: DistillConfig, ctx: PassContext) -> tuple[Split, Split | None]:
        if _no_training_data(ctx):
            raise DataError("distill (data: real) needs a training split, but this run's data has "
                            "none. Use data: digits / npz / imagefolder, or set data: synthetic on "
                            "the pass to distil from teacher-generated inputs.")
        if cfg.alpha < 1 and ctx.data.train.y is None:
            raise DataError(f"distill: alpha {cfg.alpha} < 1 mixes in the hard-label loss, but the "
                            "training data has no labels. Set alpha: 1 (soft targets only).")
        return holdout(ctx.data.train, cfg.val_fraction, ctx.seed)

    def _synthetic_splits(self, cfg: DistillConfig, teacher: nn.Module,
                          ctx: PassContext) -> tuple[Split, Split | None]:
        """Synthesize inputs; a hold-out (none by default) is labelled with the teacher's
        predictions, so picking the best epoch on it means picking the one that agrees most."""
        from edgec.data import CALIB_MAX, Split
        from edgec.passes.distill_datafree import save_synthetic, synthesize

        num_classes = _output_classes(teacher, ctx.input_shape)
        metadata = None
        if cfg.synthetic.method == "dream":
            from edgec.passes.distill_metadata import Metadata

            metadata = Metadata.load(ctx.recipe_dir / cfg.synthetic.metadata)
        made = synthesize(teacher, ctx.input_shape, num_classes, cfg.synthetic, ctx.seed, ctx.progress,
                          metadata)
        stem = f"{cfg.label or 'distill'}-synthetic"
        files = save_synthetic(made, ctx.run_dir, stem)
        self.details["synthetic"] = {**made.summary(), "files": [p.name for p in files]}
        self.note(f"synthesized {len(made.x)} inputs from the teacher in {made.seconds:.0f} s "
                  f"(BN-statistics loss {made.bn_loss_start:.3g} → {made.bn_loss_end:.3g}; teacher "
                  f"predicts the target class for {made.teacher_agreement:.1%}); see {files[-1].name}")
        if made.bn_layers == 0 and metadata is None:
            self.note("the teacher has no BatchNorm: synthetic inputs only follow its class "
                      "predictions and the image priors, so expect a weaker student")
        calibrate = cfg.use_synthetic_for_calibration
        if calibrate or (calibrate is None and _no_training_data(ctx)):
            ctx.data = replace(ctx.data, calib=Split(made.x[:CALIB_MAX]))
            self.note(f"later passes calibrate on {min(len(made.x), CALIB_MAX)} synthetic inputs")
        train_split, val = holdout(Split(made.x, made.y), cfg.val_fraction, ctx.seed)
        if val is not None:
            val = Split(val.x, _predictions(teacher, val.x))
        return train_split, val

    def _summarize(self, teacher_acc, before, after) -> None:
        if after[0] is not None and teacher_acc is not None:
            start = "n/a" if before[0] is None else f"{before[0]:.2%}"
            self.note(f"distilled: student accuracy {start} → {after[0]:.2%} (teacher "
                      f"{teacher_acc:.2%}); agreement with teacher {before[1]:.1%} → {after[1]:.1%}")
        else:
            self.note(f"distilled: agreement with the teacher on the eval inputs "
                      f"{before[1]:.1%} → {after[1]:.1%} (no labels, so no accuracy)")


def distillation_objective(student: nn.Module, teacher: nn.Module, cfg: DistillConfig,
                           input_shape: tuple[int, ...], *, jitter: int = 0, seed: int = 0):
    """(trainable module, loss_fn) for ``edgec.training.train``; ``cfg`` with its data-dependent
    defaults filled in (``cfg.for_data(...)``).

    The trainable module wraps the student and the feature adapters, so the optimizer updates both
    and the best-epoch checkpoint restores both; its forward is the student's. ``loss_fn`` runs the
    frozen teacher on the same (optionally jittered) batch.
    """
    import torch
    import torch.nn as nn

    from edgec.passes.distill_datafree import jitter_shift
    from edgec.passes.distill_losses import (
        FeatureTaps,
        attention_loss,
        distillation_loss,
        feature_mse,
        make_adapter,
    )

    pairs = cfg.features
    t_taps = FeatureTaps(teacher, [p.teacher for p in pairs], "teacher")
    s_taps = FeatureTaps(student, [p.student for p in pairs], "student")
    adapters = nn.ModuleDict()
    if pairs:
        probe = torch.zeros((2, *input_shape[1:]))
        was_training = student.training
        with torch.no_grad():
            student.eval()
            teacher(probe)
            student(probe)
        student.train(was_training)
        for i, p in enumerate(pairs):
            s, t = s_taps[p.student], t_taps[p.teacher]
            if p.loss == "mse":
                adapters[str(i)] = make_adapter(s.shape[1], t.shape[1], spatial=s.dim() == 4)

    class Distilled(nn.Module):
        def __init__(self):
            super().__init__()
            self.student, self.adapters = student, adapters

        def forward(self, x):
            return self.student(x)

        def release(self) -> None:
            t_taps.remove()
            s_taps.remove()

    generator = torch.Generator().manual_seed(seed + 1)

    def loss_fn(wrapper, x, y):
        x = jitter_shift(x, jitter, generator)
        with torch.no_grad():
            t_logits = teacher(x)
        loss = distillation_loss(wrapper.student(x), t_logits, y, cfg.temperature, cfg.alpha,
                                 cfg.label_smoothing)
        for i, p in enumerate(pairs):
            s, t = s_taps[p.student], t_taps[p.teacher]
            term = attention_loss(s, t) if p.loss == "attention" else feature_mse(s, t, adapters[str(i)])
            loss = loss + p.weight * term
        return loss

    return Distilled(), loss_fn


def agreement(student: nn.Module, teacher: nn.Module, x: np.ndarray, batch_size: int = 256) -> float:
    """Fraction of inputs ``x`` on which student and teacher predict the same class."""
    import torch

    same = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(x[i:i + batch_size])
            same += int((student.eval()(xb).argmax(1) == teacher.eval()(xb).argmax(1)).sum())
    return same / max(len(x), 1)


def _predictions(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    import numpy as np
    import torch

    with torch.no_grad():
        return np.concatenate([model.eval()(torch.from_numpy(x[i:i + batch_size])).argmax(1).numpy()
                               for i in range(0, len(x), batch_size)]).astype(np.int64)


def _accuracy(model: nn.Module, split) -> float | None:
    from edgec.training import evaluate_accuracy

    return evaluate_accuracy(model, split)


def _output_classes(teacher: nn.Module, input_shape: tuple[int, ...]) -> int:
    import torch

    with torch.no_grad():
        out = teacher.eval()(torch.zeros((1, *input_shape[1:])))
    if out.dim() != 2 or out.shape[1] < 2:
        raise DataError(f"distill: data-free synthesis needs a classifier (logits N×classes), but "
                        f"the teacher outputs {list(out.shape)}.")
    return int(out.shape[1])


def _no_training_data(ctx: PassContext) -> bool:
    return ctx.data.train is None or len(ctx.data.train) == 0


def _describe_student(spec) -> str:
    if spec == "current":
        return "current"
    if isinstance(spec, WidthStudentConfig):
        return f"width {spec.width:g} copy of the teacher (init: {spec.init})"
    return f"{spec.source}: {getattr(spec, 'name', None) or getattr(spec, 'callable', None) or spec.path}"
