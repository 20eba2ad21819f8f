"""The one orchestrator: recipe → model → torch passes → export → ONNX passes → benchmark → report.

Only this module calls the stages, in this order. Each stage gets what it needs as arguments and
returns values; none reads the whole recipe or writes the report. Whatever happens, the run folder
ends up with a report.json that says how far the run got.
"""

from __future__ import annotations

import copy
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import EdgecError, RecipeError
from edgec.progress import Progress
from edgec.report import Report, find_findings, write_text_atomic
from edgec.rundir import RunFolder

if TYPE_CHECKING:
    from edgec.recipe import Recipe


def run_recipe(
    recipe: Recipe, *, recipe_dir: Path, output: Path, force: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Run every stage of ``recipe`` into the run folder ``output``; returns the report.

    Raises EdgecError subclasses for user-facing failures (after writing a failed report).
    A missed budget is not an exception: check ``report.passed``.
    """
    from edgec.environment import collect_environment

    folder = RunFolder(output, force)  # refuses an existing run before any work
    run = _Run(recipe, recipe_dir, folder.path, progress or Progress())
    run.report.environment = collect_environment(recipe.benchmark.threads, recipe.seed)
    with folder:
        try:
            run.execute()
        except BaseException as exc:
            run.fail(exc)
            raise
        finally:
            run.report.run_dir = str(output)
            run.write_report()
    return run.report


class _Run:
    """State of one run; each method is one stage, called in order by ``execute``."""

    def __init__(self, recipe: Recipe, recipe_dir: Path, workdir: Path, progress: Progress):
        self.recipe, self.recipe_dir, self.workdir, self.progress = recipe, recipe_dir, workdir, progress
        self.step = "setup"
        self.started = time.perf_counter()
        self.report = Report(
            recipe=recipe.model_dump(mode="json"), environment={},
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    def _enter(self, step: str) -> None:
        self.step = step
        self.progress.log(f"edgec: {step}…")

    def execute(self) -> None:
        from edgec.passes import PASSES, PassContext

        self._seed_everything()
        self._write_resolved_recipe()
        baseline, data = self._load()
        ctx = PassContext(
            data=data, baseline=baseline, input_shape=tuple(self.recipe.model.input_shape),
            seed=self.recipe.seed, run_dir=self.workdir, recipe_dir=self.recipe_dir,
            progress=self.progress,
        )
        torch_cfgs = [c for c in self.recipe.passes if PASSES[c.type].stage == "torch"]
        onnx_cfgs = [c for c in self.recipe.passes if PASSES[c.type].stage == "onnx"]
        model = self._run_torch_passes(baseline, torch_cfgs, ctx)
        exported = self._export(baseline, model, data, changed=bool(torch_cfgs))
        final = self._run_onnx_passes(exported, onnx_cfgs, ctx)
        shutil.copyfile(final, self.workdir / "model.onnx")
        self._benchmark(data)

    def _seed_everything(self) -> None:
        import random

        import numpy as np
        import torch

        random.seed(self.recipe.seed)
        np.random.seed(self.recipe.seed)
        torch.manual_seed(self.recipe.seed)

    def _write_resolved_recipe(self) -> None:
        import yaml

        text = yaml.safe_dump(self.report.recipe, sort_keys=False)
        write_text_atomic(self.workdir / "recipe.yaml", text)

    def _load(self):
        from edgec.data import load_data
        from edgec.models import load_model

        self._enter("load model")
        baseline = load_model(self.recipe.model, self.recipe_dir, progress=self.progress)
        self._enter("load data")
        data = load_data(self.recipe.data, tuple(self.recipe.model.input_shape), self.recipe_dir)
        missing = self.recipe.budgets.needs_labels
        if missing and not data.labelled:
            raise RecipeError(
                f"budgets.{missing[0]} needs labelled data, but the {self.recipe.data.source} data "
                "has no labels. Add labels (e.g. a 'y' array in the npz) or drop the budget."
            )
        return baseline, data

    def _run_torch_passes(self, baseline, configs, ctx):
        from edgec.passes import get_pass
        from edgec.passes.base import run_torch_pass

        model = copy.deepcopy(baseline)
        for cfg in configs:
            self._enter(f"pass {cfg.label or cfg.type}")
            model, record = run_torch_pass(get_pass(cfg.type)(cfg), model, ctx)
            self.report.passes.append(record)
            model.eval()
        return model

    def _export(self, baseline, model, data, changed: bool) -> Path:
        from edgec.export import check_parity, export_onnx

        cfg = self.recipe.export
        inputs = data.eval.x[: cfg.parity_samples]
        self._enter("export baseline")
        export_onnx(baseline, tuple(self.recipe.model.input_shape), self.workdir / "baseline.onnx", cfg)
        parity = {"baseline": check_parity(baseline, self.workdir / "baseline.onnx", inputs,
                                           cfg.parity_atol).to_dict()}
        exported = self.workdir / "baseline.onnx"
        if changed:
            self._enter("export compressed")
            exported = self.workdir / "exported.onnx"
            export_onnx(model, tuple(self.recipe.model.input_shape), exported, cfg)
            atol = max(cfg.parity_atol, getattr(model, "edgec_parity_atol", 0.0))  # QAT: int8 steps
            parity["compressed"] = check_parity(model, exported, inputs, atol).to_dict()
        self.report.export = {"exporter": cfg.exporter, "opset": cfg.opset,
                              "dynamic_batch": cfg.dynamic_batch, "parity": parity}
        return exported

    def _run_onnx_passes(self, src: Path, configs, ctx) -> Path:
        from edgec.passes import get_pass
        from edgec.passes.base import run_onnx_pass

        for i, cfg in enumerate(configs):
            self._enter(f"pass {cfg.label or cfg.type}")
            dst = self.workdir / f"step{i + 1}-{cfg.type}.onnx"
            self.report.passes.append(run_onnx_pass(get_pass(cfg.type)(cfg), src, dst, ctx))
            src = dst
        return src

    def _benchmark(self, data) -> None:
        from edgec.benchmark import benchmark_models, ratios
        from edgec.budgets import check_budgets

        self._enter("benchmark")
        metrics = benchmark_models(
            {"baseline": self.workdir / "baseline.onnx", "compressed": self.workdir / "model.onnx"},
            data.eval.x, data.eval.y, self.recipe.benchmark,
            tuple(self.recipe.model.input_shape), progress=self.progress,
        )
        base, comp = metrics["baseline"], metrics["compressed"]
        report = self.report
        report.baseline, report.compressed = base, comp
        report.ratios = ratios(base, comp)
        report.findings = find_findings(base, comp, report.ratios, report.passes)
        report.budgets = check_budgets(self.recipe.budgets, base, comp, report.ratios)

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
