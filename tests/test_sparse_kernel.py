"""The engine's sparse and graded synapse kernels (sim/native/syn_step.c, syn_core.h) and the LIF step
that sums them inside itself (lif_step.c, ``nc_lif_fused``) give exactly the integers of the
paths they replace: the int8 GEMM and float matmul, and Lava's rules as written.

* ``nc_spmm_step``: binary spikes × CSR weights, dense over the batch (blocks of 32 samples,
  16 × 16 tile transposes on AVX-512) -- random sparse weights with negative values, large
  magnitudes, large fan-in, every batch and size remainder;
* ``nc_dense_step`` / the fused step's int32 and int16 dense kernels: graded input × small
  dense weights with Lava's floor shift of a negative weight exponent, int32 and int64 input
  rows read where they lie (strided);
* the fused LIF step with deferred messages vs the same step on materialised ones, and whole
  networks vs ``fixed_point``'s plain rules and vs the engine with these kernels switched off.
"""
from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from nc_testutils import fixed_network
from neurocompile.ir import NeuronFixed, Population, Projection, SynapseFixed
from neurocompile.sim import native
from neurocompile.sim.engine import SPMM_MAX_DENSITY, _Deferred, _Neurons, _Synapses, simulate
from test_lif_fast_path import _plain

pytestmark = pytest.mark.skipif(native.lif_fused() is None, reason=f"no native kernels here ({native.status()})")
SETTINGS = dict(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])


def _kernels_off():
    """The engine as it was: int8 GEMM and float matmul for every projection, no fused sums."""
    return mock.patch.multiple(native, spmm_step=lambda: None, dense_step=lambda: None, lif_fused=lambda: None)


def _spmm(s: torch.Tensor, m: sp.csr_matrix, threads: int) -> torch.Tensor:
    B, n_src = s.shape
    rowptr, col, val = (np.ascontiguousarray(m.indptr, np.int64), np.ascontiguousarray(m.indices, np.int32),
                        np.ascontiguousarray(m.data, np.int32))
    out = torch.full((B, m.shape[0]), 12345, dtype=torch.int32)
    assert native.spmm_step()(s.data_ptr(), B, n_src, rowptr.ctypes.data, col.ctypes.data, val.ctypes.data,
                              out.data_ptr(), m.shape[0], threads) == 0
    return out


# ----------------------------------------------------------------------------- the kernels alone


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), B=st.sampled_from([1, 2, 31, 32, 33, 70]),
       n_src=st.sampled_from([1, 15, 16, 17, 100, 2500]), n_tgt=st.sampled_from([1, 3, 16, 17, 50]),
       density=st.sampled_from([0.001, 0.05, 0.3, 1.0]), rate=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       wmax=st.sampled_from([1, 127, 250, 1 << 20]), threads=st.sampled_from([1, 2]))
def test_spmm_equals_the_int64_product(seed, B, n_src, n_tgt, density, rate, wmax, threads):
    rng = np.random.default_rng(seed)
    m = sp.random(n_tgt, n_src, density=density, random_state=rng, format="csr", data_rvs=lambda k: rng.integers(-wmax, wmax + 1, k))
    m.data[m.data == 0] = -wmax  # explicit zeros would be fine too, but keep the density
    m = m.astype(np.int64)
    if np.abs(m).sum(1).max() * 1 >= 2**31:  # the engine only calls it where the row's L1 norm fits int32
        return
    s = torch.as_tensor(rng.random((B, n_src)) < rate).to(torch.int8)
    want = s.long() @ torch.as_tensor(m.toarray()).T
    assert torch.equal(_spmm(s, m, threads).long(), want)


def test_spmm_large_fan_in_and_sums_near_int32():
    rng = np.random.default_rng(7)
    n_src = 20_000
    w = rng.integers(1 << 15, 1 << 16, (3, n_src))  # every source into 3 targets: sums near 2^30, below 2^31
    w[1] *= -1
    m = sp.csr_matrix(w)
    s = torch.ones(40, n_src, dtype=torch.int8)
    s[::3] = 0
    want = s.long() @ torch.as_tensor(m.toarray()).T
    assert want.abs().max() > 2**28
    assert torch.equal(_spmm(s, m, 2).long(), want)


def _synapses(rng, n_in, n_out, exp, wmax, max_input, kind="dense", density=1.0, nonnegative=False):
    w = rng.integers(-wmax, wmax + 1, (n_out, n_in)) * (rng.random((n_out, n_in)) < density)
    w = np.where(w % 2, w - np.sign(w), w)  # even: Lava's 8-bit truncation keeps mixed-sign weights as they are
    if kind == "sparse":
        w[0, 0] = w[0, 0] or 2  # never all zero
        weight = sp.csr_matrix(w.astype(float))
    else:
        weight = w.astype(float)
    proj = Projection("p", "a", "b", kind, weight)
    return _Synapses(proj, SynapseFixed(w, exp), max_input=max_input, binary=kind == "sparse", nonnegative=nonnegative), w


