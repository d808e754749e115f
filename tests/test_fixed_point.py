"""Lava fixed-point rules, checked against values worked out by hand from lava-nc's code."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from neurocompile.sim import fixed_point as fx

T = lambda *v: torch.tensor(v, dtype=torch.int64)  # noqa: E731


def test_mixed_sign_weights_become_even_and_clip():
    w = np.array([[3, -3, 1, -1, 300, -300, 254]])
    assert fx.lava_weights(w).tolist() == [[2, -4, 0, -2, 254, -256, 254]]


def test_single_sign_weights_keep_all_bits():
    assert fx.lava_weights(np.array([[3, 1, 300]])).tolist() == [[3, 1, 255]]
    assert fx.lava_weights(np.array([[-3, -1, -300]])).tolist() == [[-3, -1, -255]]


def test_sparse_weights_follow_the_same_rules():
    m = sp.csr_matrix(np.array([[3, 0], [-3, 1]]))
    assert fx.lava_weights(m).toarray().tolist() == [[2, 0], [-4, 0]]


def test_current_decay_du0_still_decays_and_du4095_clears():
    u, v = fx.lif_subthreshold(T(4096, -4096), T(0, 0), T(0, 0), 0, 0, T(0, 0))
    assert u.tolist() == [4095, -4095]  # (u * 4095) >> 12, toward zero
    u, _ = fx.lif_subthreshold(T(4096), T(0), T(0), 4095, 0, T(0))
    assert u.tolist() == [0]


def test_input_is_shifted_by_6_and_bias_added_to_v():
    u, v = fx.lif_subthreshold(T(0), T(100), T(3), 4095, 0, T(7))
    assert u.tolist() == [3 * 64] and v.tolist() == [100 + 192 + 7]


def test_voltage_decay_rounds_toward_zero():
    _, v = fx.lif_subthreshold(T(0, 0), T(1000, -1000), T(0, 0), 4095, 2048, T(0, 0))
    assert v.tolist() == [500, -500]
    _, v = fx.lif_subthreshold(T(0, 0), T(3, -3), T(0, 0), 4095, 2048, T(0, 0))
    assert v.tolist() == [1, -1]


def test_u_wraps_once_at_24_bits_and_v_saturates():
    a = (1 << 17) + 1  # a << 6 = 2^23 + 64 > 2^23 → minus 2^24 (exactly 2^23 would stay: Lava tests '>')
    u, _ = fx.lif_subthreshold(T(0, 0), T(0, 0), T(a, 1 << 17), 4095, 0, T(0, 0))
    assert u.tolist() == [a * 64 - (1 << 24), 1 << 23]
    u, _ = fx.lif_subthreshold(T(0), T(0), T(-(1 << 17)), 4095, 0, T(0))
    assert u.tolist() == [(1 << 23)]  # -2^23 is at the lower bound ('<='): plus 2^24
    _, v = fx.lif_subthreshold(T(0), T((1 << 23) - 5), T(1), 4095, 0, T(0))
    assert v.tolist() == [(1 << 23) - 1]


def test_bias_exponent_and_negative_shift():
    assert fx.effective_bias(np.array([3, -3]), 2).tolist() == [12, -12]
    assert fx.effective_bias(np.array([5, -5]), np.array([-1, -1])).tolist() == [2, -3]  # floor, like np.right_shift


def test_wrap32():
    assert fx.wrap32(T(1 << 31, -(1 << 31) - 1, 5)).tolist() == [-(1 << 31), (1 << 31) - 1, 5]


def test_int32_cast_keeps_the_low_bits():
    """wrap32 relies on torch's int64 → int32 conversion wrapping (two's complement)."""
    x = torch.tensor([(1 << 33) + 5, -(1 << 33) - 7, (1 << 31) + 3], dtype=torch.int64)
    assert fx.wrap32(x).tolist() == [5, -7, -(1 << 31) + 3]
    assert fx.wrap16(torch.tensor([40000, -40000])).tolist() == [40000 - 65536, -40000 + 65536]


def test_bias_mantissa_wraps_at_16_bits_like_lavas_int16_var():
    assert fx.effective_bias(np.array([40000]), 0).tolist() == [40000 - 65536]
