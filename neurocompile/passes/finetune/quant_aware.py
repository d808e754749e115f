"""Quantisation-aware fine-tuning: the forward pass on the values the chip will hold.

Rather than re-implement the quantiser, each training step runs the real one
(``passes/quantize.py``) on the simulator's current parameters and converts its
integers back to floats in the simulator's units with the target's rules
(``neurocompile/target.py``: Lava's effective weights, ``vth << 6``, the
bias's exponent, the decays' 12-bit fractions). Those values are swapped into
the parameters for the forward *and* backward pass and the float values put
back before the optimiser steps, so gradients computed at the quantised point
update the float weights (BinaryConnect's form of the straight-through
estimator). What the float simulator then computes equals the bit-exact engine
up to float rounding and the floor of a negative weight exponent, which the
study measures (bench/latency_accuracy.py).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import torch

from ...ir import Network
from ..quantize import quantize
from ...sim.encoding import input_scale
from ...sim.float_sim import FloatSimulator
from ...target import LOIHI2, FixedPointFormat, LavaTarget

__all__ = ["effective_network", "quantised_parameters"]


def effective_network(q: Network, target: LavaTarget = LOIHI2) -> Network:
    """The float network (no fixed-point layer) that computes what quantised ``q`` computes on the chip, in ``q``'s units.

    Population l's fixed-point ``v`` is ``σ_l`` times its float ``v``
    (``q.fixed.v_units_per_float``); in Lava's float units (target.py) ``v`` is
    ``2^-shift`` of the fixed-point one, so every neuron value is multiplied by
    ``2^shift / σ_l``; a weight from the input is further divided by the
    payload's unit (1/255 for direct input). Weights are the ones Lava uses
    (``target.synapse_weights``: clipped and truncated by its sign mode).
    """
    fx = q.fixed
    unit = input_scale(q.settings.encoding, fixed=True)
    shift = float(1 << target.threshold_shift)
    to_float = {name: shift / s for name, s in fx.v_units_per_float.items()}
    pops = {}
    for pop in q.neurons:
        n, k = fx.neurons[pop.name], to_float[pop.name]
        threshold = np.asarray(n.vth, dtype=np.float64) * k if pop.kind == "spiking" else pop.threshold
        bias = np.broadcast_to(np.asarray(n.bias_mant, dtype=np.float64), (pop.size,)) * (2.0**n.bias_exp / shift * k)
        pops[pop.name] = dataclasses.replace(pop, threshold=threshold, bias=bias,
                                             leak=np.asarray(n.dv, dtype=np.float64) / target.decay_unity,
                                             current_decay=(np.asarray(n.du, dtype=np.float64) + 1) / target.decay_unity)
    projs = []
    for pr in q.projections:
        sf = fx.synapses[pr.name]
        k = to_float[pr.target] * 2.0**sf.exp / (unit if pr.source == q.input else 1.0)
        w = target.synapse_weights(pr, sf.weight)
        w = sp.csr_matrix(w, dtype=np.float64) * k if sp.issparse(w) else np.asarray(w, dtype=np.float64) * k
        projs.append(dataclasses.replace(pr, weight=w))
    return q.replace(populations=tuple(pops.get(p.name, p) for p in q.populations), projections=tuple(projs), fixed=None)


def _values(sim: FloatSimulator, eff: Network) -> dict[int, torch.Tensor]:
    """id(parameter) → the effective value in that parameter's layout (a block kernel, CSR values on a fixed pattern)."""
    out: dict[int, torch.Tensor] = {}
    for pop in eff.neurons:
        p = sim.neuron_params(pop.name)
        for field in ("threshold", "leak", "current_decay", "bias"):
            out[id(getattr(p, field))] = torch.from_numpy(pop.values(field))
    for pr in eff.projections:
        syn = sim.synapse_params(pr.name)
        if syn.kind == "sparse":  # quantisation may zero synapses; the simulator's pattern stays
            # owned, writeable index arrays: scipy's fancy indexing refuses read-only views of torch memory
            rows = np.array(torch.repeat_interleave(torch.arange(len(syn.crow) - 1), syn.crow.diff().cpu()).numpy())
            w = np.asarray(sp.csr_matrix(pr.weight)[rows, np.array(syn.col.cpu().numpy())]).ravel()
        else:
            w = np.asarray(pr.weight)
            if syn.block is not None:  # a block-constant kernel stays block-constant: its block kernel
                w = w[:, :, :: syn.block[0], :: syn.block[1]]
        out[id(syn.weight)] = torch.from_numpy(np.ascontiguousarray(w))
    return out


@contextmanager
def quantised_parameters(sim: FloatSimulator, net: Network, fmt: FixedPointFormat | None = None) -> Iterator[Network]:
    """Inside: ``sim``'s parameters hold the fixed-point values of its current float ones (yields the quantised IR).

    Run forward *and* backward inside (autograd reads the parameters' values
    during backward); on exit the float values are back, gradients kept.
    ``net`` is the network ``sim`` was built from (its structure and run settings).
    """
    q = quantize(sim.to_network(net), fmt)
    values = _values(sim, effective_network(q))
    saved: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
    try:
        for p in sim.parameters():
            v = values.get(id(p))
            if v is None:
                continue
            saved.append((p, p.data))
            p.data = v.to(dtype=p.dtype, device=p.device).reshape(p.shape)
        yield q
    finally:
        for p, data in saved:
            p.data = data
