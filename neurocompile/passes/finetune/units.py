"""Training in threshold units: every spiking population rescaled to threshold 1 for the optimiser, and back.

Conversion leaves each layer in its own units (threshold λ_l, from 1 to ~25 on
the MNIST CNN), but Adam moves every parameter by about ``lr`` per step
whatever its scale, so a layer with θ = 25 would need 25× more steps than one
with θ = 1 to change its firing, and at T ≤ 2 (almost no spikes to start from)
fine-tuning stalled completely. Dividing a spiking population's incoming
weights, bias and threshold by the same factor leaves every spike unchanged
(the neuron equations are linear in them and the reset subtracts the
threshold or zeroes v), so the network trained is exactly the converted one,
and the quantiser, which picks each population's scale σ from the same values,
makes the same integers from either. The result is scaled back so the
network keeps the converted units (thresholds = activation scales λ).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from ...ir import Network, Projection

__all__ = ["threshold_scales", "rescale"]


def threshold_scales(net: Network) -> dict[str, float]:
    """Per spiking population with one positive threshold, that threshold (populations with per-neuron ones are left as they are)."""
    return {p.name: float(np.asarray(p.threshold).ravel()[0]) for p in net.neurons
            if p.kind == "spiking" and p.uniform("threshold") and float(np.asarray(p.threshold).ravel()[0]) > 0}


def _scaled_weight(pr: Projection, k: float):
    return sp.csr_matrix(pr.weight, dtype=np.float64) * k if pr.kind == "sparse" else np.asarray(pr.weight, dtype=np.float64) * k


def rescale(net: Network, scales: dict[str, float], inverse: bool = False) -> Network:
    """``net`` with population l's threshold, bias and incoming weights divided by ``scales[l]`` (multiplied when ``inverse``)."""
    factor = {name: (s if inverse else 1.0 / s) for name, s in scales.items()}
    pops = tuple(
        dataclasses.replace(p, threshold=np.asarray(p.threshold, dtype=np.float64) * factor[p.name] if np.ndim(p.threshold) else float(p.threshold) * factor[p.name],
                            bias=None if p.bias is None else np.asarray(p.bias, dtype=np.float64) * factor[p.name])
        if p.name in factor else p
        for p in net.populations
    )
    projs = tuple(dataclasses.replace(pr, weight=_scaled_weight(pr, factor[pr.target])) if pr.target in factor else pr
                  for pr in net.projections)
    return net.replace(populations=pops, projections=projs)
