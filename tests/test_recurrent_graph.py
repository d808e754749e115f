"""A recurrent population with per-neuron time constants and thresholds, through the whole stack.

Built in the float IR (heterogeneous leaks and synaptic decays drawn from gamma
distributions, a sparse recurrent edge), quantised to Lava's 12-bit decays, run
by the float simulator, the fixed-point reference and Lava — spike for spike
where the arithmetic is the same.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from neurocompile.backends.reference import ReferenceBackend
from neurocompile.ir import Network, Population, Projection, RunSettings
from neurocompile.passes.quantize import quantize
from neurocompile.sim.float_sim import FloatSimulator

N_IN, N, N_OUT, T = 8, 40, 3, 30


def heterogeneous_network(seed: int, reset: str = "subtract") -> Network:
    rng = np.random.default_rng(seed)
    tau_m = np.maximum(rng.gamma(3.0, 8.0 / 3.0, N), 1.0)  # membrane time constants, mean 8 steps
    tau_s = np.maximum(rng.gamma(2.0, 2.0, N), 1.0)  # synaptic time constants, mean 4 steps
    w_rec = sp.random(N, N, density=0.2, random_state=seed, data_rvs=lambda k: rng.normal(0, 0.25, k), format="csr")
    pops = (
        Population("in", (N_IN,), "input"),
        Population("rec", (N,), "spiking", threshold=rng.uniform(0.8, 1.2, N), leak=1 / tau_m, current_decay=1 / tau_s,
                   bias=rng.normal(0, 0.02, N), reset=reset),
        Population("out", (N_OUT,), "readout", bias=np.zeros(N_OUT)),
    )
    projs = (
        Projection("in->rec", "in", "rec", "dense", rng.normal(0.25, 0.3, (N, N_IN))),
        Projection("rec->rec", "rec", "rec", "sparse", w_rec, recurrent=True),
        Projection("rec->out", "rec", "out", "dense", rng.normal(0, 0.3, (N_OUT, N))),
    )
    net = Network(pops, projs, inputs=("in",), outputs=("out",), settings=RunSettings(timesteps=T, encoding="rate", seed=seed))
    net.validate()
    return net


def frames(seed: int, samples: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    return (rng.random((samples, T + 2, N_IN)) < rng.uniform(0.1, 0.6, (samples, 1, N_IN))).astype(np.int64)


def test_quantize_gives_each_neuron_its_own_decays_and_threshold():
    net = heterogeneous_network(0)
    q = quantize(net).neuron_fixed("rec")
    pop = net.population("rec")
    # Lava's 12-bit decays, computed independently: u loses (du + 1)/4096, v loses dv/4096 per step
    np.testing.assert_array_equal(q.du, np.clip(np.round(pop.current_decay * 4096) - 1, 0, 4095))
    np.testing.assert_array_equal(q.dv, np.clip(np.round(pop.leak * 4096), 0, 4095))
    assert np.unique(q.du).size > 10 and np.unique(q.dv).size > 10 and np.unique(q.vth).size > 10
    sigma = quantize(net).fixed.v_units_per_float["rec"]
    np.testing.assert_array_equal(q.vth, np.round(pop.threshold * sigma / 64))


def test_float_and_fixed_point_runs_fire_alike():
    """Quantisation changes the numbers slightly: per-neuron spike counts stay close, and are not silence."""
    net = heterogeneous_network(1)
    x = frames(1)
    with torch.no_grad():
        fl = FloatSimulator(net, dtype=torch.float64)(torch.as_tensor(x, dtype=torch.float64)).spike_counts["rec"].numpy()
    fx = ReferenceBackend().run(quantize(net), x).spike_counts["rec"]
    assert fl.sum() > 3 * N and 0 < (fl > 0).mean() < 1
    assert np.corrcoef(fl.ravel(), fx.ravel())[0, 1] > 0.95
    assert abs(fx.sum() - fl.sum()) < 0.05 * fl.sum()


def test_training_never_edits_the_callers_network():
    """Parameters are copies even where the dtypes match (float64 here): an in-place step leaves the IR as it was."""
    net = heterogeneous_network(4)
    before = {pr.name: pr.matrix().toarray().copy() for pr in net.projections}
    threshold = net.population("rec").threshold.copy()
    sim = FloatSimulator(net, trainable=("weight", "threshold"), dtype=torch.float64)
    with torch.no_grad():
        for p in sim.parameters():
            p.add_(1.0)
    for pr in net.projections:
        np.testing.assert_array_equal(pr.matrix().toarray(), before[pr.name])
    np.testing.assert_array_equal(net.population("rec").threshold, threshold)


def test_to_network_writes_back_what_was_trained():
    """Perturbed trainable parameters written back: a simulator built from the result computes exactly the same."""
    net = heterogeneous_network(2)
    sim = FloatSimulator(net, trainable=("weight", "threshold", "leak", "bias"))
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for p in sim.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    back = sim.to_network(quantize(net))
    assert back.fixed is None  # the integers were made for the old values
    rec = back.population("rec")
    assert isinstance(rec.threshold, np.ndarray) and rec.threshold.shape == (N,)
    np.testing.assert_array_equal(rec.current_decay, net.population("rec").current_decay)  # not trainable: kept as it was
    assert sp.issparse(back.projection("rec->rec").weight) and back.projection("rec->rec").weight.nnz == net.projection("rec->rec").weight.nnz
    x = torch.as_tensor(frames(2), dtype=torch.float32)
    with torch.no_grad():
        a, b = sim(x, record=True), FloatSimulator(back)(x, record=True)
    torch.testing.assert_close(a.readout, b.readout, rtol=0, atol=0)
    assert torch.equal(a.spike_trains["rec"], b.spike_trains["rec"])


@pytest.mark.lava
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lava_matches_the_reference_spike_for_spike(backend, reset):
    from test_lava_agreement import assert_same

    q = quantize(heterogeneous_network(3, reset=reset))
    x = frames(3)
    ref = ReferenceBackend().run(q, x, record=True)
    lava = backend.run(q, x, record=True)
    assert_same(ref, lava)
    assert 0 < int(ref.spike_counts["rec"].sum()) < ref.spike_trains["rec"].size


def test_source_scale_scales_only_what_a_population_sends():
    """Zero factors on ``rec``: nothing reaches the readout and ``rec`` runs as if its recurrent edge had no weights."""
    net = heterogeneous_network(5)
    x = torch.as_tensor(frames(5), dtype=torch.float64)
    sim = FloatSimulator(net, dtype=torch.float64)
    sim.source_scale = {"rec": torch.zeros(x.shape[0], N, dtype=torch.float64)}
    with torch.no_grad():
        got = sim(x, record=True)
    rec = net.projection("rec->rec")
    cut = net.replace(projections=tuple(
        pr if pr.name != "rec->rec" else Projection(pr.name, pr.source, pr.target, "sparse", rec.weight * 0.0, recurrent=True)
        for pr in net.projections))
    with torch.no_grad():
        want = FloatSimulator(cut, dtype=torch.float64)(x, record=True)
    assert torch.equal(got.spike_trains["rec"], want.spike_trains["rec"]) and got.spike_trains["rec"].any()
    assert torch.equal(got.readout, torch.zeros_like(got.readout))