def _plain_message(w, x, exp):
    """Lava's Dense: the int64 sum, floor-shifted by the exponent (no wrap within the engine's bounds)."""
    acc = torch.as_tensor(np.asarray(x, dtype=np.int64)) @ torch.as_tensor(w, dtype=torch.int64).T
    return acc << exp if exp >= 0 else acc >> -exp


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), B=st.sampled_from([1, 3, 4, 5, 33]), n_in=st.sampled_from([1, 2, 7, 20, 64]),
       n_out=st.sampled_from([1, 15, 16, 65, 300]), exp=st.integers(-9, 4), wmax=st.sampled_from([2, 250, 40_000]),
       dtype=st.sampled_from([torch.int64, torch.int32, torch.int16, torch.uint8]))
def test_graded_dense_kernel_equals_lavas_sum_and_shift(seed, B, n_in, n_out, exp, wmax, dtype):
    rng = np.random.default_rng(seed)
    xmax = 255 if dtype == torch.uint8 else int(rng.choice([255, 30_000, 1 << 20]))
    syn, w = _synapses(rng, n_in, n_out, exp, wmax, float(xmax))
    if not syn.no_wrap:
        return
    assert syn.dense32 is not None
    frames = torch.as_tensor(rng.integers(0 if dtype == torch.uint8 else -xmax, xmax + 1, (B, 3, n_in))).to(dtype)
    x = frames[:, 1]  # a strided slice, as simulate() hands over a step's input
    syn.accept(x)
    w = syn._eff.matrix().toarray()  # the integers Lava uses (its 8-bit truncation of large weights)
    got_x, got_e = tuple(syn.message())
    assert torch.equal(got_x.long() << got_e, _plain_message(w, x, exp))
    if syn.mm_dtype == torch.float64 or x.abs().max() < 2**24:  # floats: the float matmul, the same integers
        syn.accept(x.to(torch.float64))
        got_x, got_e = tuple(syn.message())
        assert torch.equal(got_x.long() << got_e, _plain_message(w, x, exp))


# ----------------------------------------------------------------------------- the fused step


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), B=st.sampled_from([1, 5, 32, 45]), n=st.sampled_from([17, 600, 600]),
       exps=st.tuples(st.integers(-6, 5), st.integers(-6, 5)), wmax=st.sampled_from([2, 250, 8000]),
       per_neuron=st.booleans(), du=st.sampled_from([4095, 4095, 0, 1000]), reset=st.sampled_from(["subtract", "zero"]),
       readout=st.booleans(), x_dtype=st.sampled_from([torch.int64, torch.int32]), xmax=st.sampled_from([255, 1 << 17]),
       unsigned=st.booleans())
def test_fused_lif_step_equals_the_step_on_materialised_messages(seed, B, n, exps, wmax, per_neuron, du, reset, readout,
                                                                 x_dtype, xmax, unsigned):
    """``unsigned``: 8-bit graded payloads (0 .. 255), the u8 × s8 kernel's input where the weights fit int8."""
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(1, 30))
    syn_in, _ = _synapses(rng, n_in, n, exps[0], wmax, float(xmax), nonnegative=unsigned)
    if not unsigned or xmax > 255:
        assert syn_in.dense8 is None
    elif wmax <= 250 and syn_in.no_wrap:  # even weights within ±250: int8 after their low zero bit
        assert syn_in.dense8 is not None
    syn_rec, _ = _synapses(rng, n, n, exps[1], wmax, 1.0, "sparse", density=float(rng.choice([0.01, SPMM_MAX_DENSITY / 2])))
    dense_msg = (torch.as_tensor(rng.integers(-(1 << 20), 1 << 20, (B, n))).to(torch.int32), int(rng.integers(0, 4)))
    vth = rng.integers(1, 3000, n) if per_neuron else int(rng.integers(1, 3000))
    dv = rng.integers(0, 4096, n) if per_neuron else int(rng.integers(0, 4096))
    q = NeuronFixed(vth=vth, bias_mant=rng.integers(-300, 300, n), bias_exp=int(rng.integers(0, 5)), du=du, dv=dv)
    pop = Population("h", (n,), "readout" if readout else "spiking", reset=reset)
    fused, plain = (_Neurons(pop, q, B, period=40) for _ in range(2))
    assert fused._lif_kernel is not None and not fused.fast
    for nrn in (fused, plain):
        nrn.reset()
    deferred = 0
    for step in range(6):
        x = torch.as_tensor(rng.integers(0 if unsigned else -xmax, xmax + 1, (B, 2, n_in))).to(x_dtype)[:, 0]
        s = torch.as_tensor(rng.random((B, n)) < rng.random()).to(torch.int8)
        msgs = []
        for syn, inp in ((syn_in, x), (syn_rec, s)):
            if syn.no_wrap:
                syn.accept(inp)
                msgs.append(syn.message())
        deferred += sum(isinstance(m, _Deferred) for m in msgs)
        msgs.append(dense_msg)
        got = fused.step(msgs, [False] * len(msgs))
        want = plain.step([tuple(m) for m in msgs], [False] * len(msgs))
        assert torch.equal(got, want), step
        assert torch.equal(fused.v, plain.v), step
        for a, b in zip(fused.state(), plain.state()):
            assert torch.equal(a.long().expand(B, n), b.long().expand(B, n)), step
        if fused.counts is not None:
            assert torch.equal(fused.counts, plain.counts)
    assert deferred or n < 600 or xmax > 255  # the 600-neuron sparse recurrence always runs inside the step


