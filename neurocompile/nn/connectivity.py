"""Which recurrent synapses exist: fixed boolean masks (row = target, column = source).

The mask is structure, not a parameter: training changes the weights of existing
synapses only, and pruning (``neurocompile/lnp``) changes the mask. Self-connections
are excluded (a neuron's own past is already in its leaky state).
"""
from __future__ import annotations

import networkx as nx
import numpy as np

from ..errors import NeurocompileError


def _check_fraction(value: float, what: str) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise NeurocompileError(f"{what} {value!r} must be a number in [0, 1]")


def random_mask(n: int, density: float, rng: np.random.Generator) -> np.ndarray:
    """(n, n) bool: each ordered pair i ≠ j connected independently with probability ``density`` (Erdős–Rényi)."""
    _check_fraction(density, "recurrent density")
    mask = rng.random((n, n)) < density
    np.fill_diagonal(mask, False)
    return mask


def cluster_labels(sizes: tuple[int, ...]) -> np.ndarray:
    """Cluster index of each neuron, neurons numbered cluster after cluster."""
    return np.repeat(np.arange(len(sizes)), sizes)


def clustered_small_world_mask(sizes: tuple[int, ...], intra_density: float, ring_degree: int, rewire: float,
                               rng: np.random.Generator) -> np.ndarray:
    """(n, n) bool mask of a clustered network: dense-ish within clusters, small-world between them.

    Within a cluster every ordered pair is connected with probability ``intra_density``.
    Between clusters: a Watts–Strogatz graph (``networkx.watts_strogatz_graph``) over all
    ``n`` neurons placed on a ring cluster after cluster, each joined to its ``ring_degree``
    nearest ring neighbours and each of those edges rewired to a uniformly random neuron with
    probability ``rewire``. Its edges that join two *different* clusters become inter-cluster
    synapses in both directions: the lattice contributes local links across the boundaries
    of neighbouring clusters, the rewired edges the few long-range shortcuts that make the
    cluster graph small-world (short paths, high clustering). WS edges inside a cluster are
    dropped, so the within-cluster density stays ``intra_density``.
    """
    _check_fraction(intra_density, "intra-cluster density")
    _check_fraction(rewire, "small-world rewiring probability")
    n = int(sum(sizes))
    if not (isinstance(ring_degree, int) and 0 <= ring_degree < n):
        raise NeurocompileError(f"small-world ring degree {ring_degree!r} must be an integer in [0, {n})")
    labels = cluster_labels(sizes)
    same = labels[:, None] == labels[None, :]
    mask = (rng.random((n, n)) < intra_density) & same
    if ring_degree > 0:
        ws = nx.watts_strogatz_graph(n, ring_degree, rewire, seed=int(rng.integers(2**32)))
        edges = np.array(list(ws.edges()), dtype=np.int64).reshape(-1, 2)
        cross = edges[labels[edges[:, 0]] != labels[edges[:, 1]]]
        mask[cross[:, 0], cross[:, 1]] = True
        mask[cross[:, 1], cross[:, 0]] = True
    np.fill_diagonal(mask, False)
    return mask
