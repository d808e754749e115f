"""One sample's spikes, step by step, for the report's raster plot.

The caller records the trains on the reference backend (bit-exact with the
chip's fixed-point arithmetic, so the raster shows the spikes the chip would
emit; ``neurocompile.reporting.measured_sections``); this module only lays them
out. Large populations are cut to their first ``max_neurons`` neurons (the
record says so), keeping report.json small.
"""
from __future__ import annotations

import numpy as np

from ..ir import Network

MAX_NEURONS = 256


def spike_raster(net: Network, trains: dict[str, np.ndarray], steps: int, max_neurons: int = MAX_NEURONS) -> dict:
    """One sample's spikes (``trains``: per population, (1, steps, neurons) bool): per population, [step, neuron] pairs."""
    pops = {}
    for p in net.neurons:
        if p.name not in trains:
            continue
        t = np.asarray(trains[p.name][0])  # (steps, neurons)
        shown = min(p.size, max_neurons)
        at, neurons = np.nonzero(t[:, :shown])
        pops[p.name] = {"neurons": p.size, "shown": shown, "spikes_total": int(t.sum()),
                        "spikes": np.stack([at, neurons], 1).tolist()}
    return {"sample": 0, "steps": int(steps), "populations": pops}