# ----------------------------------------------------------------------------- whole networks


def _pruned_network(rng, n_in, n, exps, graded, heterogeneous, density):
    """input → a sparse recurrent population (the kernels' case) → readout."""
    w_in = rng.integers(-40, 41, (n, n_in)) * 2
    w_rec = rng.integers(-120, 121, (n, n)) * 2 * (rng.random((n, n)) < density)
    w_rec[0, 1] = w_rec[0, 1] or -6
    w_out = rng.integers(-60, 61, (2, n)) * 2
    dv = rng.integers(0, 2000, n) if heterogeneous else 300
    vth = rng.integers(50, 400, n) if heterogeneous else 200
    return fixed_network(
        (Population("input", (n_in,), "input"), Population("h", (n,), "spiking"), Population("out", (2,), "readout")),
        (Projection("ih", "input", "h", "dense", w_in.astype(float)),
         Projection("hh", "h", "h", "sparse", sp.csr_matrix(w_rec.astype(float)), recurrent=True),
         Projection("ho", "h", "out", "dense", w_out.astype(float))),
        neurons={"h": NeuronFixed(vth=vth, bias_mant=rng.integers(-50, 50, n), bias_exp=2, dv=dv),
                 "out": NeuronFixed(vth=(1 << 17) - 1, bias_mant=np.zeros(2), bias_exp=0)},
        synapses={"ih": (w_in, exps[0]), "hh": (w_rec, exps[1]), "ho": (w_out, exps[2])},
        inputs="input", outputs="out",
    )


@settings(**{**SETTINGS, "max_examples": 15})
@given(seed=st.integers(0, 2**32 - 1), graded=st.booleans(), heterogeneous=st.booleans(),
       exps=st.tuples(st.integers(-4, 2), st.integers(-4, 3), st.integers(-4, 1)), B=st.sampled_from([1, 7, 40]),
       threads=st.sampled_from([1, 2]))
def test_networks_equal_lavas_rules_and_the_previous_engine(seed, graded, heterogeneous, exps, B, threads):
    rng = np.random.default_rng(seed)
    n_in, n, P = 6, 90, 9
    net = _pruned_network(rng, n_in, n, exps, graded, heterogeneous, density=0.04)
    frames = torch.as_tensor(rng.integers(0, 256, (B, P, n_in)) if graded else (rng.random((B, P, n_in)) < 0.4).astype(np.int8))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = simulate(net, frames, "fixed", record=True)
        with _kernels_off():
            was = simulate(net, frames, "fixed", record=True)
        with mock.patch.multiple(native, if_step=lambda: None, lif_step=lambda: None):  # Lava's rules in int64 torch ops
            rules = simulate(net, frames, "fixed", record=True)
    finally:
        torch.set_num_threads(old)
    if heterogeneous:  # (_plain takes one decay for all neurons)
        trains = rules.spike_trains
        state = {k: tuple(x.long() for x in rules.state[k]) for k in rules.state}
        readout = rules.readout.long()
    else:
        trains, state, readout = _plain(net, frames)
    for k, want in trains.items():
        assert torch.equal(got.spike_trains[k], want), k
        assert torch.equal(got.spike_trains[k], was.spike_trains[k]), k
        assert torch.equal(got.spike_counts[k].long(), want.sum(1).long()), k
    for k, (u, v) in state.items():
        assert torch.equal(got.state[k][0].long().expand_as(u), u.expand_as(got.state[k][0])), f"{k}: u"
        assert torch.equal(got.state[k][1].long(), v), f"{k}: v"
    assert torch.equal(got.readout.long(), readout)


