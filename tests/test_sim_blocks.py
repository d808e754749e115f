"""Whole runs in blocks (sim/native/lif_step.c, ``nc_run_blocks``) equal the engine's step loop.

``simulate`` runs a periodic network in one native call -- a block of 32 samples through every step
-- where every population is on the C LIF step and every projection on its kernels (sparse spikes,
few-channel graded frames, binary projections into few neurons). Held here against the step loop
(the fused step, and the int8 GEMM / float matmul with the native synapse kernels off) on random
networks: several populations with cycles between them, integrate-and-fire and leaky, per-neuron
and shared parameters, decaying synaptic currents, both resets, readouts of every width the few-target
kernel tiles, graded and binary frames, batch and period remainders, int32 spike counters (P > 128).
"""
from __future__ import annotations

import contextlib
from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from nc_testutils import fixed_network
from neurocompile.ir import NeuronFixed, Population, Projection
from neurocompile.sim import native
from neurocompile.sim.engine import simulate

pytestmark = pytest.mark.skipif(native.run_blocks() is None, reason=f"no native kernels here ({native.status()})")
SETTINGS = dict(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow])


def _neurons(rng, n: int, leaky: bool, per_neuron: bool, du: int) -> NeuronFixed:
    pick = lambda lo, hi: rng.integers(lo, hi, n) if per_neuron else int(rng.integers(lo, hi))  # noqa: E731
    return NeuronFixed(vth=pick(20, 400), bias_mant=rng.integers(-40, 60, n), bias_exp=int(rng.integers(0, 3)),
                       du=du, dv=pick(1, 3000) if leaky else 0)


def _network(rng, n_in: int, n1: int, n2: int, n_out: int, binary_in: bool, leaky: bool, per_neuron: bool, du: int,
             reset: str):
    """input → h1 ⇄ h2 (sparse, h1 recurrent) → out (dense from both: the few-target kernel)."""
    even = lambda a: (a // 2) * 2  # noqa: E731 -- mixed-sign Lava weights are even
    sparse = lambda r, c, d, lo, hi: even(rng.integers(lo, hi, (r, c))) * (rng.random((r, c)) < d)  # noqa: E731
    w_in = sparse(n1, n_in, 0.03, -200, 250) if binary_in else even(rng.integers(-80, 120, (n1, n_in)))
    w = {"ih": w_in, "h1h1": sparse(n1, n1, 0.04, -240, 200), "h1h2": sparse(n2, n1, 0.05, -100, 250),
         "h2h1": sparse(n1, n2, 0.05, -250, 100), "h1o": even(rng.integers(-120, 120, (n_out, n1))),
         "h2o": even(rng.integers(-120, 120, (n_out, n2)))}
    for m in w.values():  # never an all-zero matrix
        m[0, 0] = m[0, 0] or 2
    dense = ("h1o", "h2o") + (() if binary_in else ("ih",))
    ends = {"ih": ("input", "h1"), "h1h1": ("h1", "h1"), "h1h2": ("h1", "h2"), "h2h1": ("h2", "h1"), "h1o": ("h1", "out"),
            "h2o": ("h2", "out")}
    projections = tuple(Projection(k, *ends[k], "dense", m.astype(float)) if k in dense else
                        Projection(k, *ends[k], "sparse", sp.csr_matrix(m.astype(float)), recurrent=k in ("h1h1", "h2h1"))
                        for k, m in w.items())
    exps = {k: int(rng.integers(-3, 3)) for k in w}
    return fixed_network(
        (Population("input", (n_in,), "input"), Population("h1", (n1,), "spiking", reset=reset),
         Population("h2", (n2,), "spiking", reset=reset), Population("out", (n_out,), "readout")),
        projections,
        neurons={"h1": _neurons(rng, n1, leaky, per_neuron, du), "h2": _neurons(rng, n2, leaky, False, 4095),
                 "out": NeuronFixed(vth=(1 << 17) - 1, bias_mant=np.zeros(n_out), bias_exp=0, dv=int(rng.integers(0, 200)))},
        synapses={k: (np.asarray(m, dtype=np.int64), exps[k]) for k, m in w.items()},
        inputs="input", outputs="out",
    )


def _run(net, frames, blocks: bool, kernels: bool = True):
    """simulate() with record=True: in blocks, or on the step loop (``kernels``: its native synapse kernels)."""
    calls = []
    real = native.run_blocks()

    def spy(*args):
        calls.append(args)
        return real(*args)

    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(native, "run_blocks", (lambda: spy) if blocks else (lambda: None)))
        if not kernels:
            patches.enter_context(mock.patch.multiple(native, spmm_step=lambda: None, dense_step=lambda: None, lif_fused=lambda: None))
        return simulate(net, frames, "fixed", record=True), len(calls)


