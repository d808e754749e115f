"""Plain numpy descriptions of a recurrent SNN, for the passes that do not need torch.

:class:`RSNNArrays` is what a front end ingests into the IR (populations and
projections with the IR's field names and layouts; per-neuron arrays where the
model is heterogeneous). :class:`LNPArrays` is what Lyapunov noise pruning
(``neurocompile/lnp``) reads: the recurrent matrix and the membrane time constants.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True, eq=False)
class PopulationArrays:
    """One population. Neuron fields are (size,) float64 arrays, None for the input population.

    ``bias`` of a readout is the decoder's (``logits = v + T · bias``), as in ``ir.Population``.
    """

    name: str
    kind: Literal["input", "spiking", "readout"]
    size: int
    threshold: np.ndarray | None = None
    leak: np.ndarray | None = None
    current_decay: np.ndarray | None = None
    bias: np.ndarray | None = None
    reset: Literal["subtract", "zero"] = "subtract"


@dataclass(frozen=True, eq=False)
class ProjectionArrays:
    """Synapses ``source → target``: a dense (out, in) float64 array, or a CSR (out, in) matrix for ``sparse``.

    ``recurrent``: the edge closes a cycle (``ir.Projection.recurrent``); every projection has a one-step delay.
    """

    name: str
    source: str
    target: str
    kind: Literal["dense", "sparse"]
    weight: np.ndarray | sp.csr_matrix
    recurrent: bool = False


@dataclass(frozen=True, eq=False)
class RSNNArrays:
    """input → hidden (dense), hidden → hidden (sparse, recurrent), hidden → readout (dense).

    Populations are listed input first, in the IR's order; projections in the order
    their messages are summed (a target's incoming ones). A sample of ``T`` input
    frames needs a period of ``T + depth`` steps (the last frame reaches the
    readout ``depth`` steps after it is emitted).
    """

    populations: tuple[PopulationArrays, ...]
    projections: tuple[ProjectionArrays, ...]
    input: str
    output: str
    depth: int

    def population(self, name: str) -> PopulationArrays:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def projection(self, name: str) -> ProjectionArrays:
        for p in self.projections:
            if p.name == name:
                return p
        raise KeyError(name)


@dataclass(frozen=True, eq=False)
class LNPArrays:
    """The recurrent core as Lyapunov noise pruning sees it (float64, row = target).

    ``tau`` is the effective membrane time constant ``1 / leak`` in steps (τ drawn below
    one step is clipped to one), ``mask`` the existing synapses of ``W``.
    """

    tau: np.ndarray  # (n,)
    W: np.ndarray  # (n, n) recurrent, row = target
    mask: np.ndarray  # (n, n) bool
    W_in: np.ndarray  # (n, n_in)
    W_out: np.ndarray  # (n_out, n)
