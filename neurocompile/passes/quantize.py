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
which Lava's Dense would otherwise truncate — see sim/fixed_point.py), the
bias the smallest exponent that fits its mantissa. Readouts are sized so that
``T`` steps of input cannot saturate ``v``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..ir import Network, NeuronQuant, Population, Projection
from ..sim.encoding import input_scale
from ..sim.fixed_point import ACT_SHIFT, VTH_SHIFT


@dataclass(frozen=True)
class FixedPointFormat:
    """Bit widths of the target's neuron and synapse state (from its hardware profile)."""

    weight_bits: int = 8
    weight_exp_min: int = -8
    weight_exp_max: int = 7
    vth_bits: int = 17
    bias_mant_bits: int = 13
    bias_exp_bits: int = 3
    state_bits: int = 24
    decay_bits: int = 12
    headroom: float = 0.9  # fraction of the state range the worst case may use

    @classmethod
    def from_profile(cls, profile) -> "FixedPointFormat":
        """Read the profile's ``formats`` table; keys it lacks keep Lava's LIF defaults."""
        table = getattr(profile, "formats", None) or {}
        known = {f.name for f in dataclasses.fields(cls)}
        values = {}
        for key, raw in table.items():
            key = _PROFILE_KEYS.get(key, key)
            if key in known:
                v = raw["value"] if isinstance(raw, dict) else getattr(raw, "value", raw)
                values[key] = float(v) if key == "headroom" else int(v)
        return cls(**values)


# hardware_profiles/*.toml names → FixedPointFormat fields
_PROFILE_KEYS = {
    "v_bits": "state_bits",
    "threshold_mantissa_bits": "vth_bits",
    "bias_mantissa_bits": "bias_mant_bits",
    "bias_exponent_bits": "bias_exp_bits",
}


def _weight_mantissa(w, scale: float, fmt: FixedPointFormat) -> tuple[object, int]:
    """Integer mantissas and exponent with ``mant · 2^exp ≈ w · scale``."""
    data = (w.data if sp.issparse(w) else np.asarray(w, dtype=np.float64)) * scale
    peak = float(np.abs(data).max()) if data.size else 0.0
    mixed = data.size and data.min() < 0 < data.max()
    top = (1 << fmt.weight_bits) - 2 if mixed else (1 << fmt.weight_bits) - 1
    exp = 0 if peak == 0 else math.ceil(math.log2(peak / top))
    exp = int(np.clip(exp, fmt.weight_exp_min, fmt.weight_exp_max))
    x = data / 2.0**exp
    mant = 2 * np.round(x / 2) if mixed else np.round(x)
    mant = np.clip(mant, -top, top).astype(np.int64)
    if sp.issparse(w):
        q = sp.csr_matrix(w, dtype=np.int64, copy=True)
        q.data = mant
        q.eliminate_zeros()
        return q, exp
    return mant.reshape(np.shape(w)), exp


def _bias(b: np.ndarray, fmt: FixedPointFormat, exp_max: int | None = None) -> tuple[np.ndarray, int]:
    top = (1 << (fmt.bias_mant_bits - 1)) - 1
    peak = float(np.abs(b).max()) if b.size else 0.0
    exp = 0 if peak <= top else math.ceil(math.log2(peak / top))
    exp = min(exp, (1 << fmt.bias_exp_bits) - 1 if exp_max is None else exp_max)
    return np.clip(np.round(b / 2.0**exp), -top, top).astype(np.int64), exp


def quantize(net: Network, fmt: FixedPointFormat = FixedPointFormat()) -> Network:
    """The IR with ``qweight``/``weight_exp`` on projections and ``quant`` on populations."""
    T = int(net.meta.get("timesteps", 1))
    in_scale = input_scale(net.meta.get("encoding", "direct"), fixed=True)
    state_max = fmt.headroom * (1 << (fmt.state_bits - 1))
    vth_max = (1 << fmt.vth_bits) - 1
    new_pops: list[Population] = [net.populations[0]]
    new_proj: dict[str, Projection] = {}
    scales: dict[str, float] = {}
    for pop in net.populations[1:]:
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
            sigma = state_max / max(T * (i_max + b_max), 1e-12)  # the decoder applies the bias: no bias limit
            vth = vth_max  # never used: readouts do not fire
        else:
            theta = float(pop.threshold)
            sigma = min(state_max / max(theta + i_max + b_max, 1e-12), vth_max * (1 << VTH_SHIFT) / theta, sigma_bias)
            vth = int(round(theta * sigma / (1 << VTH_SHIFT)))
        scales[pop.name] = sigma
        for pr in inc:
            w = pr.weight if pr.kind != "sparse" else sp.csr_matrix(pr.weight)
            q, e = _weight_mantissa(w, unit[pr.name] * sigma / (1 << ACT_SHIFT), fmt)
            new_proj[pr.name] = dataclasses.replace(pr, qweight=q, weight_exp=e)
        # a readout's bias is applied by the host decoder (ir.py), so its exponent is not bounded by the chip
        bm, be = _bias(bias * sigma, fmt, exp_max=62 - fmt.bias_mant_bits if pop.kind == "readout" else None)
        decay = (1 << fmt.decay_bits)
        du = int(np.clip(round(pop.current_decay * decay) - 1, 0, decay - 1))  # Lava decays u by (du + 1) / 4096
        quant = NeuronQuant(vth=vth, bias_mant=bm, bias_exp=be, du=du, dv=int(round(pop.leak * decay)))
        new_pops.append(dataclasses.replace(pop, quant=quant))
    meta = {**net.meta, "quantization": {"format": dataclasses.asdict(fmt), "v_units_per_float": scales}}
    return net.replace(populations=tuple(new_pops), projections=tuple(new_proj[pr.name] for pr in net.projections), meta=meta)


def dequantize(net: Network) -> Network:
    """The float network that computes exactly what the quantised one does, in Lava's float units.

    LAVA.md's equivalences: ``w·2^weight_exp`` (after Lava's weight truncation),
    ``vth``, ``bias_mant·2^bias_exp / 64``, ``du → (du+1)/4096``, ``dv → dv/4096``;
    u and v are the fixed-point states / 64. Lava's ``floating_pt`` models run
    these numbers; so does the float engine, which makes the two comparable.
    """
    from ..sim.fixed_point import float_equivalents, synapse_weights

    pops = [net.populations[0]]
    for p in net.populations[1:]:
        q = p.quant
        f = float_equivalents(q.vth, q.bias_mant, q.bias_exp, q.du, q.dv)
        pops.append(dataclasses.replace(p, threshold=f["vth"], bias=f["bias"], leak=f["dv"], current_decay=f["du"], quant=None))
    projs = []
    for pr in net.projections:
        w = synapse_weights(pr).astype(np.float64) * 2.0**pr.weight_exp
        projs.append(dataclasses.replace(pr, weight=w, qweight=None, weight_exp=0))
    return net.replace(populations=tuple(pops), projections=tuple(projs))
