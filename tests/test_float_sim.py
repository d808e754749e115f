"""The float simulator (sim/float_sim.py): the engine's former float arithmetic, trainable.

Inference must equal the float mode the engine had (kept in this file as
``_engine_float``, a transcription of it, so the comparison outlives its removal
from sim/engine.py): same spikes, same readouts, bit for bit. Gradients must be
the derivatives of what the forward computes (finite differences, float64).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from neurocompile.errors import NeurocompileError
from neurocompile.ir import ConvSpec, Network, Population, Projection, RunSettings
from neurocompile.sim.encoding import encode
from neurocompile.sim.float_sim import FastSigmoid, FloatSimulator, SpikeFunction, StraightThrough
from neurocompile.sim.ops import project, weight_tensor


def _engine_float(net: Network, frames: torch.Tensor, dtype: torch.dtype = torch.float32, readout_steps=()):
    """The float mode of sim/engine.py as it was (commit 9be9a7d), loop for loop.

    Every population steps on the previous step's messages in population order,
    then every projection takes its source's output; step 0 resets.
    """
    B, P, _ = frames.shape
    pops = net.neurons
    w = {pr.name: weight_tensor(pr, dtype) for pr in net.projections}
    msg: dict[str, torch.Tensor] = {}
    zero = {p.name: torch.zeros(B, p.size, dtype=dtype) for p in pops}
    u, v = dict(zero), dict(zero)
    counts = {p.name: torch.zeros(B, p.size, dtype=dtype) for p in pops if p.kind != "readout"}
    trains = {name: [] for name in counts}
    at = {}
    for t in range(P):
        out = {net.input: frames[:, t]}
        for p in pops:
            if t == 0:
                s = zero[p.name]
            else:
                a_in = functools.reduce(torch.add, [msg[pr.name] for pr in net.projections if pr.target == p.name])
                keep_u, keep = 1.0 - p.current_decay, 1.0 - p.leak
                bias = torch.zeros(p.size, dtype=dtype) if p.kind == "readout" else torch.as_tensor(
                    p.bias if p.bias is not None else 0.0, dtype=dtype).expand(p.size)
                u[p.name] = a_in if keep_u == 0 else u[p.name] * keep_u + a_in
                v[p.name] = v[p.name] * keep + u[p.name] + bias
                if p.kind == "readout":
                    s = zero[p.name]
                else:
                    s = (v[p.name] - p.threshold > 0).to(dtype)
                    v[p.name] = v[p.name] - s * p.threshold if p.reset == "subtract" else v[p.name] * (1 - s)
                    counts[p.name] += s
            out[p.name] = s
            if p.name in trains:
                trains[p.name].append(s.bool())
        for pr in net.projections:
            msg[pr.name] = project(pr, w[pr.name], out[pr.source])
        if t in readout_steps:
            at[t] = v[net.output].clone()
    return v[net.output], counts, {k: torch.stack(s, 1) for k, s in trains.items()}, at


def random_net(seed: int, reset: str = "subtract", dynamics: bool = True, recurrent: bool = True, T: int = 6) -> Network:
    """Conv (strided, padded, grouped), dense, sparse, skip and recurrent projections; leaks and decays.

    Leaks and current decays are dyadic, so ``1 - leak`` is exact in float32 and
    float64 alike (the engine rounded the double ``1 - leak`` to float32 once;
    the simulator subtracts the float32 parameter: both equal only then).
    """
    rng = np.random.default_rng(seed)

    def pop(name, shape, kind="spiking"):
        n = int(np.prod(shape))
        return Population(
            name, shape, kind, threshold=float(rng.uniform(0.5, 1.5)), bias=rng.normal(0, 0.1, n),
            leak=float(rng.choice([0.0, 0.125, 0.25])) if dynamics else 0.0,
            current_decay=float(rng.choice([1.0, 0.5, 0.75])) if dynamics else 1.0,
            reset=reset if kind == "spiking" else "subtract",
        )

    def sparse(n_out, n_in, scale, density=0.3):
        m = sp.random(n_out, n_in, density=density, random_state=rng, data_rvs=lambda k: rng.normal(0, scale, k))
        return sp.csr_matrix(m)

    pops = (Population("in", (1, 6, 6), "input"), pop("c", (4, 4, 4)), pop("c2", (4, 2, 2)), pop("h", (12,)), pop("o", (5,), "readout"))
    projs = [
        Projection("in->c", "in", "c", "conv", rng.normal(0.15, 0.4, (4, 1, 3, 3)), conv=ConvSpec((1, 6, 6), (4, 4, 4))),
        Projection("c->c2", "c", "c2", "conv", rng.normal(0.2, 0.5, (4, 2, 3, 3)),
                   conv=ConvSpec((4, 4, 4), (4, 2, 2), stride=(2, 2), padding=(1, 1), groups=2)),
        Projection("c2->h", "c2", "h", "dense", rng.normal(0.1, 0.5, (12, 16))),
        Projection("in->h", "in", "h", "sparse", sparse(12, 36, 0.3)),  # skip
        Projection("c->o", "c", "o", "sparse", sparse(5, 64, 0.3)),  # skip
        Projection("h->o", "h", "o", "dense", rng.normal(0, 0.5, (5, 12))),
    ]
    if recurrent:
        projs += [
            Projection("h->h", "h", "h", "dense", rng.normal(0, 0.3, (12, 12)), recurrent=True),  # onto itself
            Projection("h->c", "h", "c", "sparse", sparse(64, 12, 0.3), recurrent=True),  # onto an earlier population
        ]
    net = Network(pops, tuple(projs), ("in",), ("o",), RunSettings(timesteps=T, encoding="direct"))
    net.validate()
    return net


def _frames(net: Network, encoding: str, batch: int = 7, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    x = np.random.default_rng(seed + 100).uniform(0, 1, (batch, 36))
    return encode(x, encoding, int(net.settings.timesteps) + net.depth(), fixed=False, seed=seed).to(dtype)


CASES = [(seed, reset, enc, dyn, rec) for seed, (reset, enc, dyn, rec) in enumerate(
    [(r, e, d, c) for r in ("subtract", "zero") for e in ("direct", "rate") for d in (True, False) for c in (True, False)])]


@pytest.mark.parametrize("seed,reset,encoding,dynamics,recurrent", CASES)
def test_float_sim_equals_the_engines_float_mode(seed, reset, encoding, dynamics, recurrent):
    net = random_net(seed, reset, dynamics, recurrent)
    frames = _frames(net, encoding, seed=seed)
    P = frames.shape[1]
    steps = (0, 3, P - 1)
    readout, counts, trains, at = _engine_float(net, frames, readout_steps=steps)
    sim = FloatSimulator(net, trainable={"weight", "threshold", "leak", "current_decay", "bias"})
    got = sim(frames, record=True, readout_steps=steps)  # with gradients on: the same forward
    assert torch.equal(got.readout, readout)
    assert set(got.spike_counts) == set(counts) == {"c", "c2", "h"}
    for k in counts:
        assert torch.equal(got.spike_counts[k], counts[k]), k
        assert torch.equal(got.spike_trains[k], trains[k]), k
    for t in steps:
        assert torch.equal(got.readouts_at[t], at[t]), t
    # a meaningful comparison: every layer fires, but not on every step
    for k, c in counts.items():
        assert 0 < float(c.sum()) < c.numel() * (P - 1), k


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_float64_and_no_grad_give_the_same_as_the_engine(encoding):
    net = random_net(3, "zero")
    frames = _frames(net, encoding, dtype=torch.float64)
    readout, counts, _, _ = _engine_float(net, frames, torch.float64)
    with torch.no_grad():
        got = FloatSimulator(net, dtype=torch.float64)(frames)
    assert got.readout.dtype == torch.float64
    assert torch.equal(got.readout, readout)
    assert all(torch.equal(got.spike_counts[k], counts[k]) for k in counts)


def test_stepping_by_hand_equals_forward_and_exposes_the_state():
    net = random_net(1)
    frames = _frames(net, "rate")
    sim = FloatSimulator(net)
    with torch.no_grad():
        whole = sim(frames, record=True)
        sim.reset(frames.shape[0])
        for t in range(frames.shape[1]):
            out = sim.step(frames[:, t])
            assert set(out.spikes) == {"c", "c2", "h"}
            for k, s in out.spikes.items():
                assert torch.equal(s.bool(), whole.spike_trains[k][:, t])
                last = sim.state[k].last_spike
                # the last-spike time is this step where a neuron fired, earlier (or -inf) elsewhere
                assert torch.all(last[s.bool()] == t) and torch.all(last[~s.bool()] < t)
        assert sim.t == frames.shape[1]
    assert torch.equal(out.readout, whole.readout)
    assert torch.equal(sim.state["o"].v, whole.readout)
    for k in ("c", "c2", "h"):
        assert torch.equal(sim.state[k].v, whole.state[k].v) and torch.equal(sim.state[k].u, whole.state[k].u)
        # forward() finds the last-spike times after the period instead of stepping them: the same
        assert torch.equal(sim.state[k].last_spike, whole.state[k].last_spike), k
    # never-fired neurons exist and carry -inf (the time since their last spike is infinite)
    assert torch.isinf(sim.state["h"].last_spike).any() or torch.isinf(sim.state["c2"].last_spike).any()


def test_reset_drops_messages_in_flight_and_a_second_period_repeats_the_first():
    net = random_net(2)
    frames = _frames(net, "direct")
    sim = FloatSimulator(net)
    with torch.no_grad():
        a = sim(frames)
        sim.reset(frames.shape[0])
        for t in range(frames.shape[1]):
            sim.step(frames[:, t])
        sim.reset(frames.shape[0])  # h->h and h->c had messages in flight
        for t in range(frames.shape[1]):
            out = sim.step(frames[:, t])
    assert torch.equal(out.readout, a.readout)


def test_parameters_are_parameters_and_only_the_chosen_ones_train():
    net = random_net(0)
    sim = FloatSimulator(net, trainable={"weight", "threshold", "leak"})
    names = dict(sim.named_parameters())
    assert all(isinstance(p, torch.nn.Parameter) for p in names.values())
    grads = {k for k, p in names.items() if p.requires_grad}
    assert grads and all(k.endswith((".weight", ".threshold", ".leak")) for k in grads)
    assert not any(k.endswith((".bias", ".current_decay")) for k in grads)
    # IR scalars become one value per neuron
    assert sim.neuron_params("c").threshold.shape == (64,) and sim.neuron_params("h").leak.shape == (12,)
    assert sim.synapse_params("in->h").weight.shape == (net.projections[3].weight.nnz,)
    frames = _frames(net, "rate")
    r = sim(frames)
    (r.readout.sum() + sum(c.sum() for c in r.spike_counts.values())).backward()
    for k in grads:
        assert names[k].grad is not None and names[k].grad.abs().sum() > 0, k
    with pytest.raises(NeurocompileError, match="unknown trainable"):
        FloatSimulator(net, trainable={"weights"})


def test_a_few_optimiser_steps_reduce_a_loss():
    """Trainable through: Adam on weights and thresholds moves the readout towards a target."""
    torch.manual_seed(0)
    net = random_net(4, recurrent=False)
    frames = _frames(net, "direct", batch=16)
    sim = FloatSimulator(net, trainable={"weight", "threshold"}, spike_fn=FastSigmoid(slope=5.0))
    target = torch.randn(16, 5)
    opt = torch.optim.Adam(sim.parameters(), lr=0.02)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(sim.logits(sim(frames).readout), target)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("fn", [FastSigmoid(slope=4.0), FastSigmoid(slope=3.0, normalize=False), StraightThrough(),
                                StraightThrough(window=0.5)])
def test_surrogates_are_heaviside_forward_and_their_derivative_backward(fn):
    v = torch.linspace(-2, 3, 41, dtype=torch.float64).reshape(1, -1).requires_grad_()
    th = torch.full((41,), 0.8, dtype=torch.float64, requires_grad=True)
    s = fn(v, th, torch.full_like(v, math.inf))
    assert torch.equal(s, (v > th).double())
    s.sum().backward()
    width = 0.8 if fn.normalize else 1.0
    z = (v.detach() - 0.8) / width
    want = fn.derivative(z, None) / width
    assert torch.allclose(v.grad, want) and torch.allclose(th.grad, -want[0])
    if isinstance(fn, FastSigmoid):
        assert torch.allclose(want, 1 / (1 + fn.slope * z.abs()) ** 2 / width)


class SoftSpike(SpikeFunction):
    """A smooth spike (sigmoid forward too): the forward is then differentiable, so finite differences can check autograd."""

    uses_spike_time = True

    def __init__(self, k: float) -> None:
        self.k = k

    def __call__(self, v, threshold, since_spike):
        assert since_spike.shape == v.shape  # the state hands each neuron's time since its last spike to the spike function
        return torch.sigmoid(self.k * (v - threshold))


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_gradients_equal_finite_differences(reset):
    """float64, smooth spikes, a loss of the readout and (through the spikes) the spike counts.

    For the weights of every projection kind (conv, strided grouped conv, dense,
    sparse, recurrent), thresholds, leaks, a current decay and a bias, the element
    with the largest gradient: autograd against central differences. Hard spikes
    have a zero derivative almost everywhere, so only a smooth forward can be
    checked this way; the surrogate's backward is checked on its own above.
    """
    net = random_net(6, reset)
    frames = _frames(net, "rate", batch=3, dtype=torch.float64)
    sim = FloatSimulator(net, trainable={"weight", "threshold", "leak", "current_decay", "bias"}, spike_fn=SoftSpike(4.0),
                         dtype=torch.float64)
    c = torch.linspace(-1, 1, 5, dtype=torch.float64)

    def loss() -> torch.Tensor:
        r = sim(frames)
        return (torch.tanh(r.readout) * c).sum() + 0.01 * sum((cnt ** 2).mean() for cnt in r.spike_counts.values())

    params = [
        sim.synapse_params("in->c").weight,  # conv
        sim.synapse_params("c->c2").weight,  # strided, padded, grouped conv
        sim.synapse_params("c2->h").weight,  # dense
        sim.synapse_params("in->h").weight,  # sparse skip
        sim.synapse_params("h->h").weight,  # recurrent onto itself
        sim.synapse_params("h->c").weight,  # recurrent onto an earlier population
        sim.neuron_params("h").threshold,
        sim.neuron_params("c").threshold,
        sim.neuron_params("h").leak,
        sim.neuron_params("o").leak,
        sim.neuron_params("c2").current_decay,
        sim.neuron_params("h").bias,
    ]
    sim.zero_grad()
    loss().backward()
    eps = 1e-6
    for p in params:
        idx = np.unravel_index(int(p.grad.abs().argmax()), p.shape)  # the element that matters most
        auto = float(p.grad[idx])
        with torch.no_grad():
            p[idx] += eps
            up = float(loss())
            p[idx] -= 2 * eps
            down = float(loss())
            p[idx] += eps
        fd = (up - down) / (2 * eps)
        assert abs(fd) > 1e-3, idx  # the parameter matters, so the check can fail
        assert abs(auto - fd) <= 1e-6 * abs(fd) + 1e-8, (idx, auto, fd)


# -- pool-composed kernels trained factorised -----------------------------------


def pooled_net(seed: int = 0, T: int = 6) -> Network:
    """in (2, 8, 8) → c (4, 5, 5) through a 4×4 stride-2 padded kernel constant on 2×2 blocks (AvgPool2 + Conv2 composed) → o."""
    rng = np.random.default_rng(seed)
    block = rng.normal(0.3, 0.5, (4, 2, 2, 2))
    kernel = block.repeat(2, 2).repeat(2, 3)
    pops = (Population("in", (2, 8, 8), "input"),
            Population("c", (4, 5, 5), "spiking", threshold=1.0, bias=rng.normal(0, 0.1, 100), leak=0.125, current_decay=0.5),
            Population("o", (5,), "readout", threshold=1.0, bias=rng.normal(0, 0.1, 5)))
    projs = (Projection("in->c", "in", "c", "conv", kernel, conv=ConvSpec((2, 8, 8), (4, 5, 5), stride=(2, 2), padding=(2, 2))),
             Projection("c->o", "c", "o", "dense", rng.normal(0, 0.4, (5, 100))))
    net = Network(pops, projs, ("in",), ("o",), RunSettings(timesteps=T, encoding="rate"))
    net.validate()
    return net


def _pooled_frames(net: Network, batch: int = 5, dtype=torch.float32) -> torch.Tensor:
    x = np.random.default_rng(7).uniform(0, 1, (batch, 128))
    return encode(x, "rate", int(net.settings.timesteps) + net.depth(), fixed=False, seed=1).to(dtype)


def test_a_pool_composed_kernel_is_parametrised_by_its_block_kernel():
    net = pooled_net()
    sim = FloatSimulator(net, trainable={"weight"})
    syn = sim.synapse_params("in->c")
    assert syn.block == (2, 2) and syn.weight.shape == (4, 2, 2, 2)
    assert torch.equal(syn.full_weight(), torch.as_tensor(net.projections[0].weight, dtype=torch.float32))
    assert sim.synapse_params("c->o").block is None and sim.synapse_params("c->o").full_weight() is sim.synapse_params("c->o").weight
    full = FloatSimulator(net, trainable={"weight"}, factorise_pooled=False).synapse_params("in->c")
    assert full.block is None and full.weight.shape == (4, 2, 4, 4)
    # training runs what inference ran (sum pool + block kernel): the same spikes and readout, bit for bit
    frames = _pooled_frames(net)
    trained = sim(frames, record=True)
    with torch.no_grad():
        ref = FloatSimulator(net, factorise_pooled=False)(frames, record=True)
    assert torch.equal(trained.readout, ref.readout) and torch.equal(trained.spike_trains["c"], ref.spike_trains["c"])
    # ... and both are the network's own 4x4 kernel up to float rounding (the full kernel runs as one conv2d when trained)
    plain = FloatSimulator(net, trainable={"weight"}, factorise_pooled=False)(frames)
    torch.testing.assert_close(trained.readout, plain.readout.detach(), rtol=1e-5, atol=1e-5)
    assert 0 < float(ref.spike_counts["c"].sum()) < ref.spike_counts["c"].numel() * (frames.shape[1] - 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,d", [((3, 2, 8, 8), (2, 2)), ((2, 3, 9, 7), (3, 3)), ((2, 1, 6, 5), (2, 1)), ((1, 2, 7, 9), (2, 4))])
def test_the_sum_pool_is_avg_pool_with_divisor_one_forward_and_backward(shape, d, dtype):
    from neurocompile.sim.float_sim import _SumPool

    x = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(0)).requires_grad_()
    got = _SumPool.apply(x, d)
    want = torch.nn.functional.avg_pool2d(x, d, d, divisor_override=1)
    assert torch.equal(got, want)  # the same sums in the same order
    g = torch.randn(want.shape, dtype=dtype)
    (gx,) = torch.autograd.grad(got, x, g)
    (wx,) = torch.autograd.grad(want, x, g)
    assert torch.equal(gx, wx)


def _pooled_loss(sim: FloatSimulator, frames: torch.Tensor) -> torch.Tensor:
    r = sim(frames)
    c = torch.linspace(-1, 1, 5, dtype=frames.dtype)
    return (torch.tanh(r.readout) * c).sum() + 0.01 * (r.spike_counts["c"] ** 2).mean()


def test_the_block_kernels_gradient_is_the_full_kernels_summed_over_each_block():
    """float64, smooth spikes: autograd through sum pool + block kernel equals autograd through the full kernel, block-summed."""
    net = pooled_net(1)
    frames = _pooled_frames(net, dtype=torch.float64)
    kw = dict(trainable={"weight", "threshold"}, spike_fn=SoftSpike(4.0), dtype=torch.float64)
    fact, full = FloatSimulator(net, **kw), FloatSimulator(net, factorise_pooled=False, **kw)
    _pooled_loss(fact, frames).backward()
    _pooled_loss(full, frames).backward()
    g_full = full.synapse_params("in->c").weight.grad  # (4, 2, 4, 4): not block-constant
    g_block = g_full.reshape(4, 2, 2, 2, 2, 2).sum((3, 5))
    g_fact = fact.synapse_params("in->c").weight.grad
    assert g_fact.shape == (4, 2, 2, 2) and g_block.abs().max() > 1e-3
    assert torch.allclose(g_fact, g_block, rtol=1e-9, atol=1e-12)
    # the rest of the network sees the same gradients too
    assert torch.allclose(fact.neuron_params("c").threshold.grad, full.neuron_params("c").threshold.grad, rtol=1e-9, atol=1e-12)
    assert torch.allclose(fact.synapse_params("c->o").weight.grad, full.synapse_params("c->o").weight.grad, rtol=1e-9, atol=1e-12)


def test_the_block_kernels_gradient_equals_finite_differences():
    net = pooled_net(2)
    frames = _pooled_frames(net, dtype=torch.float64)
    sim = FloatSimulator(net, trainable={"weight"}, spike_fn=SoftSpike(4.0), dtype=torch.float64)
    w = sim.synapse_params("in->c").weight
    _pooled_loss(sim, frames).backward()
    eps = 1e-6
    order = torch.argsort(w.grad.abs().flatten(), descending=True)
    for flat in order[:3].tolist():  # the elements that matter most
        idx = np.unravel_index(flat, w.shape)
        with torch.no_grad():
            w[idx] += eps
            up = float(_pooled_loss(sim, frames))
            w[idx] -= 2 * eps
            down = float(_pooled_loss(sim, frames))
            w[idx] += eps
        fd = (up - down) / (2 * eps)
        assert abs(fd) > 1e-3, idx
        assert abs(float(w.grad[idx]) - fd) <= 1e-6 * abs(fd) + 1e-8, (idx, float(w.grad[idx]), fd)


def test_factorised_training_moves_the_kernel_as_tied_blocks():
    """An optimiser step changes the full kernel by whole blocks: it stays pool-composed."""
    net = pooled_net(3)
    frames = _pooled_frames(net)
    sim = FloatSimulator(net, trainable={"weight"}, spike_fn=FastSigmoid(slope=5.0))
    opt = torch.optim.SGD(sim.parameters(), lr=0.1)
    _pooled_loss(sim, frames).backward()
    opt.step()
    syn = sim.synapse_params("in->c")
    full = syn.full_weight().detach()
    assert not torch.equal(full, torch.as_tensor(net.projections[0].weight, dtype=torch.float32))
