"""A sweep folder on disk: its layout, which earlier runs it holds, and which of them a sweep reuses.

Layout::

    variants/v000/ …    one normal run folder per variant (report.json, model.onnx, …)
    variants/v000.json  the variant's grid values and overrides (what makes a folder reusable)
    cache/ …            torch stages (export, pruning, training) variants share (stage_cache.py)
    cache/measured/     the shared baseline's measurements other than latency (measure_memo.py)
    results.csv / results.json / pareto.png / index.html
    .lock               held while a sweep runs here: two sweeps in one folder would mix results

A variant's name belongs to its grid values for the life of the folder (``name_variants``): a
sweep whose grid gained a value, lost one or was reordered finds its finished variants under their
old names, and never runs a variant into the folder of another.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgec.errors import UsageError


def check_folder(folder: Path) -> None:
    """Refuse, before any work, a sweep folder that is a file, cannot be created, or is an existing
    folder that is not a sweep's: a sweep rewrites results.csv, index.html … in its folder, and
    reuses what its variants/ hold."""
    from edgec.rundir import check_creatable

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"The sweep folder '{folder}' exists and is a file; choose another -o folder.")
    if not folder.exists():
        check_creatable(folder, "sweep folder")
    elif any(folder.iterdir()) and not _is_sweep_folder(folder):
        raise UsageError(
            f"'{folder}' is a folder of something else, not of a sweep (it has neither variants/ "
            "nor a sweep's results.json); the sweep would write its results.csv, index.html … "
            "among its files.", hint="Choose another -o folder, or an empty one.")


def _is_sweep_folder(folder: Path) -> bool:
    if (folder / "variants").is_dir():
        return True
    doc = _read_json(folder / "results.json")
    return isinstance(doc, dict) and doc.get("schema") == "edgec.sweep/1"


def name_variants(folder: Path, variants: list[dict]) -> list[str]:
    """Give each planned variant (in place) the name its grid values had in this folder before,
    else the first name no folder uses; returns the earlier variants this plan leaves out (kept,
    not in the tables). Names were positions once: a grid with one more value ran every variant
    again, each into the folder of another."""
    from edgec.rundir import PARTIAL_SUFFIX

    root = Path(folder) / "variants"
    metas = {p.stem: _read_json(p) for p in sorted(root.glob("*.json"))} if root.is_dir() else {}
    by_values = {}
    for name, meta in metas.items():
        if isinstance(meta, dict) and "values" in meta:
            by_values.setdefault(_key(meta["values"]), name)
    used = set(metas) | ({p.name.removesuffix(PARTIAL_SUFFIX) for p in root.iterdir() if p.is_dir()}
                         if root.is_dir() else set())
    unnamed = []
    for v in variants:
        v["name"] = by_values.pop(_key(v["values"]), None)
        if v["name"] is None:
            unnamed.append(v)
    _match_finished_without_meta(root, sorted(used - set(metas)), unnamed)
    fresh = (f"v{i:03d}" for i in range(10**6) if f"v{i:03d}" not in used)
    for v in unnamed:
        if v["name"] is None:
            v["name"] = next(fresh)
    return sorted(by_values.values())


def _match_finished_without_meta(root: Path, names: list[str], unnamed: list[dict]) -> None:
    """A run that finished but whose values file was never written (Ctrl-C between the two) is
    known by its report's recipe."""
    for name in names:
        report = _read_json(root / name / "report.json")
        if not isinstance(report, dict):
            continue
        for v in unnamed:
            if v["name"] is None and "recipe" in v and (
                    runs_as(report.get("recipe")) == runs_as(v["recipe"].model_dump(mode="json"))):
                v["name"] = name
                break


def _key(values: dict) -> str:
    return json.dumps(values, sort_keys=True)


def reusable(folder: Path, variant: dict) -> dict | None:
    """A finished, successful run of exactly this variant, as an outcome; else None. "Exactly":
    its report's recipe is this variant's, so an edit of the recipe file (or a new edgec default)
    runs the variant again, not only a change of its grid values."""
    report = _read_json(Path(folder) / "variants" / variant["name"] / "report.json")
    if not isinstance(report, dict) or report.get("status") != "ok":
        return None
    if "recipe" in variant:
        if runs_as(report.get("recipe")) != runs_as(variant["recipe"].model_dump(mode="json")):
            return None
    else:  # a caller that did not plan (no validated recipe): the overrides it ran with
        meta = _read_json(Path(folder) / "variants" / f"{variant['name']}.json")
        if not isinstance(meta, dict) or meta.get("overrides") != variant["overrides"]:
            return None
    return {"name": variant["name"], "status": "ok", "error": None, "report": report}


def runs_as(recipe: dict | None) -> dict | None:
    """A recipe without its sweep section, which changes how many variants run, not what one does."""
    return {k: v for k, v in recipe.items() if k != "sweep"} if isinstance(recipe, dict) else None


def write_variant_meta(folder: Path, variant: dict, outcome: dict) -> None:
    from edgec.report import write_text_atomic

    meta = {"name": variant["name"], "values": variant["values"], "overrides": variant["overrides"],
            "status": outcome["status"], "error": outcome["error"]}
    write_text_atomic(Path(folder) / "variants" / f"{variant['name']}.json",
                      json.dumps(meta, indent=2))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
