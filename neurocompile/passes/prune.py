"""Pruning a recurrent population before training: Lyapunov Noise Pruning or a baseline, as an IR pass.

The algorithms work on plain matrices (:mod:`neurocompile.lnp`); this pass is
the IR's side: it finds the recurrent population (the one with a recurrent
projection onto itself), reads its weights ``W`` (row = target) and membrane
time constants ``τ = 1 / leak``, runs the method, and rebuilds the network
around the surviving neurons — per-neuron parameters sliced, the rows of
incoming and the columns of outgoing projections kept for them, the
recurrent projection replaced by the pruned (delocalised) sparse matrix.
What was done is recorded in ``net.pruning`` for the report, with the
network's statistics before and after — among them the largest Lyapunov
exponent of the spiking population itself, measured on its own LIF neurons
(``neurocompile.lnp.spiking_lyapunov``).

Task-agnostic by design (LNP prunes the untrained network); ``activity``
(the baseline that trains the dense network first) takes the trained
network's per-neuron activity from the caller.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import scipy.sparse as sp

from ..errors import NeurocompileError
from ..ir import Network, Population, Projection, PruningRecord
from ..lnp import AnalysisSettings, LIFNeurons, LnpSettings, prune as prune_matrix
from .base import IS_CONVERTED, NOT_QUANTIZED, network_pass

METHODS = ("lnp", "random", "activity")
MIN_TAU = 1.0  # steps: a neuron that loses all of v every step (leak 1) has τ = 1


def recurrent_population(net: Network, name: str | None = None) -> tuple[Population, Projection]:
    """The population to prune and its self-projection: ``name``, or the only one that has a recurrent self-edge."""
    selfs = [pr for pr in net.projections if pr.recurrent and pr.source == pr.target and (name is None or pr.target == name)]
    if len(selfs) != 1:
        found = sorted({pr.target for pr in net.projections if pr.recurrent and pr.source == pr.target})
        if name is not None:
            raise NeurocompileError(f"population {name!r} has {len(selfs)} recurrent self-projections; "
                                    f"populations with exactly one: {', '.join(found) or 'none'}")
        raise NeurocompileError(f"pruning needs one recurrent population (a population with a recurrent projection onto itself); "
                                f"found {len(found)} ({', '.join(found) or 'none'}): name one with population=")
    pr = selfs[0]
    pop = net.population(pr.target)
    if pop.kind != "spiking" or len(pop.shape) != 1:
        raise NeurocompileError(f"population {pop.name!r} must be a 1-D spiking population to prune, got {pop.kind} {pop.shape}")
    return pop, pr


def _slice(pop: Population, kept: np.ndarray) -> Population:
    """The kept neurons of ``pop``: per-neuron fields sliced, one-value fields as they are."""
    fields = {}
    for f in ("threshold", "leak", "current_decay", "bias"):
        v = getattr(pop, f)
        fields[f] = v[kept] if isinstance(v, np.ndarray) else v
    return dataclasses.replace(pop, shape=(len(kept),), **fields)


def _keep(pr: Projection, rows: np.ndarray | None, cols: np.ndarray | None) -> Projection:
    if pr.kind == "conv":
        raise NeurocompileError(f"projection {pr.name!r} is a convolution; a pruned population takes dense or sparse projections only")
    w = pr.weight
    if rows is not None:
        w = w[rows]
    if cols is not None:
        w = w[:, cols]
    return dataclasses.replace(pr, weight=sp.csr_matrix(w) if pr.kind == "sparse" else np.ascontiguousarray(w))


@network_pass(IS_CONVERTED, NOT_QUANTIZED)
def prune(
    net: Network,
    *,
    method: Literal["lnp", "random", "activity"] = "lnp",
    neuron_sparsity: float,
    synapse_sparsity: float,
    seed: int = 0,
    population: str | None = None,
    activity: np.ndarray | None = None,
    gain: float = 1.0,
) -> Network:
    """The network with its recurrent population pruned to the requested neuron and synapse sparsity.

    ``neuron_sparsity``: fraction of the population's neurons removed;
    ``synapse_sparsity``: fraction of the recurrent synapses among the
    survivors removed (``neurocompile.lnp.prune`` explains why that
    convention). ``gain``: the neurons' response slope at their operating
    point, used to linearise the spiking network (1: the weights as they are).
    """
    if method not in METHODS:
        raise NeurocompileError(f"unknown pruning method {method!r}; accepted: {', '.join(METHODS)}")
    pop, rec = recurrent_population(net, population)
    W = sp.csr_matrix(rec.weight, dtype=np.float64)
    tau = 1.0 / np.maximum(pop.values("leak"), 1.0 / 1e6)  # integrate-and-fire (leak 0): a very long τ
    tau = np.maximum(tau, MIN_TAU)
    # the spiking exponent is measured on the population's own LIF neurons (thresholds, biases, both decays, reset)
    neurons = LIFNeurons(leak=pop.values("leak"), current_decay=pop.values("current_decay"), threshold=pop.values("threshold"),
                         bias=pop.values("bias"), reset=pop.reset)
    settings = LnpSettings(analysis=AnalysisSettings(gain=gain, neurons=neurons))
    result = prune_matrix(method, W, tau, neuron_sparsity=neuron_sparsity, synapse_sparsity=synapse_sparsity,
                          seed=seed, activity=activity, settings=settings)
    kept = np.asarray(result.kept, dtype=np.int64)
    projections = []
    for pr in net.projections:
        if pr is rec:
            projections.append(dataclasses.replace(pr, weight=sp.csr_matrix(result.weights), kind="sparse"))
        elif pr.target == pop.name or pr.source == pop.name:
            projections.append(_keep(pr, kept if pr.target == pop.name else None, kept if pr.source == pop.name else None))
        else:
            projections.append(pr)
    record = PruningRecord(
        method=method, population=pop.name, neuron_sparsity=float(neuron_sparsity), synapse_sparsity=float(synapse_sparsity),
        seed=int(seed), kept=[int(k) for k in kept], added_synapses=int(len(result.added_edges)),
        before={k: float(v) for k, v in dataclasses.asdict(result.before).items()},
        after={k: float(v) for k, v in dataclasses.asdict(result.after).items()},
    )
    pops = tuple(_slice(p, kept) if p.name == pop.name else p for p in net.populations)
    out = net.replace(populations=pops, projections=tuple(projections), pruning=record, mapping=None)
    out.validate()
    return out
