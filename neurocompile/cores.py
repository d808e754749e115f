"""Where neurons sit on cores, as plain data: written by the mapping pass, read by the energy model.

A partition ("chunks") gives, per non-input population, the runs ``[a, b)``
of its neurons that share one core, in core order. The helpers here only
count things about a partition someone else decided; they never choose one,
so the report can use them without running the mapping pass
(:mod:`neurocompile.passes.map` does that, and hands the report its result).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import scipy.sparse as sp

from .ir import Network

Chunks = Mapping[str, "list[tuple[int, int]]"]


def projection_matrices(net: Network) -> dict[str, sp.csr_matrix]:
    """Every projection's (out, in) CSR matrix, built once (conv matrices are not free)."""
    return {pr.name: pr.matrix() for pr in net.projections}


def chunks_of(mapping: Mapping) -> dict[str, list[tuple[int, int]]]:
    """The partition recorded in a mapping (``net.meta["mapping"]``, see :mod:`neurocompile.passes.map`)."""
    return {name: [tuple(c) for c in rec["chunks"]] for name, rec in mapping["populations"].items()}


def neuron_limited_chunks(net: Network, neurons_per_core: int) -> dict[str, list[tuple[int, int]]]:
    """The partition by neuron count alone: cores filled to the neuron limit, other limits ignored."""
    return {
        p.name: [(a, min(a + neurons_per_core, p.size)) for a in range(0, p.size, neurons_per_core)]
        for p in net.populations[1:]
    }


def destination_core_counts(
    net: Network,
    source: str,
    chunks: Chunks,
    matrices: Mapping[str, sp.csr_matrix] | None = None,
) -> np.ndarray:
    """For each neuron of ``source``: how many distinct cores its outgoing synapses reach.

    One spike of that neuron becomes that many messages on the mesh, and needs
    that many output axons on its own core.
    """
    matrices = matrices if matrices is not None else projection_matrices(net)
    n_src = net.population(source).size
    n_cores = sum(len(chunks.get(p.name, [])) for p in net.populations[1:])
    reach = sp.csr_matrix((n_cores, n_src), dtype=np.int64)  # (core, source neuron) -> synapses
    offset = 0
    for pop in net.populations[1:]:
        runs = chunks.get(pop.name, [])
        outs = [pr for pr in net.incoming(pop.name) if pr.source == source]
        if outs and runs:
            core_of_row = np.repeat(np.arange(len(runs)) + offset, [b - a for a, b in runs])
            rows_to_cores = sp.csr_matrix(
                (np.ones(pop.size, dtype=np.int64), (core_of_row, np.arange(pop.size))), shape=(n_cores, pop.size)
            )
            for pr in outs:
                m = matrices[pr.name].copy()
                m.eliminate_zeros()
                structure = sp.csr_matrix((np.ones(m.nnz, dtype=np.int64), m.indices, m.indptr), shape=m.shape)
                reach = reach + rows_to_cores @ structure
        offset += len(runs)
    return np.asarray(reach.getnnz(axis=0), dtype=np.int64)
