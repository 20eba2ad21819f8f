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
old names, and never runs a variant into the folder of another. Where the values no longer match
(a grid path added with the recipe's own value) or were never recorded (a run stopped by Ctrl-C,
whose unfinished ``v000.partial`` holds the recipe it ran), the variant of the very same resolved
recipe takes the earlier run's name, so it is reused, or run again into its own folder.
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
    else the name of an earlier run of its very recipe, else the first name no folder uses;
    returns the earlier variants this plan leaves out (kept, not in the tables). Names were
    positions once: a grid with one more value ran every variant again, each into the folder of
    another."""
    from edgec.rundir import PARTIAL_SUFFIX

    root = Path(folder) / "variants"
    metas = {p.stem: _read_json(p) for p in sorted(root.glob("*.json"))} if root.is_dir() else {}
    by_values = {}
    for name, meta in metas.items():
        if isinstance(meta, dict) and "values" in meta:
            by_values.setdefault(_key(meta["values"]), name)
    folders = ({p.name.removesuffix(PARTIAL_SUFFIX) for p in root.iterdir() if p.is_dir()}
               if root.is_dir() else set())
    unnamed = []
    for v in variants:
        v["name"] = by_values.pop(_key(v["values"]), None)
        if v["name"] is None:
            unnamed.append(v)
    claimed = {v["name"] for v in variants if v["name"] is not None}
    earlier = {n: _ran_recipe(root, n) for n in sorted((set(metas) | folders) - claimed)}
    _match_by_recipe(earlier, unnamed)
    # an unfinished folder a run left before it wrote its recipe (Ctrl-C as it started) holds
    # nothing to keep: its name is free, and the variant run into it discards it
    empty = {n for n, recipe in earlier.items()
             if recipe is None and n not in metas and not (root / n).exists()}
    used = set(metas) | (folders - empty)
    fresh = (f"v{i:03d}" for i in range(10**6) if f"v{i:03d}" not in used)
    for v in unnamed:
        if v["name"] is None:
            v["name"] = next(fresh)
    named = {v["name"] for v in variants}
    return [n for n in earlier if n not in named and n not in empty]


def _match_by_recipe(earlier: dict[str, dict | None], unnamed: list[dict]) -> None:
    """Name a variant after the earlier run of its very recipe: one whose grid values are named
    differently now (a grid path added with the recipe's own value: passes.0.samples=256,128
    where the recipe says 256), one that finished before its values file was written, or one
    that Ctrl-C stopped before it finished (its values file is written when it ends, its
    recipe.yaml when it starts). One earlier run names one variant."""
    for v in unnamed:
        if "recipe" not in v:
            continue
        mine = runs_as(v["recipe"].model_dump(mode="json"))
        name = next((n for n, recipe in earlier.items() if recipe is not None
                     and runs_as(recipe) == mine), None)
        if name is not None:
            v["name"] = name
            del earlier[name]


def _ran_recipe(root: Path, name: str) -> dict | None:
    """The resolved recipe an earlier run of ``name`` ran: its report's, else (a run stopped
    before it wrote a report) the recipe.yaml it writes as it starts; a finished run first."""
    import yaml

    from edgec.rundir import partial_path

    for run in (root / name, partial_path(root / name)):
        report = _read_json(run / "report.json")
        if isinstance(report, dict) and isinstance(report.get("recipe"), dict):
            return report["recipe"]
        try:
            recipe = yaml.safe_load((run / "recipe.yaml").read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            continue
        if isinstance(recipe, dict):
            return recipe
    return None


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


def variant_run_folder(meta_file: Path, doc) -> Path | None:
    """The run folder a sweep's ``variants/v000.json`` (``doc``, as read) stands beside: the
    finished one, else the unfinished one a failed run left; None when ``doc`` is no such file."""
    from edgec.rundir import partial_path

    if not (isinstance(doc, dict) and {"name", "values", "overrides"} <= doc.keys()
            and doc["name"] == Path(meta_file).stem):
        return None
    run = Path(meta_file).with_suffix("")
    return partial_path(run) if not run.is_dir() and partial_path(run).is_dir() else run


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
