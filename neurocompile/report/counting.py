"""Operation counts per sample, chip-independent, defined as NeuroBench defines them.

Why NeuroBench's definitions (Yik et al., "NeuroBench", Nature Communications
2025; the ``neurobench`` package, ``metrics/static`` and ``metrics/workload``):
a user can check the report against the community's tool, and
``tests/test_neurobench_counts.py`` does so on the same model.

* synaptic operations (NeuroBench ``SynapticOperations``): per time step, each
  nonzero input of a layer times the nonzero weights it meets (the column's
  nonzeros in ``proj.matrix()``). Events of a *graded* source (values other than
  0/1: the input under ``direct`` encoding) are ``Effective_MACs``; binary spikes
  are ``Effective_ACs``. ``Dense``: every connection of every layer (zero weights
  included, as NeuroBench binarises weights to all-ones) on every step.
* neuron updates: every non-input neuron, every step of the period.
* dense MACs: the equivalent ANN does one MAC per nonzero synapse per inference.
* activation sparsity (``ActivationSparsity``): 1 - spikes / (spiking neurons x steps).
* connection sparsity (``ConnectionSparsity``): zero weights / all weights of the
  connection layers (a conv kernel counted once, biases excluded).
* footprint (``Footprint``): bytes of the model's parameters (weights and
  biases) as float32, the source model's own precision; a conv bias is one
  value per output channel.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import scipy.sparse as sp

from ..cores import projection_matrices
from ..errors import NeurocompileError
from ..ir import Network

SpikeCounts = Mapping[str, "float | np.ndarray"]
FLOAT32_BYTES = 4


def events_of(net: Network, spikes_per_sample: SpikeCounts, name: str) -> np.ndarray | float:
    """Events per sample of population ``name``: a per-neuron vector, or a total."""
    pop = net.population(name)
    if name not in spikes_per_sample:
        if pop.kind == "readout":
            return 0.0
        what = "its nonzero input frames" if name == net.input else "its spikes"
        raise NeurocompileError(f"spikes_per_sample has no entry for population {name!r} (pass {what} per sample)")
    v = spikes_per_sample[name]
    if np.ndim(v) == 0:
        return float(v)
    v = np.asarray(v, dtype=np.float64).ravel()
    if v.size != pop.size:
        raise NeurocompileError(f"spikes_per_sample[{name!r}] has {v.size} entries; population {name!r} has {pop.size} neurons")
    return v


def _stored_weights(proj) -> tuple[int, int]:
    """(nonzero, total) weights as stored: a conv kernel once, a dense or sparse matrix entry-wise."""
    w = proj.weight
    if sp.issparse(w):
        return int(w.count_nonzero()), int(np.prod(w.shape))
    w = np.asarray(w)
    return int(np.count_nonzero(w)), int(w.size)


def _connections(proj) -> int:
    """NeuroBench's dense connections of one layer per step: every weight set to one (padding taps excluded)."""
    if proj.kind == "conv":
        return int(proj.matrix(np.ones(np.shape(proj.weight))).nnz)
    out, inp = proj.shape()
    return int(out * inp)


def _bias_values(net: Network, name: str) -> int:
    pop = net.population(name)
    if pop.bias is None:
        return 0
    conv = [pr for pr in net.incoming(name) if pr.kind == "conv"]
    return int(conv[0].conv.out_shape[0]) if conv else pop.size


def footprint_bytes(net: Network) -> int:
    """NeuroBench ``Footprint`` of the source model: float32 weights and biases."""
    weights = sum(_stored_weights(pr)[1] for pr in net.projections)
    biases = sum(_bias_values(net, p.name) for p in net.neurons)
    return int((weights + biases) * FLOAT32_BYTES)


def count_ops(
    net: Network,
    spikes_per_sample: SpikeCounts,
    steps_per_sample: int,
    *,
    graded_sources: Iterable[str] | None = None,
    matrices: Mapping[str, sp.csr_matrix] | None = None,
) -> dict:
    """Chip-independent operation counts per sample (see the module docstring).

    ``spikes_per_sample``: per population, events per sample: a float (the
    population's total; synops then assume the events spread evenly over its
    neurons) or a per-neuron array (exact). Include the input population's
    nonzero frames. ``steps_per_sample``: the period (``sim.run.period``: T + depth, or T pipelined).
    ``graded_sources``: populations whose events carry a payload; default: the
    input when ``net.settings.encoding`` is ``direct`` (the default encoding).
    ``matrices``: the projections' CSR matrices if already built (saves rebuilding conv matrices).
    """
    if steps_per_sample <= 0:
        raise NeurocompileError(f"steps_per_sample must be positive, got {steps_per_sample}")
    if graded_sources is None:
        graded_sources = {net.input} if net.settings.encoding == "direct" else set()
    graded = set(graded_sources)
    mats = matrices if matrices is not None else projection_matrices(net)

    per_projection: dict[str, dict] = {}
    acs = macs = 0.0
    dense_macs = parameters = total_weights = connections = 0
    for pr in net.projections:
        m = mats[pr.name].copy()
        m.eliminate_zeros()
        fan_out = m.getnnz(axis=0)  # synapses per source neuron
        ev = events_of(net, spikes_per_sample, pr.source)
        synops = float(fan_out @ ev) if isinstance(ev, np.ndarray) else ev * m.nnz / m.shape[1]
        if pr.source in graded:
            macs += synops
        else:
            acs += synops
        nz, tot = _stored_weights(pr)
        dense_macs += int(m.nnz)
        parameters += nz
        total_weights += tot
        connections += _connections(pr)
        per_projection[pr.name] = {
            "source": pr.source,
            "target": pr.target,
            "synapses": int(m.nnz),
            "mean_fan_out": float(m.nnz / m.shape[1]) if m.shape[1] else 0.0,
            "synops": synops,
            "graded": pr.source in graded,
        }

    per_population: dict[str, dict] = {}
    updates = spikes = spiking_neurons = 0.0
    input_events = 0.0
    for p in net.populations:
        ev = float(np.sum(events_of(net, spikes_per_sample, p.name)))
        rec = {"kind": p.kind, "neurons": p.size, "spikes": ev}
        if p.name == net.input:
            input_events = ev
        else:
            rec["updates"] = float(p.size * steps_per_sample)
            updates += rec["updates"]
            if p.kind == "spiking":
                spikes += ev
                spiking_neurons += p.size
        rec["rate_per_step"] = ev / (p.size * steps_per_sample)
        per_population[p.name] = rec

    activation_sparsity = 1.0 - spikes / (spiking_neurons * steps_per_sample) if spiking_neurons else 1.0
    connection_sparsity = 1.0 - parameters / total_weights if total_weights else 0.0
    return {
        "steps_per_sample": int(steps_per_sample),
        "synops": acs + macs,
        "effective_acs": acs,
        "effective_macs": macs,
        "neuron_updates": updates,
        "spikes": spikes,
        "input_events": input_events,
        "dense_macs": dense_macs,
        "parameters": parameters,
        "activation_sparsity": activation_sparsity,
        "connection_sparsity": connection_sparsity,
        "graded_sources": sorted(graded),
        "neurobench": {  # NeuroBench's own names, per sample
            "footprint": footprint_bytes(net),
            "connection_sparsity": connection_sparsity,
            "activation_sparsity": activation_sparsity,
            "synaptic_operations": {"Effective_MACs": macs, "Effective_ACs": acs, "Dense": float(connections * steps_per_sample)},
        },
        "per_projection": per_projection,
        "per_population": per_population,
    }
