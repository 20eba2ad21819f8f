"""The metadata route of data-free distillation (Dream Distillation, Bhardwaj et al. 2019).

Where the data lives, ``edgec metadata recipe.yaml -o meta.npz`` summarizes the teacher's pooled
penultimate activations (the input of its last linear layer) per class: k-means centroids and, per
cluster, the principal directions and spreads. No image and no per-image value leaves: only a few
averages per class. Where compression runs, ``synthetic: {method: dream, metadata: meta.npz}``
samples target activations around the centroids along the principal components and optimizes
inputs whose teacher activations match them (plus the usual class and image-prior terms, and the
BatchNorm term if the teacher has BatchNorm). This also works for teachers without BatchNorm.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgec.errors import DataError, OutputError, PassError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import torch
    import torch.nn as nn

    from edgec.data import Split

FORMAT = "edgec.metadata/1"


@dataclass
class Metadata:
    layer: str  # teacher module whose *input* is the penultimate activation
    centroids: np.ndarray  # K×D
    classes: np.ndarray  # K: class of each cluster
    counts: np.ndarray  # K: images in each cluster (sampling weights)
    components: np.ndarray  # K×P×D principal directions
    stddevs: np.ndarray  # K×P spread along each direction

    def save(self, path: Path) -> Path:
        """Write exactly ``path`` (numpy given a name would append .npz to one without it), via a
        temporary file and a rename, so a reader never sees half of it."""
        import os

        import numpy as np

        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.savez_compressed(f, format=np.array(FORMAT), layer=np.array(self.layer),
                                    centroids=self.centroids, classes=self.classes,
                                    counts=self.counts, components=self.components,
                                    stddevs=self.stddevs)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OutputError(f"Cannot write the metadata to '{path}': {exc.strerror or exc}.",
                              hint="Choose a file in a folder you can write to.") from None
        return path

    @classmethod
    def load(cls, path: Path) -> Metadata:
        import numpy as np

        if not path.is_file():
            raise DataError(f"distill.synthetic.metadata: '{path}' does not exist. Make it where the "
                            "data lives with `edgec metadata recipe.yaml -o meta.npz` (paths are "
                            "relative to the recipe's folder).")
        try:
            with np.load(path, allow_pickle=False) as f:
                if str(f["format"]) != FORMAT:
                    raise DataError(f"'{path}' is {f['format']}, not {FORMAT} metadata.")
                return cls(str(f["layer"]), f["centroids"], f["classes"], f["counts"],
                           f["components"], f["stddevs"])
        except (KeyError, OSError, ValueError) as exc:
            raise DataError(f"'{path}' is not edgec metadata ({exc}). Regenerate it with "
                            "`edgec metadata`.") from None

    def sample(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One target activation per label: a cluster of that class (by size), then centroid +
        Gaussian steps along its principal components."""
        import torch

        centroids, comps = torch.from_numpy(self.centroids), torch.from_numpy(self.components)
        std, counts = torch.from_numpy(self.stddevs), torch.from_numpy(self.counts).double()
        classes = torch.from_numpy(self.classes)
        out = torch.empty(len(labels), centroids.shape[1])
        for c in labels.unique():
            rows = torch.nonzero(labels == c).flatten()
            clusters = torch.nonzero(classes == c).flatten()
            if len(clusters) == 0:
                raise PassError(f"distill: the metadata has no cluster for class {int(c)}.")
            pick = clusters[torch.multinomial(counts[clusters], len(rows), replacement=True,
                                              generator=generator)]
            z = torch.randn(len(rows), std.shape[1], generator=generator) * std[pick]
            out[rows] = centroids[pick] + torch.einsum("np,npd->nd", z, comps[pick])
        return out


def penultimate_layer(model: nn.Module) -> str:
    """Name of the last linear layer (its input is the pooled penultimate activation)."""
    import torch.nn as nn

    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise PassError("distill: the teacher has no nn.Linear classifier layer, so the metadata "
                        "route cannot find its penultimate activations. Use method: deepinversion.")
    return names[-1]


class InputTap:
    """Records the input of a named module (a forward pre-hook), flattened to N×D."""

    def __init__(self, model: nn.Module, layer: str):
        self.value: torch.Tensor | None = None
        module = dict(model.named_modules()).get(layer)
        if module is None or not layer:
            raise PassError(f"distill: the teacher has no layer '{layer}' (named in the metadata); "
                            "the metadata was made for a different model.")
        self._handle = module.register_forward_pre_hook(self._hook)

    def _hook(self, module, inputs):
        self.value = inputs[0].flatten(1)

    def remove(self) -> None:
        self._handle.remove()


def collect_metadata(model: nn.Module, split: Split, clusters: int = 4, components: int = 8,
                     seed: int = 0) -> Metadata:
    """Per-class k-means of the model's penultimate activations on ``split``, with PCA per cluster."""
    import numpy as np
    import torch
    from sklearn.cluster import KMeans

    if split is None or split.y is None:
        raise DataError("edgec metadata needs labelled training data (a data: source with labels).")
    layer = penultimate_layer(model)
    tap = InputTap(model, layer)
    feats = []
    try:
        with torch.no_grad():
            for x, _ in split.batches(256):
                model.eval()(torch.from_numpy(x))
                feats.append(tap.value.numpy())
    finally:
        tap.remove()
    feats = np.concatenate(feats).astype(np.float64)
    dim = feats.shape[1]
    p = min(components, dim)
    cents, cls, counts, comps, stds = [], [], [], [], []
    for c in np.unique(split.y):
        fc = feats[split.y == c]
        k = max(1, min(clusters, len(fc) // max(p, 2)))
        km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(fc)
        for j in range(k):
            members = fc[km.labels_ == j]
            centre = members.mean(0)
            _, s, vt = np.linalg.svd(members - centre, full_matrices=False)
            vt_p = np.zeros((p, dim))
            s_p = np.zeros(p)
            vt_p[: min(p, len(vt))] = vt[:p]
            s_p[: min(p, len(s))] = s[:p] / np.sqrt(max(len(members) - 1, 1))
            cents.append(centre)
            cls.append(int(c))
            counts.append(len(members))
            comps.append(vt_p)
            stds.append(s_p)
    return Metadata(layer, np.array(cents, np.float32), np.array(cls, np.int64),
                    np.array(counts, np.int64), np.array(comps, np.float32), np.array(stds, np.float32))


def metadata_from_recipe(recipe_path: Path, overrides, output: Path, clusters: int,
                         components: int) -> Metadata:
    """What `edgec metadata` does: the recipe's model (the teacher) on its training split."""
    from edgec.api import resolve_recipe
    from edgec.data import load_data
    from edgec.models import load_model
    from edgec.output_files import output_file_problem

    problem = output_file_problem(Path(output), "-o", "meta.npz")
    if problem:  # before the model and data load: a bad path never costs the work
        raise UsageError(problem)
    recipe, recipe_dir, _ = resolve_recipe(recipe_path, overrides)
    model = load_model(recipe.model, recipe_dir)
    data = load_data(recipe.data, tuple(recipe.model.input_shape), recipe_dir)
    meta = collect_metadata(model, data.train, clusters, components, recipe.seed)
    meta.save(output)
    return meta
