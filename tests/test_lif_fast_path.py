"""The engine's LIF path (leaky and synaptic-current populations) equals Lava's plain fixed-point rules.

The fused C step (sim/native/lif_step.c) claims exactness for every parameter
and every input -- Lava's int32 wraps done as unsigned 32-bit arithmetic, the
decay product in int64 -- and the torch fallback claims exactness within the
bounds of ``_Neurons._lif_bounded`` (int32, no wrap), falling back to the
int64 rules outside them. Both are held here against ``fixed_point``'s rules
applied step by step (the same rules that tests/test_lava_stock.py holds
against stock Lava), on random networks and on raw neuron inputs chosen to
wrap and saturate.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings, strategies as st

from nc_testutils import fixed_network
from neurocompile.ir import Network, NeuronFixed, Population, Projection
from neurocompile.sim import native
from neurocompile.sim import fixed_point as fx
from neurocompile.sim.engine import _decay32, _Neurons, simulate

KERNELS = ["native", "torch"]
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # monkeypatch: same value every example
DU = st.sampled_from([4095, 4095, 0, 1, 100, 2048, 4094])
DV = st.sampled_from([512, 512, 0, 1, 100, 2048, 4095])


def _use(kernel: str, monkeypatch) -> None:
    if kernel == "torch":
        monkeypatch.setattr(native, "if_step", lambda: None)  # lif_step follows if_step, patched anyway
        monkeypatch.setattr(native, "lif_step", lambda: None)
    elif native.lif_step() is None:
        pytest.skip(f"no native kernel here: {native.status()}")


# ----------------------------------------------------------------------------- the plain rules


def _plain(net: Network, frames: torch.Tensor):
    """``simulate(net, frames, "fixed")`` by fixed_point's rules only: int64 u, v per population,
    every projection Lava's Dense (int32 sum wrapped, shifted, wrapped), one step of delay each,
    step 0 a reset. Returns (spike trains, final (u, v), readout v)."""
    B, P, _ = frames.shape
    pops = {p.name: p for p in net.neurons}
    qs = {k: net.neuron_fixed(k) for k in pops}
    u = {k: torch.zeros(B, p.size, dtype=torch.int64) for k, p in pops.items()}
    v = {k: torch.zeros_like(u[k]) for k in pops}
    bias = {k: torch.zeros(p.size, dtype=torch.int64) if p.kind == "readout" else fx.effective_bias(qs[k].bias_mant, qs[k].bias_exp)
            for k, p in pops.items()}
    sfs = {pr.name: net.synapse_fixed(pr.name) for pr in net.projections}
    weights = {k: torch.as_tensor(fx.lava_weights(np.asarray(sf.weight.toarray() if hasattr(sf.weight, "toarray") else sf.weight,
                                                             dtype=np.int64)), dtype=torch.int64) for k, sf in sfs.items()}
    buf = {pr.name: torch.zeros(B, pops[pr.target].size, dtype=torch.int64) for pr in net.projections}
    trains = {k: [] for k, p in pops.items() if p.kind != "readout"}
    for t in range(P):
        out = {net.input: frames[:, t].to(torch.int64)}
        for k, p in pops.items():
            if t == 0:
                u[k], v[k] = torch.zeros_like(u[k]), torch.zeros_like(v[k])
                s = torch.zeros_like(u[k], dtype=torch.bool)
            else:
                a_in = sum(buf[pr.name] for pr in net.projections if pr.target == k)
                u[k], v[k] = fx.lif_subthreshold(u[k], v[k], a_in, qs[k].du, qs[k].dv, bias[k])
                if p.kind == "readout":
                    s = torch.zeros_like(u[k], dtype=torch.bool)
                else:
                    vth = qs[k].vth << fx.VTH_SHIFT
                    s = v[k] > vth
                    v[k] = torch.where(s, v[k] - vth, v[k]) if p.reset == "subtract" else v[k].masked_fill(s, 0)
            out[k] = s
            if k in trains:
                trains[k].append(s)
        for pr in net.projections:
            buf[pr.name] = fx.wrap32(fx.shift(fx.wrap32(out[pr.source].to(torch.int64) @ weights[pr.name].T), sfs[pr.name].exp))
    return {k: torch.stack(s, 1) for k, s in trains.items()}, {k: (u[k], v[k]) for k in pops}, v[net.output]


def _assert_same(net: Network, frames: torch.Tensor) -> None:
    got = simulate(net, frames, "fixed", record=True)
    trains, state, readout = _plain(net, frames)
    for k, want in trains.items():
        assert torch.equal(got.spike_trains[k], want), k
        assert torch.equal(got.spike_counts[k].long(), want.sum(1).long()), k
    for k, (u, v) in state.items():
        assert torch.equal(got.state[k][0].long(), u), f"{k}: u"
        assert torch.equal(got.state[k][1].long(), v), f"{k}: v"
    assert torch.equal(got.readout.long(), readout)


# ----------------------------------------------------------------------------- random networks


def _network(rng, *, n_in, n, n2, q1, q2, q_out, wmax, exps, resets, sparse_rec, skip):
    def w(shape, density=1.0):
        return rng.integers(-wmax, wmax + 1, shape) * (rng.random(shape) < density)

    w_ih, w_hh, w_h2, w_i2, w_o = w((n, n_in)), w((n, n), 0.4), w((n2, n)), w((n2, n_in), 0.5), w((3, n2))
    synapses = {}

    def pr(name, s, t, m, e, kind="dense", recurrent=False):
        synapses[name] = (m, e)
        return Projection(name, s, t, kind, m.astype(float), recurrent=recurrent)

    projs = [pr("ih", "input", "h", w_ih, exps[0]), pr("hh", "h", "h", w_hh, exps[1], "sparse" if sparse_rec else "dense", recurrent=True),
             pr("h2", "h", "h2", w_h2, exps[2]), pr("o", "h2", "out", w_o, exps[3])]
    if skip:  # two messages into one population: one static under direct input, one not
        projs.append(pr("i2", "input", "h2", w_i2, exps[4]))
    return fixed_network(
        (Population("input", (n_in,), "input"), Population("h", (n,), "spiking", reset=resets[0]),
         Population("h2", (n2,), "spiking", reset=resets[1]), Population("out", (3,), "readout")),
        projs, neurons={"h": q1, "h2": q2, "out": q_out}, synapses=synapses, inputs="input", outputs="out",
    )


def _quant(draw, rng, n, du, dv):
    big = draw(st.booleans())  # a full int16 bias at a large exponent: v + u + bias wraps at 32 bits
    lim = 1 << 15 if big else 400
    return NeuronFixed(vth=draw(st.sampled_from([0, 1, 40, 300, 5000, (1 << 17) - 1])),
                       bias_mant=rng.integers(-lim, lim, n if draw(st.booleans()) else 1),  # one per neuron, or one for all
                       bias_exp=draw(st.integers(10, 16) if big else st.integers(0, 4)), du=du, dv=dv)


@st.composite
def networks(draw):
    seed = draw(st.integers(0, 10**6))
    rng = np.random.default_rng(seed)
    q1 = _quant(draw, rng, 7, draw(DU), draw(DV))
    q2 = _quant(draw, rng, 4, draw(DU), draw(DV))
    q_out = NeuronFixed(vth=1, bias_mant=np.zeros(1), bias_exp=0, du=draw(DU), dv=draw(DV))
    hot = draw(st.booleans())  # exponents that push a_in << 6 past 24 and 32 bits
    exps = [draw(st.integers(3, 7) if hot else st.integers(-8, 2)) for _ in range(5)]
    net = _network(rng, n_in=5, n=7, n2=4, q1=q1, q2=q2, q_out=q_out, wmax=draw(st.sampled_from([3, 60, 255])), exps=exps,
                   resets=[draw(st.sampled_from(["subtract", "zero"])) for _ in range(2)], sparse_rec=draw(st.booleans()),
                   skip=draw(st.booleans()))
    period = draw(st.sampled_from([2, 5, 13, 13, 140]))  # 140: spike counts past int8
    kind = draw(st.sampled_from(["binary", "static", "graded"]))
    if kind == "static":  # direct input: one graded frame repeated (a stride-0 view, as encode() makes it)
        frames = torch.as_tensor(rng.integers(0, 1 << draw(st.sampled_from([1, 8, 14])), (3, 1, 5))).expand(3, period, 5)
    elif kind == "graded":
        frames = torch.as_tensor(rng.integers(-(1 << 10), 1 << 10, (3, period, 5)))
    else:
        frames = torch.as_tensor(rng.integers(0, 2, (3, period, 5)))
    return net, frames


@settings(max_examples=120, **SETTINGS)
@given(case=networks())
@pytest.mark.parametrize("kernel", KERNELS)
def test_lif_path_equals_the_plain_rules_on_random_networks(kernel, monkeypatch, case):
    """Leaks, synaptic currents, biases (some wrapping v at 32 bits), recurrent and skip
    projections, hot exponents (u wraps at 24 bits, act at 32), saturation: spike trains,
    counts, final u and v and the readout all identical."""
    _use(kernel, monkeypatch)
    _assert_same(*case)


def test_the_leaky_recurrent_network_fires_wraps_and_runs_on_the_lif_path(monkeypatch):
    """A fixed case that is known to exercise the paths the property test samples at random."""
    rng = np.random.default_rng(3)
    q = NeuronFixed(vth=40, bias_mant=rng.integers(-400, 400, 7), bias_exp=2, du=100, dv=512)
    q2 = NeuronFixed(vth=5, bias_mant=np.array([-(1 << 15)]), bias_exp=16, du=4095, dv=1)
    net = _network(rng, n_in=5, n=7, n2=4, q1=q, q2=q2, q_out=NeuronFixed(vth=1, bias_mant=np.zeros(1), bias_exp=0, dv=2048),
                   wmax=255, exps=[7, 6, 7, 0, 7], resets=["subtract", "zero"], sparse_rec=True, skip=True)
    frames = torch.as_tensor(rng.integers(0, 1 << 12, (3, 1, 5))).expand(3, 20, 5)
    calls = []
    for kernel in KERNELS:
        with monkeypatch.context() as m:
            _use(kernel, m)
            for name in ("_lif_native_step", "_step"):
                f = getattr(_Neurons, name)
                m.setattr(_Neurons, name, lambda self, *a, _f=f, _n=name: calls.append((kernel, _n)) or _f(self, *a))
            _assert_same(net, frames)
    assert ("native", "_lif_native_step") in calls or native.lif_step() is None
    assert ("torch", "_step") in calls  # these inputs wrap: the torch fallback leaves int32 for the int64 rules
    got = simulate(net, frames, "fixed")
    assert 0 < int(got.spike_counts["h"].sum()) < 3 * 19 * 7


# ----------------------------------------------------------------------------- raw neuron inputs


@settings(max_examples=150, **SETTINGS)
@example(du=4095, dv=512, vth=0, bias_mant=-(1 << 15), bias_exp=16, reset="subtract", amp=31, exps=[25, 0], int64_msg=False, readout=False,
         seed=0)  # alpha = 2^31: the scale itself wraps
@example(du=0, dv=4095, vth=(1 << 17) - 1, bias_mant=(1 << 15) - 1, bias_exp=16, reset="zero", amp=31, exps=[0, 7], int64_msg=True,
         readout=False, seed=1)
@given(du=DU, dv=DV, vth=st.sampled_from([0, 3, 400, (1 << 17) - 1]), bias_mant=st.integers(-(1 << 15), (1 << 15) - 1),
       bias_exp=st.integers(0, 16), reset=st.sampled_from(["subtract", "zero"]), amp=st.sampled_from([4, 10, 17, 24, 31]),
       exps=st.lists(st.integers(0, 26), min_size=1, max_size=3), int64_msg=st.booleans(), readout=st.booleans(), seed=st.integers(0, 10**6))
@pytest.mark.parametrize("kernel", KERNELS)
def test_lif_neurons_equal_the_rules_on_any_int32_input(kernel, monkeypatch, du, dv, vth, bias_mant, bias_exp, reset, amp, exps,
                                                         int64_msg, readout, seed):
    """Messages anywhere in int32 (scaled by 2^e, e up to 26: act wraps, u wraps at 24 bits,
    v + u + bias wraps at 32 and clips), int64-held messages, readouts: the neuron step of
    each kernel gives Lava's spikes, u and v at every step."""
    _use(kernel, monkeypatch)
    rng = np.random.default_rng(seed)
    B, n, steps = 3, 9, 12
    q = NeuronFixed(vth=vth, bias_mant=np.full(n, bias_mant), bias_exp=bias_exp, du=du, dv=dv)
    pop = Population("h", (n,), "readout" if readout else "spiking", reset=reset)
    bound = float(len(exps) << amp)  # |a_in|: each x << e within ±2^amp
    nrn = _Neurons(pop, q, B, in_bound=bound, period=steps + 1)
    nrn.reset()
    u = v = torch.zeros(B, n, dtype=torch.int64)
    bias = torch.zeros(n, dtype=torch.int64) if readout else fx.effective_bias(q.bias_mant, q.bias_exp)
    dtype = torch.int64 if int64_msg or nrn.v.dtype == torch.int64 else torch.int32
    count = torch.zeros(B, n, dtype=torch.int64)
    for _ in range(steps):
        lim = 1 << amp
        xs = [torch.div(torch.as_tensor(rng.integers(-lim, lim, (B, n))), 1 << e, rounding_mode="trunc") for e in exps]  # |x << e| < 2^amp
        got_s = nrn.step([(x.to(dtype), e) for x, e in zip(xs, exps)])
        a_in = sum(x << e for x, e in zip(xs, exps))
        u, v = fx.lif_subthreshold(u, v, a_in, du, dv, bias)
        s = torch.zeros_like(v, dtype=torch.bool) if readout else v > vth << 6
        v = torch.where(s, v - (vth << 6), v) if reset == "subtract" else v.masked_fill(s, 0)
        count += s
        assert torch.equal(got_s.bool(), s)
        got_u, got_v = nrn.state()
        assert torch.equal(got_u.long(), u) and torch.equal(got_v.long(), v)
    if not readout:
        assert torch.equal(nrn.counts.long(), count)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("du,dv", [(4095, 512), (100, 512), (0, 1), (2048, 0)])
def test_lif_neurons_use_their_fast_path_when_bounded(kernel, monkeypatch, du, dv):
    """Bounded inputs (the converted and bench networks) never reach the int64 rules, with either kernel."""
    _use(kernel, monkeypatch)
    q = NeuronFixed(vth=400, bias_mant=np.array([3]), bias_exp=2, du=du, dv=dv)
    nrn = _Neurons(Population("h", (4,), "spiking"), q, 2, in_bound=20.0, period=33)
    assert nrn.lif and not nrn.fast and nrn.v.dtype == torch.int32 and nrn.counts.dtype == torch.int8


@given(x=st.integers(-(1 << 31), (1 << 31) - 1), f=st.integers(0, 4096))
@example(x=-(1 << 31), f=4096)
@example(x=(1 << 31) - 1, f=4095)
@example(x=-4097, f=4095)
def test_decay32_is_lavas_decay(x, f):
    """float64 holds x·f (< 2^43) exactly, and float → int truncates toward zero, as Lava does."""
    t = torch.tensor([x, -x if x > -(1 << 31) else 0, x // 3], dtype=torch.int64)
    assert torch.equal(_decay32(t.to(torch.int32), f).long(), fx.decay(t, f))
