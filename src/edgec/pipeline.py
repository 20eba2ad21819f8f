"""The one orchestrator: recipe → model → torch passes → export → ONNX passes → benchmark → report.

Only this module calls the stages, in this order. Each stage gets what it needs as arguments and
returns values; none reads the whole recipe or writes the report. Whatever happens, the run folder
ends up with a report.json that says how far the run got.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import EdgecError, RecipeError, sigterm_as_interrupt
from edgec.progress import Progress
from edgec.report import Report, find_findings, write_text_atomic
from edgec.run_failure import exited_error, stopped_error
from edgec.rundir import RunFolder

if TYPE_CHECKING:
    from edgec.recipe import Recipe


def run_recipe(
    recipe: Recipe, *, recipe_dir: Path, output: Path, force: bool = False,
    progress: Progress | None = None, against: dict | None = None, resume: bool = False,
    stage_cache: Path | None = None,
) -> Report:
    """Run every stage of ``recipe`` into the run folder ``output``; returns the report.

    Raises EdgecError subclasses for user-facing failures (after writing a failed report into the
    unfinished folder, which the exception names as ``run_folder``, and the step that failed as
    ``run_step``: a full disk may leave no report.json to say it). ``resume`` continues the
    unfinished run of ``output`` from its last completed step. A missed budget is not an
    exception: check ``report.passed``. ``against`` is a stored report (regression.load_against)
    to gate regressions on. ``stage_cache`` is a folder shared by runs (a sweep's variants) that
    may reuse each other's export and torch passes (stage_cache.py).
    """
    from edgec.environment import NONDETERMINISTIC, collect_environment, record_torch_threads
    from edgec.resume import Checkpoints

    if recipe.mlflow is not None:  # a missing package or unusable store fails now, not after the run
        from edgec.mlflow_log import check_mlflow

        check_mlflow(recipe.mlflow)
    folder = RunFolder(output, force, resume)  # refuses an existing run before any work
    run = _Run(recipe, recipe_dir, folder.path, progress or Progress())
    run.against, run.stage_cache = against, stage_cache
    run.report.environment = collect_environment(recipe.benchmark.threads, recipe.seed)
    run.report.environment["nondeterministic"] = NONDETERMINISTIC
    with folder, sigterm_as_interrupt():
        try:
            run.checkpoints = Checkpoints(folder.path, run.report.recipe, folder.resumed)
            if resume and not folder.resumed:
                run.progress.log(f"edgec: --resume: no unfinished run of {output}; starting fresh")
            if run.checkpoints.note:
                run.progress.log(f"edgec: --resume: {run.checkpoints.note}")
            run.execute()
            record_torch_threads(run.report.environment)
            run.report.run_dir = str(output)
            run.report.relocate(folder.path, output)
            run.step = "write report"
            run.write_report()
            run.checkpoints.discard()
        except BaseException as caught:
            exc = exited_error(caught, run.step) if isinstance(caught, SystemExit) else caught
            record_torch_threads(run.report.environment)
            run.fail(exc)
            run.report.run_dir = str(folder.path)
            with contextlib.suppress(OSError):  # a full disk must not hide the first error
                run.write_report()
            error = stopped_error(exc, run.step, folder.path)  # says where the work is kept
            if error is caught:
                raise
            raise error from caught
    if recipe.mlflow is not None:
        from edgec.mlflow_log import log_to_mlflow

        run_id = log_to_mlflow(recipe.mlflow, run.report, Path(output))
        run.progress.log(f"edgec: logged to MLflow, run {run_id}")
    return run.report


class _Run:
    """State of one run; each method is one stage, called in order by ``execute``."""

    def __init__(self, recipe: Recipe, recipe_dir: Path, workdir: Path, progress: Progress):
        self.recipe, self.recipe_dir, self.workdir, self.progress = recipe, recipe_dir, workdir, progress
        self.step = "setup"
        self.against: dict | None = None
        self.stage_cache: Path | None = None  # a sweep's shared torch-stage folder
        self.output_classes: int | None = None  # the model's output width, once loaded
        self.started = time.perf_counter()
        self.report = Report(
            recipe=recipe.model_dump(mode="json"), environment={},
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    def _enter(self, step: str) -> None:
        self.step = step
        self.progress.log(f"edgec: {step}…")

    def execute(self) -> None:
        from edgec.device import DeviceStage
        from edgec.export_cache import eligible
        from edgec.passes import PASSES, PassContext
        from edgec.resume import Restorer

        self.restorer = Restorer(self.checkpoints, self.report, self.progress, self.workdir)
        torch_cfgs = [c for c in self.recipe.passes if PASSES[c.type].stage == "torch"]
        onnx_cfgs = [c for c in self.recipe.passes if PASSES[c.type].stage == "onnx"]
        exported = self.restorer.export(len(torch_cfgs))
        # A trained zoo model with only ONNX passes may not need torch at all (export_cache.py):
        # decided first, so torch is imported (and seeded) only by runs that use it.
        kept = exported is None and eligible(self.recipe, torch_cfgs)
        if not kept:
            import torch  # seeded with the other RNGs just below
        self._seed_everything()
        self._write_resolved_recipe()
        self.device = DeviceStage(self.recipe, self.recipe_dir, self.workdir, self.report.device)
        if kept:
            baseline, data = None, self._load_data()
        else:
            baseline = self._load_model()
            data = self._load_data()
            self._check_labels(data, self.output_classes)
            # a zoo model trained just now (its first use) is kept too: the next run is torch-free
            kept = exported is None and eligible(self.recipe, torch_cfgs)
        ctx = PassContext(
            data=data, baseline=baseline, input_shape=tuple(self.recipe.model.input_shape),
            seed=self.recipe.seed, run_dir=self.workdir, recipe_dir=self.recipe_dir,
            progress=self.progress,
        )
        with self._shared_stage(exported, kept, baseline, data, torch_cfgs) as shared:
            if exported is None and shared.hit:
                from edgec.stage_cache import reuse

                self.step = "reuse export"  # a copy into the run folder, which may fail (disk full)
                exported = reuse(shared, self.workdir, self.report, self.checkpoints, self.progress)
                if baseline is None:  # a kept export: the labels check needs the model's width
                    self._check_labels(data, shared.meta.get("output_classes"))
            if exported is None:
                if baseline is None:  # nothing kept yet: this run exports, and keeps, the model
                    import torch

                    torch.manual_seed(self.recipe.seed)  # nothing drew from it yet: as if seeded first
                    ctx.baseline = baseline = self._load_model()
                    self._check_labels(data, self.output_classes)
                self._export_baseline(baseline, data)
            if self.device.target:  # on the exported baseline, before any (slow) pass runs
                self._enter(f"target check ({self.device.target.name})")
                self.device.before_compression(self.workdir / "baseline.onnx")
            if exported is None:
                model = self._run_torch_passes(baseline, torch_cfgs, ctx)
                exported = self._export_compressed(model, data, changed=bool(torch_cfgs))
                shared.save(self.workdir, exported, self.report,
                            extra={"output_classes": self.output_classes})
        if torch_cfgs:
            self.device.after_step("export", exported, [c.type for c in onnx_cfgs])
        final = self._run_onnx_passes(exported, onnx_cfgs, ctx)
        self.step = "write model.onnx"
        shutil.copyfile(final, self.workdir / "model.onnx")
        self._benchmark(data)
        self._profile(data)

    def _shared_stage(self, exported, kept: bool, baseline, data, torch_cfgs):
        """Where this run's torch stage may come from: the user's kept exports (zoo models with
        only ONNX passes), else a sweep's shared stage, else nowhere (computed here)."""
        from edgec.stage_cache import shared_stage

        if kept:
            from edgec.export_cache import claim_kept_export

            claimed = claim_kept_export(self.recipe, data, self.progress)
            if claimed is not None:
                return claimed
        root = None if exported is not None else self.stage_cache  # resumed: nothing to share
        return shared_stage(root if baseline is not None else None, self.recipe, baseline, data,
                            torch_cfgs)

    def _seed_everything(self, offset: int = 0) -> None:
        """Seed every RNG; re-done before each pass so a resumed run draws what a fresh one would.
        torch's only when this run imported it (a run that never imports torch draws nothing from
        it; execute() imports it first in every run that may)."""
        import random
        import sys

        import numpy as np

        random.seed(self.recipe.seed + offset)
        np.random.seed(self.recipe.seed + offset)
        if "torch" in sys.modules:
            sys.modules["torch"].manual_seed(self.recipe.seed + offset)

    def _write_resolved_recipe(self) -> None:
        import yaml

        text = yaml.safe_dump(self.report.recipe, sort_keys=False)
        write_text_atomic(self.workdir / "recipe.yaml", text)

    def _load_model(self):
        from edgec.models import load_model, output_classes

        self._enter("load model")
        baseline = load_model(self.recipe.model, self.recipe_dir, progress=self.progress)
        self.output_classes = output_classes(baseline, tuple(self.recipe.model.input_shape))
        return baseline

    def _load_data(self):
        from edgec.data import load_data

        self._enter("load data")
        data = load_data(self.recipe.data, tuple(self.recipe.model.input_shape), self.recipe_dir,
                         self.stage_cache / "data" if self.stage_cache else None, self.progress)
        missing = self.recipe.budgets.needs_labels
        if missing and not data.labelled:
            raise RecipeError(
                f"budgets.{missing[0]} needs labelled data, but the {self.recipe.data.source} data "
                "has no labels. Add labels (e.g. a 'y' array in the npz) or drop the budget."
            )
        return data

    def _check_labels(self, data, num_outputs: int | None) -> None:
        from edgec.data import check_labels

        check_labels(data, num_outputs, self.recipe.data.source)

    def _run_torch_passes(self, baseline, configs, ctx):
        from dataclasses import asdict

        from edgec.passes import get_pass
        from edgec.passes.base import run_torch_pass

        model, start = self.restorer.torch_model(len(configs))
        model = copy.deepcopy(baseline) if model is None else model.eval()
        for i, cfg in enumerate(configs[start:], start):
            self._enter(f"pass {cfg.label or cfg.type}")
            self._seed_everything(i + 1)
            model, record = run_torch_pass(get_pass(cfg.type)(cfg), model, ctx)
            self.report.passes.append(record)
            model.eval()
            if not self.checkpoints.save_model(f"torch:{i}", model, {"record": asdict(record)}):
                self.progress.log(f"edgec: {record.label}: model cannot be pickled; a --resume "
                                  "would repeat this pass")
        return model

    def _export_baseline(self, baseline, data) -> None:
        from edgec.export import export_checked

        cfg = self.recipe.export
        self._enter("export baseline")
        parity = export_checked(baseline, tuple(self.recipe.model.input_shape),
                                self.workdir / "baseline.onnx", cfg, data.eval.x, cfg.parity_atol)
        self.report.export = {"exporter": cfg.exporter, "opset": cfg.opset,
                              "dynamic_batch": cfg.dynamic_batch, "parity": {"baseline": parity}}

    def _export_compressed(self, model, data, changed: bool) -> Path:
        """Export the model the torch passes made (the baseline file when there were none)."""
        from edgec.export import export_checked

        cfg = self.recipe.export
        exported = self.workdir / "baseline.onnx"
        if changed:
            self._enter("export compressed")
            exported = self.workdir / "exported.onnx"
            atol = max(cfg.parity_atol, getattr(model, "edgec_parity_atol", 0.0))  # QAT: int8 steps
            self.report.export["parity"]["compressed"] = export_checked(
                model, tuple(self.recipe.model.input_shape), exported, cfg, data.eval.x, atol)
        self.checkpoints.save("export", {"export": self.report.export, "file": exported.name},
                              [self.workdir / "baseline.onnx", exported])
        return exported

    def _run_onnx_passes(self, src: Path, configs, ctx) -> Path:
        from dataclasses import asdict

        from edgec.passes import get_pass
        from edgec.passes.base import run_onnx_pass

        for i, cfg in enumerate(configs):
            dst = self.workdir / f"step{i + 1}-{cfg.type}.onnx"
            if self.restorer.step(f"onnx:{i}") is not None:
                src = dst
                continue
            self._enter(f"pass {cfg.label or cfg.type}")
            self._seed_everything(1000 + i)
            record = run_onnx_pass(get_pass(cfg.type)(cfg), src, dst, ctx)
            self.report.passes.append(record)
            self.device.after_step(f"pass {cfg.label or cfg.type}", dst, [c.type for c in configs[i + 1 :]])
            self.checkpoints.save(f"onnx:{i}", {"record": asdict(record)}, [src, dst])
            src = dst
        return src

    def _benchmark(self, data) -> None:
        from edgec.benchmark import benchmark_models, ratios, resolve_min_seconds
        from edgec.regression import apply_against

        self._enter("benchmark")
        config = resolve_min_seconds(self.recipe.benchmark, self.recipe.budgets)
        metrics = benchmark_models(
            {"baseline": self.workdir / "baseline.onnx", "compressed": self.workdir / "model.onnx"},
            data.eval.x, data.eval.y, config,
            tuple(self.recipe.model.input_shape), progress=self.progress, memo=self._memo(),
        )
        base, comp = metrics["baseline"], metrics["compressed"]
        report = self.report
        report.baseline, report.compressed = base, comp
        report.ratios = ratios(base, comp)
        report.findings = find_findings(base, comp, report.ratios, report.passes,
                                        environment=report.environment, recipe=report.recipe)
        report.budgets = self.device.budget_rows(self.recipe.budgets, base, comp, report.ratios)
        apply_against(report, self.against, self.recipe.budgets)

    def _profile(self, data) -> None:
        from edgec.profile_ops import profile_run

        bench, config = self.recipe.benchmark, self.recipe.report.profile
        if config.enabled:
            self._enter("operator profile")
        self.report.op_profile = profile_run(
            {"baseline": self.workdir / "baseline.onnx", "compressed": self.workdir / "model.onnx"},
            data.eval.x, tuple(self.recipe.model.input_shape), bench.batch_size, bench.threads, config,
            memo=self._memo())

    def _memo(self):
        """A sweep's store of the baseline's measurements other than latency (measure_memo.py)."""
        from edgec.measure_memo import MeasureMemo

        return MeasureMemo(self.stage_cache / "measured") if self.stage_cache else None

    def fail(self, exc: BaseException) -> None:
        interrupted = isinstance(exc, KeyboardInterrupt)
        self.report.status = "interrupted" if interrupted else "failed"
        message = exc.message if isinstance(exc, EdgecError) else str(exc) or type(exc).__name__
        self.report.error = {"step": self.step, "type": type(exc).__name__, "message": message}

    def write_report(self) -> None:
        from edgec.report_text import to_markdown

        self.report.seconds = round(time.perf_counter() - self.started, 2)
        write_text_atomic(self.workdir / "report.json", self.report.to_json() + "\n")
        write_text_atomic(self.workdir / "report.md", to_markdown(self.report))
        if self.recipe.report.html:
            from edgec.report_html import write_html_report

            write_html_report(self.report, self.workdir)
