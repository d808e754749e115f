"""Lava fixed-point rules, checked against values worked out by hand from lava-nc's code."""
from __future__ import annotations

import numpy as np
import pytest
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


from hypothesis import HealthCheck, example, given, settings, strategies as st  # noqa: E402

from nc_testutils import fixed_network  # noqa: E402
from neurocompile.ir import NeuronFixed, Population, Projection  # noqa: E402
from neurocompile.sim import native  # noqa: E402
from neurocompile.sim.engine import simulate  # noqa: E402


def _lif_loop(w, w_rec, exp, frames, q, reset):
    """Lava's LIF fixed-point rules step by step via fx.lif_subthreshold only (no fast paths).

    ``w`` from the input and ``w_rec`` from ``h`` to itself, both with weight exponent ``exp``;
    a readout sums ``h``'s spikes (weights 1). Returns h's spikes, final u, v and the readout's v.
    """
    bias = fx.effective_bias(q.bias_mant, q.bias_exp)
    vth = q.vth << 6
    B, P, _ = frames.shape
    u = v = torch.zeros(B, w.shape[0], dtype=torch.int64)
    s = torch.zeros_like(u, dtype=torch.bool)
    buf = torch.zeros_like(u)
    u_out = v_out = buf_out = torch.zeros(B, 1, dtype=torch.int64)
    spikes = []
    dense = lambda x, m: fx.wrap32(fx.shift(fx.wrap32(x.to(torch.int64) @ torch.as_tensor(fx.lava_weights(m)).T), exp))  # noqa: E731
    for t in range(P):
        if t == 0:
            u = v = torch.zeros_like(u)
            s = torch.zeros_like(u, dtype=torch.bool)
        else:
            u_out, v_out = fx.lif_subthreshold(u_out, v_out, buf_out, 4095, 0, torch.zeros(1, dtype=torch.int64))
            u, v = fx.lif_subthreshold(u, v, buf, q.du, q.dv, bias)
            s = v > vth
            v = torch.where(s, v - vth, v) if reset == "subtract" else v.masked_fill(s, 0)
        spikes.append(s)
        buf = dense(frames[:, t], w) + dense(s, w_rec)
        buf_out = s.sum(1, keepdim=True).to(torch.int64)
    return torch.stack(spikes, 1), u, v, v_out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # monkeypatch: same value every example
@example(seed=1, bias_mant=32767, bias_exp=16, vth=100, dv=0, du=4095, wmax=60, reset="subtract", exp=0, static=False, scalar_bias=False)  # v + u + bias wraps at 32 bits
@example(seed=2, bias_mant=-32768, bias_exp=16, vth=5, dv=100, du=4095, wmax=60, reset="subtract", exp=0, static=False, scalar_bias=False)
@example(seed=3, bias_mant=1000, bias_exp=3, vth=(1 << 17) - 1, dv=0, du=4095, wmax=255, reset="zero", exp=0, static=False, scalar_bias=False)
@example(seed=4, bias_mant=-70, bias_exp=2, vth=300, dv=0, du=4095, wmax=60, reset="subtract", exp=-3, static=True, scalar_bias=True)  # int32 fast path
@example(seed=5, bias_mant=70, bias_exp=2, vth=300, dv=0, du=4095, wmax=60, reset="zero", exp=2, static=True, scalar_bias=False)
@given(
    seed=st.integers(0, 10**6),
    bias_mant=st.integers(-(1 << 15), (1 << 15) - 1),
    bias_exp=st.integers(0, 16),
    vth=st.integers(0, (1 << 17) - 1),
    dv=st.sampled_from([0, 0, 1, 2048, 4095]),
    du=st.sampled_from([4095, 4095, 0, 3000]),
    wmax=st.sampled_from([3, 60, 255]),
    reset=st.sampled_from(["subtract", "zero"]),
    exp=st.sampled_from([0, 0, -3, 2, 5]),
    static=st.booleans(),
    scalar_bias=st.booleans(),
)
@pytest.mark.parametrize("kernel", ["native", "torch"])
def test_engine_fast_paths_equal_the_plain_lava_rules(kernel, monkeypatch, seed, bias_mant, bias_exp, vth, dv, du, wmax, reset, exp, static,
                                                     scalar_bias):
    """The engine's bound-based shortcuts (int32 states, skipped wraps, static direct input
    projected once, spikes by clamp, scales folded into adds) never change a spike or a state,
    with the fused C step (sim/native) and with its torch equivalent."""
    if kernel == "torch":
        monkeypatch.setattr(native, "if_step", lambda: None)
    elif native.if_step() is None:
        pytest.skip(f"no native kernel here: {native.status()}")
    rng = np.random.default_rng(seed)
    n_in, n = 6, 5
    w = rng.integers(-wmax, wmax + 1, (n, n_in))
    w_rec = rng.integers(-wmax, wmax + 1, (n, n)) * (rng.random((n, n)) < 0.5)
    q = NeuronFixed(vth=vth, bias_mant=np.full(1 if scalar_bias else n, bias_mant), bias_exp=bias_exp, du=du, dv=dv)
    if static:  # direct encoding: one graded frame repeated (a stride-0 view, as encode() makes it)
        frames = torch.as_tensor(rng.integers(0, 256, (3, 1, n_in))).expand(3, 12, n_in)
    else:
        frames = torch.as_tensor(rng.integers(0, 2, (3, 12, n_in)))
    _assert_engine_follows_the_rules(w, w_rec, exp, frames, q, reset)