def _assert_same(got, want, net):
    for k in want.spike_trains:
        assert torch.equal(got.spike_trains[k], want.spike_trains[k]), k
        assert got.spike_counts[k].dtype == want.spike_counts[k].dtype and torch.equal(got.spike_counts[k], want.spike_counts[k]), k
    assert set(got.spike_trains) == set(want.spike_trains)
    assert torch.equal(got.readout.long(), want.readout.long())
    for p in net.neurons:
        (gu, gv), (wu, wv) = got.state[p.name], want.state[p.name]
        assert torch.equal(gu.long().expand_as(wv), wu.long().expand_as(wv)), f"{p.name}: u"
        assert torch.equal(gv.long(), wv.long()), f"{p.name}: v"


@settings(**SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), B=st.sampled_from([1, 31, 33, 70]), P=st.sampled_from([1, 2, 9, 40]),
       n_out=st.sampled_from([1, 10, 16, 17, 40]), binary_in=st.booleans(), leaky=st.booleans(), per_neuron=st.booleans(),
       du=st.sampled_from([4095, 4095, 3000]), reset=st.sampled_from(["subtract", "zero"]),
       frames_dtype=st.sampled_from([torch.int64, torch.int32]), threads=st.sampled_from([1, 2]))
def test_blocks_equal_the_step_loop(seed, B, P, n_out, binary_in, leaky, per_neuron, du, reset, frames_dtype, threads):
    rng = np.random.default_rng(seed)
    net = _network(rng, 12, 150, 70, n_out, binary_in, leaky, per_neuron, du, reset)
    frames = torch.as_tensor(rng.random((B, P, 12)) < 0.3).to(torch.int8) if binary_in else \
        torch.as_tensor(rng.integers(0, 256, (B, P, 12))).to(frames_dtype)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got, calls = _run(net, frames, blocks=True)
        want, _ = _run(net, frames, blocks=False)
        was, _ = _run(net, frames, blocks=False, kernels=False)
    finally:
        torch.set_num_threads(old)
    assert calls == (not bool((frames == frames[:, :1]).all()))  # one native call, unless the input is static (direct)
    if P > 2 and B > 1 and not binary_in:  # graded 8-bit drive: the network does something
        assert 0 < sum(int(c.sum()) for c in got.spike_counts.values()) < B * P * 220  # neither silent nor saturated
    _assert_same(got, want, net)
    _assert_same(got, was, net)


def test_blocks_count_in_int32_past_127_steps_and_fall_back_where_they_do_not_apply():
    """(The pipelined schedule and readout steps take the step loop too: see simulate.)"""
    rng = np.random.default_rng(4)
    net = _network(rng, 12, 150, 70, 10, False, True, True, 4095, "subtract")
    frames = torch.as_tensor(rng.integers(0, 256, (9, 140, 12)))
    got, calls = _run(net, frames, blocks=True)
    want, _ = _run(net, frames, blocks=False)
    assert calls == 1 and got.spike_counts["h1"].max() > 127
    _assert_same(got, want, net)
    # a signed graded input (no u8 payloads: the int16/int32 kernels), then cases the blocks do not run
    signed = torch.as_tensor(rng.integers(-500, 500, (9, 6, 12)))
    got, calls = _run(net, signed, blocks=True)
    assert calls == 1
    _assert_same(got, _run(net, signed, blocks=False)[0], net)
    for f in (frames[:, :6].to(torch.float32), frames[:, :1].expand(9, 6, 12)):  # float frames; direct (static) input
        got, calls = _run(net, f, blocks=True)
        assert calls == 0
        _assert_same(got, _run(net, f, blocks=False, kernels=False)[0], net)
