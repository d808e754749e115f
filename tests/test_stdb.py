"""The STDB and linear surrogates (neurocompile/passes/finetune/surrogates.py) on the float simulator.

Forward: the Heaviside of every SurrogateSpike. Backward: the formula, per
neuron, with Δt each neuron's own steps since its last spike in the period.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from neurocompile.ir import Network, Population, Projection, RunSettings
from neurocompile.sim.float_sim import FloatSimulator
from neurocompile.passes.finetune.surrogates import LinearSurrogate, StdbSurrogate, make_surrogate

torch.set_num_threads(2)


def one_layer(weights: list[float], threshold: float = 1.0, T: int = 6) -> Network:
    """input (1) → hidden (len(weights)) spiking, IF, subtract reset → readout (1): hidden neuron i gets weights[i] per step."""
    n = len(weights)
    pops = (
        Population("in", (1,), "input"),
        Population("hidden", (n,), "spiking", threshold=threshold),
        Population("out", (1,), "readout"),
    )
    projs = (
        Projection("w1", "in", "hidden", "dense", np.asarray(weights, dtype=np.float64).reshape(n, 1)),
        Projection("w2", "hidden", "out", "dense", np.ones((1, n))),
    )
    return Network(pops, projs, inputs=("in",), outputs=("out",), settings=RunSettings(timesteps=T))


@dataclass(frozen=True)
class Recording(StdbSurrogate):
    """The STDB surrogate, keeping what it saw at each step (v with its gradient retained, Δt, spikes)."""

    seen: list = field(default_factory=list, compare=False)

    def __call__(self, v, threshold, since_spike):
        v.retain_grad()
        s = super().__call__(v, threshold, since_spike)
        self.seen.append((v, since_spike.clone(), s))
        return s


def _run(net: Network, fn) -> FloatSimulator:
    sim = FloatSimulator(net, trainable={"weight", "threshold"}, spike_fn=fn, dtype=torch.float64)
    frames = torch.ones(1, net.timesteps + net.depth(), 1, dtype=torch.float64)
    sim(frames)
    return sim


def test_stdb_gradient_is_the_formula_with_each_neurons_own_time_since_its_last_spike():
    # neuron 0 fires every step, neuron 1 at steps 3, 5 and 7, neuron 2 at step 5, neuron 3 never (threshold 0.9)
    net = one_layer([1.0, 0.4, 0.2, 0.0], threshold=0.9, T=8)
    fn = Recording(alpha=0.3, beta=0.01)
    _run(net, fn)
    spikes = torch.stack([s[0] for _, _, s in fn.seen])  # (steps, neurons)
    last = torch.full((4,), -math.inf, dtype=torch.float64)
    for k, (v, since, s) in enumerate(fn.seen):
        t = k + 1  # the spike function runs from step 1 (step 0 is the reset step)
        assert torch.equal(since[0], t - last), f"step {t}: Δt {since[0].tolist()} vs {(t - last).tolist()}"
        last = torch.where(s[0] > 0, torch.tensor(float(t), dtype=torch.float64), last)
    # the neurons really have different histories
    assert spikes[:, 0].all() and spikes[:, 3].sum() == 0
    assert torch.nonzero(spikes[:, 1]).ravel().tolist() == [2, 4, 6] and torch.nonzero(spikes[:, 2]).ravel().tolist() == [4]
    v, since, s = fn.seen[-1]
    s.sum().backward()
    dt = since[0].clamp(max=1000.0)
    want = 0.3 * torch.exp(-0.01 * dt) / 0.9  # d s / d v = α e^{-β Δt} / V_th (z = v / V_th - 1)
    torch.testing.assert_close(v.grad[0], want, rtol=1e-12, atol=0)
    assert since[0].tolist() == [1.0, 2.0, 4.0, math.inf]  # at step 9: each neuron's own Δt, so four different gradients


def test_a_neuron_that_never_fired_gets_almost_no_gradient_and_none_with_never_inf():
    net = one_layer([0.0, 1.0], threshold=1.0)
    for never, check in ((1000.0, lambda g: 0 < g < 1e-4), (math.inf, lambda g: g == 0)):
        fn = Recording(never=never)
        _run(net, fn)
        v, since, s = fn.seen[-1]
        assert math.isinf(since[0, 0])
        s.sum().backward()
        assert check(float(v.grad[0, 0])), float(v.grad[0, 0])
        assert float(v.grad[0, 1]) > 0.25


def test_stdb_gradients_reach_the_weights_through_the_whole_period():
    net = one_layer([0.7, 0.45], threshold=1.0, T=5)
    sim = FloatSimulator(net, trainable={"weight"}, spike_fn=StdbSurrogate(), dtype=torch.float64)
    frames = torch.ones(1, 7, 1, dtype=torch.float64)
    sim.logits(sim(frames).readout).sum().backward()
    g = sim.synapse_params("w1").weight.grad
    assert g is not None and torch.isfinite(g).all() and (g.abs() > 0).all()


@pytest.mark.parametrize("v", [0.2, 0.75, 1.0, 1.3, 2.5])
def test_linear_surrogate_is_the_triangle_around_the_threshold(v):
    theta = torch.tensor([0.8], dtype=torch.float64)
    vv = torch.tensor([[v]], dtype=torch.float64, requires_grad=True)
    s = LinearSurrogate()(vv, theta, None)
    assert float(s) == float(v > 0.8)
    s.sum().backward()
    z = v / 0.8 - 1
    assert float(vv.grad) == pytest.approx(0.3 * max(0.0, 1 - abs(z)) / 0.8, rel=1e-12, abs=1e-15)


def test_surrogates_by_name():
    assert make_surrogate("stdb", alpha=0.5, beta=0.035) == StdbSurrogate(alpha=0.5, beta=0.035)
    assert isinstance(make_surrogate("linear"), LinearSurrogate)
    with pytest.raises(Exception, match="unknown surrogate"):
        make_surrogate("sigmoid")
