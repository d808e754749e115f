"""Typed records the passes write beside the graph: how a sample runs, and how an ANN was converted."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Encoding = Literal["direct", "rate"]
ENCODINGS: tuple[str, ...] = ("direct", "rate")
Schedule = Literal["periodic", "pipelined"]
SCHEDULES: tuple[str, ...] = ("periodic", "pipelined")


@dataclass(frozen=True)
class RunSettings:
    """How a sample is run: every simulator and backend reads these, so they travel with the network.

    ``timesteps`` None means the network is not spiking yet (an ANN straight
    from the front end). ``seed`` drives rate encoding and the data split;
    ``data`` names the data set (a name or a file with its digest) the build used.
    ``schedule`` is how a sample's steps are laid out (``ir/graph.py``):
    ``periodic`` (every population resets on the same step; what the custom
    PeriodicLIF runs) or ``pipelined`` (each population's window trails its
    source's by the synaptic delay; what Lava's stock ``LIFReset`` runs).
    """

    timesteps: int | None = None
    encoding: Encoding = "direct"
    seed: int = 0
    data: str | None = None
    model: str | None = None
    source_format: str | None = None
    schedule: Schedule = "periodic"


@dataclass(frozen=True)
class PruningRecord:
    """What the prune pass did to one recurrent population: the method, the sparsities, and the network before and after.

    ``kept`` holds the surviving neurons' indices in the population before
    pruning; ``before`` and ``after`` the measurements the method reports
    (neurons, synapses, spectral radius and abscissa, largest Lyapunov
    exponent, eigenvector IPR: ``neurocompile.lnp.PruneStats`` fields).
    """

    method: str
    population: str
    neuron_sparsity: float
    synapse_sparsity: float
    seed: int
    kept: list[int] = field(default_factory=list)
    added_synapses: int = 0
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ConversionRecord:
    """What the convert pass chose: the threshold method, its scale, and each layer's activation scale λ."""

    threshold_method: str
    threshold_scale: float = 1.0
    activation_scales: dict[str, float] = field(default_factory=dict)