@pytest.mark.parametrize("low_bits, exp, signs", [(0, -3, "positive"), (3, -2, "mixed"), (1, 2, "mixed"), (2, -9, "positive")])
def test_u8_kernel_folds_the_weights_low_bits_into_the_exponent(low_bits, exp, signs):
    """8-bit graded input through W = W' << k (W' odd: k = low_bits exactly) on the fused step's u8 × s8
    kernel equals the previous engine: Lava's floor shift by the exponent, n_in and n not multiples of 4 or 64."""
    rng = np.random.default_rng(low_bits)
    n_in, n, B, P = 23, 70, 37, 7
    w_in = (rng.integers(1 if signs == "positive" else -15, 16, (n, n_in)) | 1) << low_bits
    w_out = rng.integers(-60, 61, (2, n)) * 2
    net = fixed_network(
        (Population("input", (n_in,), "input"), Population("h", (n,), "spiking"), Population("out", (2,), "readout")),
        (Projection("ih", "input", "h", "dense", w_in.astype(float)), Projection("ho", "h", "out", "dense", w_out.astype(float))),
        neurons={"h": NeuronFixed(vth=rng.integers(50, 400, n), bias_mant=rng.integers(-50, 50, n), bias_exp=2, dv=300),
                 "out": NeuronFixed(vth=(1 << 17) - 1, bias_mant=np.zeros(2), bias_exp=0)},
        synapses={"ih": (w_in, exp), "ho": (w_out, 0)}, inputs="input", outputs="out",
    )
    syn = _Synapses(net.projection("ih"), net.synapse_fixed("ih"), 255.0, nonnegative=True)
    assert syn.dense8 is not None and syn.dense8[1] == low_bits
    frames = torch.as_tensor(rng.integers(0, 256, (B, P, n_in)))
    frames[:, :, 0] = 255  # the largest payload, on every step
    got = simulate(net, frames, "fixed", record=True)
    with _kernels_off():
        was = simulate(net, frames, "fixed", record=True)
    assert got.spike_trains["h"].any() and not got.spike_trains["h"].all()
    assert torch.equal(got.spike_trains["h"], was.spike_trains["h"])
    assert torch.equal(got.readout.long(), was.readout.long())
    assert torch.equal(got.state["h"][1], was.state["h"][1])


def test_state_read_after_the_run_does_not_see_the_callers_frames_change():
    """The graded input's deferred message reads the frames where they lie; u (du = 4095, one decay for all:
    rebuilt from the last step's messages when asked for) must not change when the caller reuses them."""
    rng = np.random.default_rng(5)
    net = _pruned_network(rng, 20, 300, (-1, 4, -3), True, False, density=0.02)
    frames = torch.as_tensor(rng.integers(0, 256, (9, 8, 20)))
    want = simulate(net, frames.clone(), "fixed").state["h"]
    got = simulate(net, frames, "fixed")
    frames.fill_(255)
    u, v = got.state["h"]
    assert u.abs().sum() > 0
    assert torch.equal(u.expand_as(want[0]), want[0].expand_as(u)) and torch.equal(v, want[1])


def test_the_kernels_run_where_they_pay_and_the_fallbacks_agree():
    rng = np.random.default_rng(3)
    net = _pruned_network(rng, 20, 300, (-1, 4, -3), True, True, density=0.02)
    frames = torch.as_tensor(rng.integers(0, 256, (33, 12, 20)))
    calls = []
    fused = native.lif_fused()

    def spy(*args):
        calls.append(args[9])  # n_inputs: the projections summed inside the step
        return fused(*args)

    with mock.patch.object(native, "lif_fused", lambda: spy), mock.patch.object(native, "run_blocks", lambda: None):
        got = simulate(net, frames, "fixed", record=True)  # the step loop (tests/test_sim_blocks.py: whole runs in blocks)
    assert calls and max(calls) == 2  # the graded input and the pruned recurrence, both inside the step
    for patch in (_kernels_off(), mock.patch.object(native, "lif_fused", lambda: None),
                  mock.patch.multiple(native, if_step=lambda: None, lif_step=lambda: None)):  # the torch/int64 paths
        with patch:
            was = simulate(net, frames, "fixed", record=True)
        for k in got.spike_trains:
            assert torch.equal(got.spike_trains[k], was.spike_trains[k]), k
        assert torch.equal(got.readout.long(), was.readout.long())
    # a denser recurrence (10 %) stays on the int8 GEMM: the sparse kernel would not pay there
    w = 2 * (rng.random((300, 300)) < 0.1).astype(np.int64)
    dense = _Synapses(Projection("d", "h", "h", "sparse", sp.csr_matrix(w.astype(float))), SynapseFixed(w, 0), binary=True)
    assert dense.spmm is None and dense.int8 is not None
    sparse = _Synapses(Projection("d", "h", "h", "sparse", sp.csr_matrix(w.astype(float) * (rng.random(w.shape) < 0.2))),
                       SynapseFixed(w * (rng.random(w.shape) < 0.2), 0), binary=True)
    assert sparse.spmm is not None
