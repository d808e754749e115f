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
worst-case message within ±(2^23 - 1), weights pre-truncated by :func:`synapse_weights`;
``neurocompile_lava.plan.conv_is_exact``), so a conv projection is the same
integer convolution on every backend (tests/test_lava_stock.py).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

DECAY_SHIFT = 12  # lif/models.py AbstractPyLifModelFixed: decay_shift = 12
DECAY_UNITY = 1 << DECAY_SHIFT
ACT_SHIFT = 6  # act_shift = 6: synaptic input is MSB-aligned
VTH_SHIFT = 6  # vth_shift = 6
UV_MAX = 1 << 23  # max_uv_val = 2 ** (uv_bitwidth - 1), uv_bitwidth = 24


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


def decay(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``sign(x·f) · (|x·f| >> 12)`` then int32 — lif/models.py subthr_dynamics (rounds toward zero).

    f = 0 (du = 4095) gives exactly 0 and f = 4096 (dv = 0) exactly x for
    the int32 states Lava keeps, so those common cases skip the arithmetic.
    """
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


def synapse_weights(proj, matrix: sp.spmatrix | None = None):
    """The weights Lava uses for an IR projection, in the projection's own layout (matrix or kernel).

    Lava infers the sign mode over the synapses that exist. For a conv
    projection those are the unrolled matrix's entries (``Projection.matrix``):
    kernel taps that only ever meet padding are no synapses (Lava's Sparse never
    sees them; a Conv multiplies them by zero), so the kernel is truncated in
    the matrix's sign mode, which can differ from the kernel's own. ``matrix``:
    that unrolled matrix where the caller has it already.
    """
    if proj.kind != "conv":
        return lava_weights(proj.qweight)
    synapses = np.asarray((proj.matrix(quantized=True) if matrix is None else matrix).data, dtype=np.int64)
    return lava_weights(np.asarray(proj.qweight, dtype=np.int64), mode=sign_mode(synapses))


def effective_bias(bias_mant: np.ndarray, bias_exp) -> torch.Tensor:
    """lif/models.py scale_bias: ``bias_mant.astype(int32)`` shifted by bias_exp.

    Lava stores ``bias_mant`` and ``bias_exp`` in int16 Vars
    (AbstractPyLifModelFixed), so both wrap at 16 bits first.
    """
    m = wrap16(torch.from_numpy(np.asarray(bias_mant, dtype=np.int64)).to(torch.int64))
    e = wrap16(torch.as_tensor(np.asarray(bias_exp, dtype=np.int64)))
    return wrap32(shift(m, e))


CLIP_RANGE = {"mixed": (-256, 255), "excitatory": (0, 255), "inhibitory": (-255, 0)}  # weightutils.clip_weights(num_bits=8)


def sign_mode(values: np.ndarray) -> str:
    """utils/weightutils.py ``determine_sign_mode``: min ≥ 0 → excitatory, max ≤ 0 → inhibitory, else mixed."""
    if values.size == 0 or values.min() >= 0:
        return "excitatory"
    if values.max() <= 0:
        return "inhibitory"
    return "mixed"


def lava_weights(w, num_weight_bits: int = 8, mode: str | None = None):
    """The weights Lava's fixed-point Dense/Sparse actually use (first run_spk).

    utils/weightutils.py: sign mode inferred by ``determine_sign_mode`` (over
    ``w``'s values unless ``mode`` says what Lava inferred over the synapses);
    ``clip_weights(num_bits=8)``: MIXED [-256, 255], EXCITATORY [0, 255],
    INHIBITORY [-255, 0]; ``truncate_weights``: drop ``8 - num_weight_bits +
    is_mixed`` low bits by ``(w >> k) << k`` (floor; inhibitory on -w).
    So mixed-sign weights become even (3 → 2, -3 → -4).
    """
    is_sparse = sp.issparse(w)
    data = (sp.csr_matrix(w).data if is_sparse else np.asarray(w)).astype(np.int64)
    if data.size == 0:
        return w
    mode = mode or sign_mode(data)
    k = 8 - num_weight_bits + int(mode == "mixed")
    x = np.clip(data, *CLIP_RANGE[mode])
    x = -((-x >> k) << k) if mode == "inhibitory" else (x >> k) << k
    if is_sparse:
        m = sp.csr_matrix(w, dtype=np.int64, copy=True)
        m.data = x
        m.eliminate_zeros()
        return m
    return x


# Declared precisions of Lava's fixed-point LIF Vars (lif/models.py PyLifModelBitAcc docstring and
# LavaPyType precisions). Lava does not check them and silently misbehaves outside (e.g. vth << 6
# past int32); the reference refuses such networks instead of guessing.
PARAM_RANGES = {"vth": (0, (1 << 17) - 1), "du": (0, 4095), "dv": (0, 4095)}


def check_neuron_params(name: str, q, size: int) -> None:
    """Refuse what Lava would misread: parameters outside their precisions, a bias per neuron that is not one per neuron."""
    from ..errors import NeurocompileError

    biases = np.size(q.bias_mant)
    if biases not in (1, size):  # one value is Lava's broadcast scalar
        raise NeurocompileError(f"population {name!r}: bias_mant has {biases} values for {size} neurons (give one, or one per neuron)")
    for key, (lo, hi) in PARAM_RANGES.items():
        value = int(getattr(q, key))
        if not lo <= value <= hi:
            raise NeurocompileError(f"population {name!r}: {key} = {value} is outside Lava's fixed-point range [{lo}, {hi}]")


def float_equivalents(vth: int, bias_mant: np.ndarray, bias_exp: int, du: int, dv: int) -> dict:
    """LAVA.md's fixed ↔ float equivalences (u, v scaled by 1/64): the float LIF that computes the same thing."""
    return {
        "vth": float(vth),
        "bias": np.asarray(bias_mant, dtype=np.float64) * 2.0**bias_exp / (1 << ACT_SHIFT),
        "du": (du + 1) / DECAY_UNITY,
        "dv": dv / DECAY_UNITY,
    }
