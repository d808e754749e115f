"""Step 3 of LNP: remove the neurons with the lowest betweenness centrality in the sparsified graph.

Chakraborty et al. (ICLR 2024) prune the neurons that the fewest shortest paths run through:
they route little of the network's signal flow, so removing them changes the remaining
network's dynamics least.
"""
from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from .checks import Seed, check_fraction, check_weights, rng_from

#: exact betweenness is used while (sources × edges) stays below this; ~0.2 s per source at 200k edges
DEFAULT_MAX_RELAXATIONS = 20_000_000


@dataclass(frozen=True)
class CentralityPruning:
    """The neurons kept (sorted indices into the input), every neuron's centrality, and the sampling used."""

    kept: np.ndarray
    centrality: np.ndarray
    #: number of Dijkstra sources (networkx ``k``); equals n when the exact value was computed
    sources: int


def synapse_graph(W: object, distance: str = "inverse") -> nx.DiGraph:
    """The directed synapse graph: edge j → i for W[i, j] ≠ 0, with ``distance`` = 1 / |w_ij|.

    Why distance 1/|w|: betweenness counts *shortest* paths, and a signal travels "further" along
    a weak synapse than along a strong one -- with 1/|w| the shortest path between two neurons is
    the chain of strongest synapses, the route along which a perturbation propagates most. The
    sign is ignored because an inhibitory synapse carries as much information as an excitatory one.
    Random real weights make shortest paths almost surely unique, so weighted betweenness is also
    much less degenerate than hop counts on a dense graph (where most pairs are 1-2 hops apart).
    ``distance="hops"`` (every synapse 1) and ``"weight"`` (|w| as the length, i.e. networkx's
    ``weight=`` semantics applied to the raw weights, which makes strong synapses *long*) are there
    for comparison; both scored worse than 1/|w| on both tasks of bench/lnp.py (see
    :class:`.prune.LnpSettings`).
    """
    M = check_weights(W).tocoo()
    G = nx.DiGraph()
    G.add_nodes_from(range(M.shape[0]))
    d = {"inverse": lambda a: 1.0 / a, "hops": np.ones_like, "weight": lambda a: a}[distance](np.abs(M.data))
    G.add_weighted_edges_from(zip(M.col.tolist(), M.row.tolist(), d.tolist()), weight="distance")
    return G


def betweenness(W: object, *, seed: Seed = 0, max_relaxations: int = DEFAULT_MAX_RELAXATIONS,
                distance: str = "inverse") -> tuple[np.ndarray, int]:
    """Normalised betweenness centrality of each neuron and the number of sources it used.

    Exact (all n sources) while n · edges ≤ ``max_relaxations``; beyond that networkx's source
    sampling (``k`` = max_relaxations // edges, at least 32, seeded) -- Brandes' pivot estimator,
    unbiased, whose error falls as 1/√k. The budget keeps 2,000 neurons at 50 % of 10 % density
    (200k edges, 100 sources) at 20-35 s in pure-Python networkx; pruning only needs the *ranking*
    of the low-centrality tail, which the estimate keeps for all but near-ties.
    """
    M = check_weights(W)
    n = M.shape[0]
    G = synapse_graph(M, distance)
    m = max(1, G.number_of_edges())
    k = n if n * m <= max_relaxations else min(n, max(32, max_relaxations // m))
    sample_seed = int(rng_from(seed).integers(2**31)) if k < n else None
    bc = nx.betweenness_centrality(G, k=None if k == n else k, weight="distance", normalized=True,
                                   seed=sample_seed)
    return np.array([bc[i] for i in range(n)], dtype=np.float64), k


def prune_by_centrality(W: object, *, neuron_sparsity: float, seed: Seed = 0,
                        max_relaxations: int = DEFAULT_MAX_RELAXATIONS, distance: str = "inverse") -> CentralityPruning:
    """Keep the n - round(neuron_sparsity · n) neurons of highest betweenness (at least one).

    Ties (e.g. the many zero-centrality leaves of a sparse graph) are broken by total synaptic
    strength |W| in + out, then by index, so the result is deterministic and keeps the neuron
    that carries more weight.
    """
    M = check_weights(W)
    s = check_fraction(neuron_sparsity, "neuron_sparsity")
    n = M.shape[0]
    n_keep = max(1, n - int(round(s * n)))
    bc, k = betweenness(M, seed=seed, max_relaxations=max_relaxations, distance=distance)
    absW = abs(M)
    strength = np.asarray(absW.sum(axis=0)).ravel() + np.asarray(absW.sum(axis=1)).ravel()
    order = np.lexsort((np.arange(n), -strength, -bc))  # last key is primary: highest bc first
    return CentralityPruning(kept=np.sort(order[:n_keep]), centrality=bc, sources=k)
