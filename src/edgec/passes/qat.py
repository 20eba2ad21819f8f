"""Quantization-aware training (``type: qat``, torch stage): fine-tune with int8 rounding in the loop.

Flow: trace the model and insert fake quantization (qat_modules), calibrate the activation
observers on the calibration split, train ``freeze_bn_after`` epochs with BatchNorm still learning,
fold BatchNorm into the convolutions, train the remaining epochs on the folded (exactly exported)
weights, and hand the model to export: its fake-quant ops become QuantizeLinear/DequantizeLinear
that onnxruntime runs as int8 kernels — no ONNX quantize pass is needed (or allowed) after it.

Ordering: QAT must be the last torch-stage pass (prune and distill before it). With
``teacher: baseline`` the unmodified model supervises the QAT student (knowledge distillation
loss), which recovers more than labels alone after pruning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from edgec.errors import PassError
from edgec.passes.base import PassConfig, PassContext, TorchPass
from edgec.passes.registry import register_pass
from edgec.training import TrainingConfig, evaluate_accuracy, holdout, labelled_train_split, train

if TYPE_CHECKING:
    import torch.nn as nn

# The exported int8 model may differ from the fake-quant torch model by a few output steps:
# onnxruntime requantizes in integer arithmetic, so a value on a rounding boundary can land one
# step away, and such flips propagate. Export parity is checked to this many output steps.
PARITY_STEPS = 8
# Learning-rate factor once BatchNorm is folded: without BN nothing renormalizes the activations,
# and the steps that BN absorbed now change the network's output directly. Measured on a pruned
# ResNet-20: folded training at lr 0.003-0.005 diverged (loss 1 -> 30, accuracy 10%) while 0.0005
# recovered to 97-98%; the unfolded phase is unaffected.
FOLDED_LR_SCALE = 0.1


class QatConfig(PassConfig, TrainingConfig):
    type: Literal["qat"] = "qat"
    epochs: int = Field(4, ge=1, le=1000, description="Fine-tuning epochs with fake quantization.")
    lr: float = Field(0.005, gt=0, le=10, description="Peak learning rate (lower than from-scratch "
                      "training: QAT only adapts the weights to int8 rounding).")
    freeze_bn_after: int = Field(
        2, ge=0, description="Epochs with BatchNorm still updating; then BN is folded into the "
        "convolutions and training continues on the folded weights that get exported, at a tenth "
        "of lr (nothing renormalizes them any more). 0: fold at once.",
    )
    observer: Literal["ema_minmax", "minmax"] = Field(
        "ema_minmax", description="Activation range observer: ema_minmax (moving average of batch "
        "min/max; robust to outlier batches) or minmax (running extreme values).",
    )
    observer_momentum: float = Field(
        0.01, gt=0, le=1, description="ema_minmax: weight of each new batch in the moving range.",
    )
    calibration_samples: int = Field(
        256, ge=1, description="Calibration samples that initialise the activation ranges.",
    )
    reduce_range: bool | Literal["auto"] = Field(
        "auto", description="7-bit weights. auto: on for x86 CPUs without VNNI, whose int8 "
        "kernels saturate with full-range weights (the exported model would then disagree with "
        "the trained one); off elsewhere.",
    )
    exclude_layers: tuple[str, ...] = Field(
        (), description="Module paths (e.g. conv1, fc) kept in float.",
    )
    teacher: Literal["none", "baseline"] = Field(
        "none", description="baseline: the unmodified model supervises the QAT student "
        "(distillation loss mixed with the labels' cross-entropy).",
    )
    distill_alpha: float = Field(0.5, ge=0, le=1, description="teacher: weight of the "
                                 "distillation loss (1 - alpha on the labels).")
    temperature: float = Field(4.0, gt=0, le=100, description="teacher: softmax temperature.")

    @model_validator(mode="after")
    def _bn_within_epochs(self) -> QatConfig:
        if self.freeze_bn_after > self.epochs:
            raise ValueError(f"freeze_bn_after ({self.freeze_bn_after}) exceeds epochs "
                             f"({self.epochs}); BN would never be folded before export")
        return self

    def data_requirement(self) -> str | None:
        return "labelled training data (QAT fine-tunes the model)"

    def trains_weights(self) -> bool:
        return True


@register_pass
class QatPass(TorchPass):
    name = "qat"
    Config = QatConfig

    def apply(self, model: nn.Module, ctx: PassContext) -> nn.Module:
        from edgec.passes.qat_modules import fold_batchnorms, prepare_qat

        cfg: QatConfig = self.config  # type: ignore[assignment]
        train_split, val = holdout(labelled_train_split(ctx.data, "qat"), cfg.val_fraction, ctx.seed)
        before = evaluate_accuracy(model, ctx.data.eval)
        names = {n for n, _ in model.named_modules()}
        missing = [n for n in cfg.exclude_layers if n not in names]
        if missing:
            raise PassError(f"qat.exclude_layers: no module named {', '.join(map(repr, missing))}. "
                            f"Module paths look like: {', '.join(sorted(names - {''})[:6])}.")
        from edgec.cpu import has_vnni, is_x86
        from edgec.passes.qat_modules import WEIGHT_QMAX, WEIGHT_QMAX_REDUCED

        reduce = (is_x86() and not has_vnni()) if cfg.reduce_range == "auto" else cfg.reduce_range
        try:
            gm, layers, bn_pairs = prepare_qat(
                model, set(cfg.exclude_layers), WEIGHT_QMAX_REDUCED if reduce else WEIGHT_QMAX)
        except Exception as exc:  # torch.fx cannot trace data-dependent Python control flow
            raise PassError(
                f"qat: torch.fx cannot trace this model ({type(exc).__name__}: {exc}). QAT needs "
                "a traceable forward; use the ONNX quantize pass (mode: static) instead."
            ) from exc
        self._calibrate(gm, ctx)
        loss_fn = self._distill_loss(ctx) if cfg.teacher == "baseline" else None
        history, phases = [], ((cfg.freeze_bn_after, "QAT (BN learning)"),
                               (cfg.epochs - cfg.freeze_bn_after, "QAT (BN folded)"))
        folded = 0
        for i, (epochs, label) in enumerate(phases):
            phase_cfg = cfg
            if i == 1:
                folded = fold_batchnorms(gm, bn_pairs)
                phase_cfg = cfg.model_copy(update={"lr": cfg.lr * FOLDED_LR_SCALE})
            result = train(gm, train_split, val, phase_cfg, epochs=epochs, seed=ctx.seed + i,
                           progress=ctx.progress, loss_fn=loss_fn, description=label)
            history += [dict(h, phase=label) for h in result.history]
        gm.eval()
        after = evaluate_accuracy(gm, ctx.data.eval)
        gm.edgec_parity_atol = PARITY_STEPS * _output_scale(gm)
        self.details.update(
            quantized_layers=len(layers), float_layers=list(cfg.exclude_layers),
            batchnorms_folded=folded, epochs=history, teacher=cfg.teacher,
            eval_accuracy_float=before, eval_accuracy_qat=after,
            parity_atol=round(gm.edgec_parity_atol, 6), reduce_range=reduce,
        )
        if before is not None and after is not None:
            self.note(f"QAT: {len(layers)} layers fake-quantized (int8 weights per channel, uint8 "
                      f"activations), {folded} BatchNorms folded; torch eval accuracy "
                      f"{before:.2%} (float) → {after:.2%} (int8 simulated)")
        return gm

    def _calibrate(self, gm: nn.Module, ctx: PassContext) -> None:
        import torch

        from edgec.passes.qat_modules import ActivationFakeQuant, set_observers

        cfg: QatConfig = self.config  # type: ignore[assignment]
        observers = [m for m in gm.modules() if isinstance(m, ActivationFakeQuant)]
        x = ctx.data.calib.x[: cfg.calibration_samples]
        gm.eval()
        set_observers(gm, observe=True, enabled=False)
        for m in observers:  # calibration: running extremes, recorded in training mode (BN
            m.momentum = None  # stays in eval mode and keeps its running statistics)
            m.train()
        with torch.no_grad():
            for i in range(0, len(x), 64):
                gm(torch.from_numpy(x[i:i + 64]))
        for m in observers:
            m.momentum = cfg.observer_momentum if cfg.observer == "ema_minmax" else None
        set_observers(gm, enabled=True)

    def _distill_loss(self, ctx: PassContext):
        """The distill pass's loss (soft targets + label-smoothed hard labels), teacher frozen."""
        import torch

        from edgec.passes.distill_losses import distillation_loss

        cfg: QatConfig = self.config  # type: ignore[assignment]
        teacher = ctx.baseline.eval()

        def loss(student, x, y):
            with torch.no_grad():
                teacher_logits = teacher(x)
            return distillation_loss(student(x), teacher_logits, y, cfg.temperature,
                                     cfg.distill_alpha, cfg.label_smoothing)

        return loss


def _output_scale(gm: nn.Module) -> float:
    """Quantization step of the model's output (its last fake-quant), for the parity check."""
    from edgec.passes.qat_modules import ActivationFakeQuant

    out = next(n for n in gm.graph.nodes if n.op == "output")
    arg = out.args[0]
    if getattr(arg, "op", None) == "call_module":
        mod = gm.get_submodule(arg.target)
        if isinstance(mod, ActivationFakeQuant):
            return mod.qparams()[0]
    return 1e-3
