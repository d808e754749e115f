"""Where neurons sit on cores, as plain data: written by the mapping pass, read by the energy model.

A partition ("chunks") gives, per non-input population, the runs ``[a, b)``
of its neurons that share one core, in core order. The helpers here only
count things about a partition someone else decided; they never choose one,
so the report can use them without running the mapping pass
(:mod:`neurocompile.passes.map` does that, and hands the report its result).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from .ir import Network

Chunks = Mapping[str, "list[tuple[int, int]]"]


def projection_matrices(net: Network) -> dict[str, sp.csr_matrix]:
    """Every projection's (out, in) CSR matrix, built once (conv matrices are not free)."""
    return {pr.name: pr.matrix() for pr in net.projections}


def chunks_of(mapping: Mapping) -> dict[str, list[tuple[int, int]]]:
    """The partition recorded in a mapping (``net.mapping``, see :mod:`neurocompile.passes.map`)."""
    return {name: [tuple(c) for c in rec["chunks"]] for name, rec in mapping["populations"].items()}


def neuron_limited_chunks(net: Network, neurons_per_core: int) -> dict[str, list[tuple[int, int]]]:
    """The partition by neuron count alone: cores filled to the neuron limit, other limits ignored."""
    return {
        p.name: [(a, min(a + neurons_per_core, p.size)) for a in range(0, p.size, neurons_per_core)]
        for p in net.neurons
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
    n_cores = sum(len(chunks.get(p.name, [])) for p in net.neurons)
    reach = sp.csr_matrix((n_cores, n_src), dtype=np.int64)  # (core, source neuron) -> synapses
    offset = 0
    for pop in net.neurons:
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


# -- where cores sit: tiles, the mesh, chips ------------------------------------------------
@dataclass(frozen=True)
class MeshLayout:
    """How core numbers become positions: cores fill tiles, tiles fill a chip's mesh, chips fill a grid.

    Why a fixed, ordered layout: the mapper numbers cores population by
    population (``first_core``), so consecutive layers sit in neighbouring
    tiles when tiles are filled in order along a snake (boustrophedon) path,
    where every next tile is one router hop away. Chips are laid on a
    near-square grid the same way, and a message's hops are the Manhattan
    distance between tiles in the whole system's grid (Davies et al. 2018:
    dimension-order routing on a 2-D mesh; chip-to-chip links extend it).
    The input population is fed by the host through tile (0, 0) of chip 0.
    """

    cores_per_tile: int
    tiles_x: int
    tiles_y: int
    cores_per_chip: int
    chips: int

    @property
    def chips_x(self) -> int:
        return max(1, math.ceil(math.sqrt(self.chips)))

    def place(self, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(chip, global tile id, x, y) of each core number; ``-1`` is the host, which feeds chip 0's first tile."""
        c = np.maximum(np.asarray(cores, dtype=np.int64), 0)
        chip = c // self.cores_per_chip
        tile = (c % self.cores_per_chip) // self.cores_per_tile
        row, col = tile // self.tiles_x, tile % self.tiles_x
        col = np.where(row % 2 == 1, self.tiles_x - 1 - col, col)
        crow, ccol = chip // self.chips_x, chip % self.chips_x
        ccol = np.where(crow % 2 == 1, self.chips_x - 1 - ccol, ccol)
        x, y = ccol * self.tiles_x + col, crow * self.tiles_y + row
        tiles_per_chip = -(-self.cores_per_chip // self.cores_per_tile)
        return chip, chip * tiles_per_chip + tile, x, y

    def chips_used(self, cores_used: int) -> int:
        return max(1, -(-cores_used // self.cores_per_chip))

    def as_dict(self) -> dict:
        return {"cores_per_tile": self.cores_per_tile, "tiles_x": self.tiles_x, "tiles_y": self.tiles_y,
                "cores_per_chip": self.cores_per_chip, "chips": self.chips, "chips_x": self.chips_x}


@dataclass(frozen=True)
class Routes:
    """Per neuron of one source population: where one of its spikes goes, as message counts.

    ``tile``: destination cores in the sender's tile; ``mesh``: the others;
    ``hops``: router hops of those, summed; ``chip``: those on another chip
    (a subset of ``mesh``). One spike costs ``tile + mesh`` messages.
    """

    tile: np.ndarray
    mesh: np.ndarray
    hops: np.ndarray
    chip: np.ndarray

    @property
    def destinations(self) -> np.ndarray:
        return self.tile + self.mesh


def core_of_neurons(net: Network, chunks: Chunks) -> dict[str, np.ndarray]:
    """Per non-input population, each neuron's core number (cores numbered in population order)."""
    out, offset = {}, 0
    for pop in net.neurons:
        runs = chunks.get(pop.name, [])
        out[pop.name] = np.repeat(np.arange(len(runs), dtype=np.int64) + offset, [b - a for a, b in runs])
        offset += len(runs)
    return out


def _reach(net: Network, source: str, chunks: Chunks, matrices: Mapping[str, sp.csr_matrix]) -> sp.csr_matrix:
    """(core, source neuron) -> synapses, over every core its outgoing projections land on."""
    n_src = net.population(source).size
    n_cores = sum(len(chunks.get(p.name, [])) for p in net.neurons)
    reach = sp.csr_matrix((n_cores, n_src), dtype=np.int64)
    cores = core_of_neurons(net, chunks)
    for pop in net.neurons:
        outs = [pr for pr in net.incoming(pop.name) if pr.source == source]
        if not outs or not len(cores[pop.name]):
            continue
        rows_to_cores = sp.csr_matrix((np.ones(pop.size, dtype=np.int64), (cores[pop.name], np.arange(pop.size))), shape=(n_cores, pop.size))
        for pr in outs:
            m = matrices[pr.name].copy()
            m.eliminate_zeros()
            structure = sp.csr_matrix((np.ones(m.nnz, dtype=np.int64), m.indices, m.indptr), shape=m.shape)
            reach = reach + rows_to_cores @ structure
    return reach.tocsc()


def routes(net: Network, source: str, chunks: Chunks, layout: MeshLayout, matrices: Mapping[str, sp.csr_matrix] | None = None) -> Routes:
    """Where each neuron of ``source`` sends its spikes on ``layout`` (see :class:`Routes`)."""
    matrices = matrices if matrices is not None else projection_matrices(net)
    reach = _reach(net, source, chunks, matrices)
    n_src = reach.shape[1]
    src_core = core_of_neurons(net, chunks).get(source, np.full(n_src, -1, dtype=np.int64))
    dst = reach.indices  # destination core of each (core, neuron) pair, column by column
    col = np.repeat(np.arange(n_src), np.diff(reach.indptr))
    s_chip, s_tile, s_x, s_y = layout.place(src_core[col])
    d_chip, d_tile, d_x, d_y = layout.place(dst)
    same_tile = s_tile == d_tile
    count = lambda w: np.bincount(col, weights=w.astype(np.float64), minlength=n_src)
    return Routes(
        tile=count(same_tile),
        mesh=count(~same_tile),
        hops=count(np.where(same_tile, 0, np.abs(s_x - d_x) + np.abs(s_y - d_y))),
        chip=count(s_chip != d_chip),
    )


def mesh_layout(profile, chips: int | None = None) -> MeshLayout:
    """The profile's tiles and mesh (``limits.cores_per_tile``, ``mesh_tiles_x``, ``mesh_tiles_y``, ``chips``).

    A profile that states no tiles gets one core per tile on a near-square
    mesh: every message between cores then counts as a mesh message (an
    over-count of hops, which the energy notes say).
    """
    cores = profile.limit("cores")
    per_tile = profile.limit("cores_per_tile") or 1
    tiles = -(-cores // per_tile)
    tx = profile.limit("mesh_tiles_x") or max(1, math.ceil(math.sqrt(tiles)))
    ty = profile.limit("mesh_tiles_y") or -(-tiles // tx)
    return MeshLayout(per_tile, tx, ty, cores, chips if chips is not None else (profile.limit("chips") or 1))
