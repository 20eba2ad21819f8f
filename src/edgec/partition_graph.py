"""The teacher's final-conv filters as a co-activation graph, split into K balanced communities.

NoNN (Bhardwaj, Lin & Marculescu 2019, "Memory- and Communication-Aware Model Compression for
Distributed Deep Learning Inference on IoT") gives each device's student one community of the
teacher's final-convolution filters to mimic. Filters that fire together belong together: a
student then learns one coherent part of the teacher's knowledge instead of scattered pieces.

Edge weights. A filter's activation on a sample is its spatial mean. The weight between two
filters is the mean product of their z-scored activations over the samples (their Pearson
correlation): high when both rise and fall on the same inputs, whatever their scales. Only
positive weights become edges: filters that fire *against* each other are not "together", and
modularity needs non-negative weights. A dead filter (constant output) is an isolated node.

Communities. networkx's greedy modularity (Clauset-Newman-Moore) is deterministic (no seed to
carry) and can be told to stop at exactly K communities (``cutoff=best_n=K``); a graph in several
disconnected parts can leave more, which are merged into the community they link to most.
Modularity ignores sizes, but each community is one device's share of the work, so the sizes are
then balanced to differ by at most one filter (the best any split of C filters into K does):
while the largest and smallest differ by more, the member of the largest that loses the least
intra-community weight moves to the smallest. Last, pairs of filters are swapped between
communities while a swap raises the total intra-community weight (Kernighan-Lin style), which
repairs what the moves cost without changing any size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgec.errors import UsageError

if TYPE_CHECKING:
    import networkx as nx
    import numpy as np


def coactivation_weights(activations: np.ndarray) -> np.ndarray:
    """N samples × C filters → C×C non-negative weights (positive Pearson correlations, zero
    diagonal). Constant filters get no edges."""
    import numpy as np

    a = np.asarray(activations, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2:
        raise UsageError(f"Filter activations must be samples × filters with at least 2 samples, "
                         f"got shape {list(a.shape)}.")
    std = a.std(0)
    alive = std > 1e-12 * max(float(np.abs(a).max()), 1.0)
    z = np.zeros_like(a)
    z[:, alive] = (a[:, alive] - a[:, alive].mean(0)) / std[alive]
    w = z.T @ z / len(a)
    np.fill_diagonal(w, 0.0)
    return np.clip(w, 0.0, None)


def coactivation_graph(activations: np.ndarray) -> nx.Graph:
    """The weighted filter graph: nodes 0..C-1, an edge per positively correlated pair."""
    return graph_from_weights(coactivation_weights(activations))


def graph_from_weights(weights: np.ndarray) -> nx.Graph:
    import networkx as nx
    import numpy as np

    graph = nx.Graph()
    graph.add_nodes_from(range(weights.shape[0]))
    rows, cols = np.nonzero(np.triu(weights, 1) > 0)
    graph.add_weighted_edges_from(zip(rows.tolist(), cols.tolist(), weights[rows, cols].tolist(),
                                      strict=True))
    return graph


def balanced_communities(graph: nx.Graph, k: int) -> list[list[int]]:
    """K communities of the graph's nodes (0..C-1) whose sizes differ by at most one, each sorted,
    ordered by their smallest node."""
    import networkx as nx
    import numpy as np
    from networkx.algorithms.community import greedy_modularity_communities

    n = graph.number_of_nodes()
    if sorted(graph.nodes) != list(range(n)):
        raise ValueError("the graph's nodes must be 0..C-1")
    if not 1 <= k <= n:
        raise UsageError(f"Cannot split {n} filters into {k} communities.",
                         hint=f"Use between 1 and {n} devices.")
    w = nx.to_numpy_array(graph, nodelist=range(n), weight="weight")
    if k == 1:
        return [list(range(n))]
    if graph.size(weight="weight") > 0:
        found = greedy_modularity_communities(graph, weight="weight", cutoff=k, best_n=k)
        groups = [sorted(c) for c in found]
    else:  # no edges at all: nothing to detect, start from singletons
        groups = [[v] for v in range(n)]
    groups = _balance(_merge_down(groups, w, k), w)
    labels = np.empty(n, dtype=np.int64)
    for c, members in enumerate(groups):
        labels[members] = c
    labels = _refine(labels, w, k)
    groups = [sorted(np.flatnonzero(labels == c).tolist()) for c in range(k)]
    return sorted(groups, key=lambda g: g[0])


def intra_fraction(graph: nx.Graph, communities: list[list[int]]) -> float:
    """Share of the total edge weight that stays inside a community (1: no co-activation is cut)."""
    total = graph.size(weight="weight")
    if total <= 0:
        return 1.0
    inside = sum(graph.subgraph(c).size(weight="weight") for c in communities)
    return inside / total


def modularity(graph: nx.Graph, communities: list[list[int]]) -> float:
    from networkx.algorithms.community import modularity as nx_modularity

    if graph.size(weight="weight") <= 0:
        return 0.0
    return float(nx_modularity(graph, [set(c) for c in communities], weight="weight"))


def _merge_down(groups: list[list[int]], w: np.ndarray, k: int) -> list[list[int]]:
    """Merge the smallest group into the one it is linked to most until K remain (too few cannot
    happen: K <= C and greedy modularity stops at K)."""
    import numpy as np

    groups = sorted(groups, key=len, reverse=True)
    while len(groups) > k:
        small = groups.pop()
        links = [float(w[np.ix_(small, g)].sum()) for g in groups]
        # unlinked (a disconnected part): the smallest group takes it, which helps the balance
        best = max(range(len(groups)), key=lambda i: (links[i], -len(groups[i]), -i))
        groups[best] = groups[best] + small
        groups.sort(key=len, reverse=True)
    return groups


def _balance(groups: list[list[int]], w: np.ndarray) -> list[list[int]]:
    """Move single members from the largest to the smallest group until sizes differ by <= 1.
    Each move lowers the sum of squared sizes, so this ends."""
    import numpy as np

    groups = [list(g) for g in groups]
    while True:
        sizes = [len(g) for g in groups]
        big, small = int(np.argmax(sizes)), int(np.argmin(sizes))
        if sizes[big] - sizes[small] <= 1:
            return groups
        members = groups[big]
        # weight the member would gain with its new group minus what it leaves behind
        gain = w[np.ix_(members, groups[small])].sum(1) - w[np.ix_(members, members)].sum(1)
        node = members[int(np.argmax(gain))]
        members.remove(node)
        groups[small].append(node)


def _refine(labels: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Swap the pair of nodes (in different groups) that most raises the intra-group weight, while
    any swap does; sizes never change. Bounded by C rounds."""
    import numpy as np

    labels = labels.copy()
    n = len(labels)
    for _ in range(n):
        link = w @ np.eye(k)[labels]  # link[u, c]: weight from node u to group c
        own = link[np.arange(n), labels]
        best, pair = 1e-12, None
        for a in range(k):
            for b in range(a + 1, k):
                ua, vb = np.flatnonzero(labels == a), np.flatnonzero(labels == b)
                # moving u a→b and v b→a; their own edge goes from cut to cut, counted twice
                gain = ((link[ua, b] - own[ua])[:, None] + (link[vb, a] - own[vb])[None, :]
                        - 2 * w[np.ix_(ua, vb)])
                i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
                if gain[i, j] > best:
                    best, pair = float(gain[i, j]), (ua[i], vb[j], a, b)
        if pair is None:
            return labels
        u, v, a, b = pair
        labels[u], labels[v] = b, a
    return labels
