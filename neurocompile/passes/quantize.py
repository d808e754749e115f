"""Quantisation to a target's fixed-point formats (Loihi 2 via Lava's LIF/Dense models).

Per population l a scale σ_l (units of ``v`` per float unit) is chosen so the
worst case can never wrap the 24-bit ``u`` and one step cannot saturate ``v``
(a neuron driven above threshold for many steps still accumulates the excess
and may clip, identically on every backend): the largest
possible per-step input (row L1 norm of the incoming weights) plus threshold
and bias must stay below 2^(state_bits-1), ``vth = θσ/64`` must fit its
mantissa, and the bias must fit ``bias_mant << bias_exp`` (13 + 7 bits: on
Loihi the bias range, not the weights, often limits σ). Each projection into l then gets the exponent that puts its largest
weight at the top of the 8-bit mantissa (even values for mixed-sign weights,
which Lava's Dense would otherwise truncate — see neurocompile/target.py), the
bias the smallest exponent that fits its mantissa. Readouts are sized so that
``T`` steps of input cannot saturate ``v``.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.sparse as sp

from ..ir import FixedPoint, Network, NeuronFixed, SynapseFixed
from .base import IS_CONVERTED, network_pass
from ..sim.encoding import input_scale
from ..target import LOIHI2, FixedPointFormat

__all__ = ["FixedPointFormat", "quantize"]  # FixedPointFormat lives in neurocompile.target; importable here for callers

SHIFT = LOIHI2.threshold_shift  # act_shift = vth_shift: Lava aligns synaptic input and threshold by this many bits


def _weight_mantissa(w, scale: float, fmt: FixedPointFormat) -> tuple[object, int]:
    """Integer mantissas and exponent with ``mant · 2^exp ≈ w · scale``."""
    data = (w.data if sp.issparse(w) else np.asarray(w, dtype=np.float64)) * scale
    peak = float(np.abs(data).max()) if data.size else 0.0
    mixed = data.size and data.min() < 0 < data.max()
    top = fmt.weight_top(bool(mixed))
    exp = 0 if peak == 0 else math.ceil(math.log2(peak / top))
    exp = int(np.clip(exp, fmt.weight_exp_min, fmt.weight_exp_max))
    x = data / 2.0**exp
    step = fmt.mantissa_step(bool(mixed))
    mant = step * np.round(x / step)
    mant = np.clip(mant, -top, top).astype(np.int64)
    if sp.issparse(w):
        q = sp.csr_matrix(w, dtype=np.int64, copy=True)
        q.data = mant
        q.eliminate_zeros()
        return q, exp
    return mant.reshape(np.shape(w)), exp


def _fixed_decay(fraction: np.ndarray, uniform: bool, unity: int, offset: int) -> int | np.ndarray:
    """A decay fraction as Lava's 12-bit integer: ``round(f · 4096) - offset``, clipped; one int where it is one value."""
    d = np.clip(np.round(np.asarray(fraction, dtype=np.float64) * unity) - offset, 0, unity - 1).astype(np.int64)
    return int(d.flat[0]) if uniform else d


def _bias(b: np.ndarray, fmt: FixedPointFormat, exp_max: int | None = None) -> tuple[np.ndarray, int]:
    top = (1 << (fmt.bias_mant_bits - 1)) - 1
    peak = float(np.abs(b).max()) if b.size else 0.0
    exp = 0 if peak <= top else math.ceil(math.log2(peak / top))
    exp = min(exp, (1 << fmt.bias_exp_bits) - 1 if exp_max is None else exp_max)
    return np.clip(np.round(b / 2.0**exp), -top, top).astype(np.int64), exp


@network_pass(IS_CONVERTED)
def quantize(net: Network, fmt: FixedPointFormat | None = None) -> Network:
    """The IR with its fixed-point layer (``net.fixed``): integer weights and exponents, thresholds, biases and decays.

    ``fmt``: the target profile's widths (``FixedPointFormat.from_profile``); default Loihi 2's.
    """
    fmt = LOIHI2.format if fmt is None else fmt
    T = net.timesteps
    in_scale = input_scale(net.settings.encoding, fixed=True)
    state_max = fmt.headroom * (1 << (fmt.state_bits - 1))
    vth_max = (1 << fmt.vth_bits) - 1
    neurons: dict[str, NeuronFixed] = {}
    synapses: dict[str, SynapseFixed] = {}
    scales: dict[str, float] = {}
    for pop in net.neurons:
        inc = net.incoming(pop.name)
        # float value of one payload unit (8-bit direct input); every source's largest value is 1.0
        unit = {pr.name: (in_scale if pr.source == net.input else 1.0) for pr in inc}
        row_l1 = sum(abs(pr.matrix()) @ np.ones(pr.matrix().shape[1]) for pr in inc)
        i_max = float(np.max(row_l1)) if np.size(row_l1) else 0.0
        bias = pop.bias if pop.bias is not None else np.zeros(pop.size)
        b_max = float(np.abs(bias).max()) if bias.size else 0.0
        bias_max = ((1 << (fmt.bias_mant_bits - 1)) - 1) << ((1 << fmt.bias_exp_bits) - 1)
        sigma_bias = bias_max / b_max if b_max > 0 else math.inf  # the bias must fit mantissa << max exponent
        if pop.kind == "readout":
            # the decoder applies the bias: no bias limit. A leaky readout (a streamed series' forecast) forgets:
            # |v| ≤ i_max / leak however long the period, so a long T does not cost it its resolution
            leak = float(np.round(pop.values("leak").min() * (1 << fmt.decay_bits))) / (1 << fmt.decay_bits) if pop.leak is not None else 0.0
            steps = T if leak <= 0 else min(T, 1.0 / leak)
            sigma = state_max / max(steps * (i_max + b_max), 1e-12)
            vth = vth_max  # never used: readouts do not fire
        else:
            theta = pop.values("threshold")  # one σ per population: the largest threshold bounds it
            top = float(theta.max())
            sigma = min(state_max / max(top + i_max + b_max, 1e-12), vth_max * (1 << SHIFT) / top, sigma_bias)
            vth = np.round(theta * sigma / (1 << SHIFT)).astype(np.int64)
            vth = int(vth[0]) if pop.uniform("threshold") else vth
        scales[pop.name] = sigma
        for pr in inc:
            w = pr.weight if pr.kind != "sparse" else sp.csr_matrix(pr.weight)
            q, e = _weight_mantissa(w, unit[pr.name] * sigma / (1 << SHIFT), fmt)
            synapses[pr.name] = SynapseFixed(weight=q, exp=e)
        # a readout's bias is applied by the host decoder (ir/graph.py), so its exponent is not bounded by the chip
        bm, be = _bias(bias * sigma, fmt, exp_max=62 - fmt.bias_mant_bits if pop.kind == "readout" else None)
        unity = 1 << fmt.decay_bits
        neurons[pop.name] = NeuronFixed(
            vth=vth, bias_mant=bm, bias_exp=be,
            du=_fixed_decay(pop.current_decay, pop.uniform("current_decay"), unity, 1),  # Lava decays u by (du + 1) / 4096
            dv=_fixed_decay(pop.leak, pop.uniform("leak"), unity, 0),
        )
    fixed = FixedPoint(neurons=neurons, synapses=synapses, format=dataclasses.asdict(fmt), v_units_per_float=scales)
    return net.replace(fixed=fixed)
