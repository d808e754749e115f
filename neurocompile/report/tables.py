"""The report's per-layer tables, from an evaluation of the network (no simulation here)."""
from __future__ import annotations

import numpy as np

from ..ir import Network
from ..sim.run import Evaluation, period


def layer_table(net: Network, ev: Evaluation) -> list[dict]:
    """Per non-input population: size, incoming synapses, threshold, spikes per sample and firing rate.

    ``firing_rate``: spikes per neuron per step over the whole period (``sim.run.period``: T + depth, or T pipelined), NeuroBench's
    activation density of that layer (1 - its activation sparsity).
    """
    rows = []
    steps = period(net)
    for pop in net.neurons:
        spikes = ev.spike_counts.get(pop.name)
        rows.append(
            {
                "name": pop.name,
                "kind": pop.kind,
                "shape": list(pop.shape),
                "neurons": pop.size,
                "synapses": int(sum(pr.n_synapses for pr in net.incoming(pop.name))),
                "threshold": _per_layer(pop.values("threshold"), pop.uniform("threshold")) if pop.kind == "spiking" else None,
                "spikes_per_sample": float(spikes.mean()) if spikes is not None else 0.0,
                "firing_rate": float(spikes.mean()) / (pop.size * steps) if spikes is not None else 0.0,
            }
        )
    return rows


def _per_layer(values: np.ndarray, uniform: bool) -> float | dict[str, float]:
    """A per-neuron parameter for the report: its value, or its range where the neurons differ."""
    if uniform:
        return float(values[0]) if values.size else 0.0
    return {"min": float(values.min()), "mean": float(values.mean()), "max": float(values.max())}


def spikes_per_sample(net: Network, ev: Evaluation) -> dict[str, float]:
    per = {k: float(v.mean()) for k, v in ev.spike_counts.items()}
    per[net.input] = float(ev.input_events.mean())
    return per
