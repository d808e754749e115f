"""Lava's fixed-point arithmetic, rule for rule, on batched torch int64 tensors.

Every rule names the lava-nc 0.10.0 line it reproduces. Lava keeps states and
messages in numpy int32 arrays; we compute in int64 and wrap to 32 bits at
exactly the places where Lava's int32 storage would (``wrap32``), so results
are identical also when values overflow.

Lava's fixed-point ``Conv`` (lava/proc/conv/models.py ``PyConvModelFixed``)
follows other rules: it never applies ``weight_exp``, sums in float32 (torch
``conv2d`` in ``utils.conv``), wraps messages at 24 bits (``signed_clamp``)
and does not truncate odd mixed-sign weights. None of these is reproduced
here: the Lava lowering uses Conv only where all are identities (exponent 0,
worst-case message within ±(2^23 - 1), weights pre-truncated by ``LOIHI2.synapse_weights``;
``neurocompile_lava.plan.conv_is_exact``), so a conv projection is the same
integer convolution on every backend (tests/test_lava_stock.py).
"""
from __future__ import annotations

import numpy as np
import torch

from ..target import LOIHI2

# Lava's constants, read from the target (hardware_profiles/loihi2.toml [formats])
DECAY_SHIFT = LOIHI2.decay_shift  # lif/models.py AbstractPyLifModelFixed: decay_shift = 12
DECAY_UNITY = LOIHI2.decay_unity
ACT_SHIFT = LOIHI2.threshold_shift  # act_shift = 6: synaptic input is MSB-aligned
VTH_SHIFT = LOIHI2.threshold_shift  # vth_shift = 6
UV_MAX = LOIHI2.uv_max  # max_uv_val = 2 ** (uv_bitwidth - 1), uv_bitwidth = 24

# the target's weight and parameter rules, which the engine applies to IR projections and populations
lava_weights = LOIHI2.lava_weights
synapse_weights = LOIHI2.synapse_weights
check_neuron_params = LOIHI2.check_neuron_params


def wrap32(x: torch.Tensor) -> torch.Tensor:
    """Two's-complement wrap to int32, as a store into a numpy int32 array does.

    torch's int64 → int32 conversion keeps the low 32 bits (checked in
    tests/test_fixed_point.py), which is 4× cheaper than mask arithmetic.
    """
    return x.to(torch.int32).to(torch.int64)


def wrap16(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.int16).to(torch.int64)


def shift(x: torch.Tensor, exp: int | torch.Tensor) -> torch.Tensor:
    """``x << exp`` for exp ≥ 0, arithmetic ``x >> -exp`` (floor) otherwise.

    dense/models.py: ``np.left_shift(a_accum, weight_exp) if weight_exp > 0
    else np.right_shift(a_accum, -weight_exp)``; lif/models.py scale_bias.
    """
    if isinstance(exp, torch.Tensor):
        return torch.where(exp >= 0, x << exp.clamp(min=0), x >> (-exp).clamp(min=0))
    return x << exp if exp >= 0 else x >> -exp


def decay(x: torch.Tensor, factor: int | torch.Tensor) -> torch.Tensor:
    """``sign(x·f) · (|x·f| >> 12)`` then int32 — lif/models.py subthr_dynamics (rounds toward zero).

    f = 0 (du = 4095) gives exactly 0 and f = 4096 (dv = 0) exactly x for
    the int32 states Lava keeps, so those common cases skip the arithmetic.
    """
    if isinstance(factor, torch.Tensor):  # one factor per neuron: the rule as written (exact for 0 and 4096 too)
        d = x * factor
        return wrap32(torch.sign(d) * (d.abs() >> DECAY_SHIFT))
    if factor == 0:
        return torch.zeros_like(x)
    if factor == DECAY_UNITY:
        return x
    d = x * factor
    return wrap32(torch.sign(d) * (d.abs() >> DECAY_SHIFT))


def lif_subthreshold(u, v, a_in, du, dv, eff_bias):
    """One step of ``AbstractPyLifModelFixed.subthr_dynamics`` (lif/models.py L138-186)."""
    act = wrap32(wrap32(a_in) << ACT_SHIFT)  # np.left_shift(activation_in, act_shift) on int32
    cur = wrap32(decay(u, DECAY_UNITY - (du + 1)) + act)  # ds_offset = 1; decayed_curr += activation_in
    wrapped = torch.where(cur > UV_MAX, cur - 2 * UV_MAX, cur)  # one conditional wrap, not a modulo
    u = torch.where(wrapped <= -UV_MAX, cur + 2 * UV_MAX, wrapped)  # note: Lava adds to cur here
    volt = wrap32(decay(v, DECAY_UNITY - dv) + u + eff_bias)  # dm_offset = 0
    v = volt.clamp(-UV_MAX + 1, UV_MAX - 1)  # np.clip to ±(2^23 - 1)
    return u, v


def effective_bias(bias_mant: np.ndarray, bias_exp) -> torch.Tensor:
    """lif/models.py scale_bias: ``bias_mant.astype(int32)`` shifted by bias_exp.

    Lava stores ``bias_mant`` and ``bias_exp`` in int16 Vars
    (AbstractPyLifModelFixed), so both wrap at 16 bits first.
    """
    m = wrap16(torch.from_numpy(np.asarray(bias_mant, dtype=np.int64)).to(torch.int64))
    e = wrap16(torch.as_tensor(np.asarray(bias_exp, dtype=np.int64)))
    return wrap32(shift(m, e))
