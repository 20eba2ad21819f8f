"""Checkpoints of completed steps inside an unfinished run folder, so `--resume` can skip them.

After each torch pass the model is saved (``.resume/torch-<i>.pt``), after export and after each
ONNX pass the ONNX files already sit in the folder; ``.resume/state.json`` records which steps are
done, their pass records, and the resolved recipe. A resumed run skips the completed steps only
when the resolved recipe (and edgec version) are identical; otherwise it starts over and says so.

The torch checkpoints are whole pickled modules (pruning changes the architecture, so a state
dict could not be loaded back). Unpickling runs code, so edgec only loads these files from the
unfinished folder it wrote itself, under an explicit `--resume`, and checks their SHA-256 against
state.json first (a truncated or swapped file is refused, and the step is simply run again).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgec.report import write_text_atomic

if TYPE_CHECKING:
    import torch.nn as nn

STATE_DIR = ".resume"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain_relative(name: str) -> bool:
    """A path inside the run folder: state.json cannot point edgec at files elsewhere."""
    path = Path(name)
    return not path.is_absolute() and ".." not in path.parts


class Checkpoints:
    """Completed steps of one run folder. ``resume=False`` (a fresh run) starts empty."""

    def __init__(self, workdir: Path, recipe: dict, resume: bool):
        from edgec import __version__

        self.workdir = workdir
        self.dir = workdir / STATE_DIR
        self.file = self.dir / "state.json"
        self.key = {"recipe": recipe, "edgec": __version__}
        self.steps: dict[str, dict[str, Any]] = {}
        self.note: str | None = None
        if resume:
            self._read()
        if not self.steps and self.dir.exists():
            shutil.rmtree(self.dir)  # nothing usable: start over cleanly
        self.dir.mkdir(exist_ok=True)

    def _read(self) -> None:
        try:
            state = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.note = "no usable checkpoints in the unfinished run: started over"
            return
        if state.get("key") != self.key:
            self.note = ("the recipe (or edgec version) differs from the unfinished run's: "
                         "started over")
            return
        self.steps = state.get("steps", {})

    def done(self, step: str) -> dict[str, Any] | None:
        """What was saved for a completed ``step`` whose files are intact, or None."""
        info = self.steps.get(step)
        if info is None:
            return None
        for name, digest in info.get("files", {}).items():
            path = self.workdir / name
            if not _plain_relative(name) or not path.is_file() or _sha256(path) != digest:
                return None  # changed or lost since: run the step again
        return info

    def save(self, step: str, info: dict[str, Any], files: list[Path] = ()) -> None:
        """Record ``step`` as completed, with the files it produced (checked on resume)."""
        hashes = {str(Path(f).relative_to(self.workdir)): _sha256(Path(f)) for f in files}
        self.steps[step] = {**info, "files": hashes}
        state = {"key": self.key, "steps": self.steps}
        write_text_atomic(self.file, json.dumps(state, indent=1, default=str))

    def save_model(self, step: str, model: nn.Module, info: dict[str, Any]) -> bool:
        """Save a torch-stage model after ``step`` (whole module: the architecture may have
        changed). Returns False if the model cannot be pickled (the run goes on, unresumable)."""
        import pickle

        import torch

        path = self.dir / f"{step.replace(':', '-')}.pt"
        tmp = path.with_name(path.name + ".tmp")
        try:
            torch.save(model, tmp)
        except (pickle.PicklingError, AttributeError, TypeError):  # e.g. a lambda in a hook
            tmp.unlink(missing_ok=True)
            return False
        tmp.replace(path)
        self.save(step, {**info, "model_file": str(path.relative_to(self.workdir))}, [path])
        return True

    def load_model(self, step: str) -> nn.Module | None:
        """The model saved after ``step``, or None if it is missing or not the file we wrote."""
        import torch

        info = self.done(step)
        if info is None or info.get("model_file") not in info.get("files", {}):
            return None  # only a file whose hash was recorded, inside the run folder
        # our own checkpoint, verified by hash, loaded only under an explicit --resume
        path = self.workdir / info["model_file"]
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception:  # e.g. the model's class can no longer be imported: redo the pass
            return None

    def discard(self) -> None:
        """Remove the checkpoints once the run is complete (they are only for resuming)."""
        shutil.rmtree(self.dir, ignore_errors=True)


def readd_record(report, saved: dict[str, Any], note: str):
    """Append a pass record saved by an earlier run to ``report``, saying where it came from."""
    from edgec.passes import PassRecord

    record = PassRecord(**saved)
    record.notes.append(note)
    report.passes.append(record)
    return record


class Restorer:
    """Re-adds what the unfinished run completed to the resumed run's report, step by step."""

    def __init__(self, checkpoints: Checkpoints, report, progress, workdir: Path):
        self.checkpoints, self.report, self.progress, self.workdir = (checkpoints, report,
                                                                      progress, workdir)

    def step(self, step: str) -> dict[str, Any] | None:
        """A completed step's saved info, with its pass record re-added to the report."""
        info = self.checkpoints.done(step)
        if info is not None and "record" in info:
            record = readd_record(self.report, info["record"], "restored from the unfinished run "
                                  "(--resume); seconds are from then")
            self.progress.log(f"edgec: {record.label}: done before, restored (--resume)")
        return info

    def torch_model(self, count: int) -> tuple[nn.Module | None, int]:
        """(model saved after the last completed torch pass or None, index of the next pass)."""
        for i in reversed(range(count)):
            model = self.checkpoints.load_model(f"torch:{i}")
            if model is not None:
                for j in range(i + 1):
                    self.step(f"torch:{j}")
                return model, i + 1
        return None, 0

    def export(self, torch_count: int) -> Path | None:
        """The exported file of the unfinished run when export completed there (records re-added)."""
        info = self.checkpoints.done("export")
        steps = [f"torch:{i}" for i in range(torch_count)]
        if info is None or info.get("file") not in info.get("files", {}) or \
                not all(s in self.checkpoints.steps for s in steps):
            return None
        for step in steps:
            self.step(step)
        self.report.export = info["export"]
        self.progress.log("edgec: export: done before, restored (--resume)")
        return self.workdir / info["file"]