def _assert_engine_follows_the_rules(w, w_rec, exp, frames, q, reset):
    n, n_in = w.shape
    net = fixed_network(
        (Population("input", (n_in,), "input"), Population("h", (n,), "spiking", reset=reset),
         Population("output", (1,), "readout")),
        (Projection("ih", "input", "h", "dense", w.astype(float)),
         Projection("hh", "h", "h", "dense", w_rec.astype(float), recurrent=True),
         Projection("ho", "h", "output", "dense", np.ones((1, n)))),
        neurons={"h": q, "output": NeuronFixed(vth=1, bias_mant=np.zeros(1), bias_exp=0)},
        synapses={"ih": (w, exp), "hh": (w_rec, exp), "ho": np.ones((1, n), dtype=np.int64)},
        inputs="input", outputs="output",
    )
    got = simulate(net, frames, "fixed", record=True)
    want_spikes, want_u, want_v, want_readout = _lif_loop(w, w_rec, exp, frames, q, reset)
    assert torch.equal(got.spike_trains["h"], want_spikes)
    assert torch.equal(got.readout.long(), want_readout)
    assert torch.equal(got.state["h"][0].long(), want_u)
    assert torch.equal(got.state["h"][1].long(), want_v)


@pytest.mark.parametrize("kernel", ["native", "torch"])
def test_one_bias_for_all_neurons_reaches_every_neuron(kernel, monkeypatch):
    """``bias_mant`` of shape (1,) is one bias for the whole population (as Lava broadcasts it),
    also on the fused kernel, which must never read a short bias row as if it were full."""
    if kernel == "torch":
        monkeypatch.setattr(native, "if_step", lambda: None)
    elif native.if_step() is None:
        pytest.skip(f"no native kernel here: {native.status()}")
    rng = np.random.default_rng(7)
    n, n_in = 1024, 8
    w = rng.integers(-20, 21, (n, n_in)) * 2
    w_rec = np.zeros((n, n), dtype=np.int64)
    q = NeuronFixed(vth=400, bias_mant=np.array([37]), bias_exp=6)  # 37·64 per step: fires every ~11 steps alone
    frames = torch.as_tensor(rng.integers(0, 2, (2, 30, n_in)))  # binary spikes: the bias is the whole drive
    _assert_engine_follows_the_rules(w, w_rec, 0, frames, q, "subtract")
