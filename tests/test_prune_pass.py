"""The prune pass on the IR: LNP and its baselines through one interface, and a pruned RSNN through the whole stack."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from neurocompile import ir
from neurocompile.backends.reference import ReferenceBackend
from neurocompile.errors import NeurocompileError
from neurocompile.frontend.rsnn import ingest_model, ingest_rsnn
from neurocompile.nn import HRSNN, save_rsnn
from neurocompile.passes.prune import prune
from neurocompile.passes.quantize import quantize
from neurocompile.sim.float_sim import FloatSimulator

N_IN, N, N_OUT, T = 3, 60, 2, 24


def _model(seed: int = 0) -> HRSNN:
    return HRSNN(N_IN, N, N_OUT, 3.0, 8.0, recurrent_density=0.2, seed=seed, recurrent_gain=1.0, input_gain=2.0)


def _frames(seed: int, samples: int = 2) -> np.ndarray:
    """Direct input as the chip gets it: 8-bit graded payloads (x · 255 for x in [0, 1]), then the readout delay."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (samples, T + 2, N_IN))
    x[:, T:] = 0
    return x


@pytest.mark.parametrize("method", ["lnp", "random", "activity"])
def test_each_method_hits_the_sparsity_and_keeps_the_network_whole(method):
    net = ingest_model(_model(), timesteps=T)
    rec = net.projection("hidden_to_hidden").weight
    activity = np.random.default_rng(1).random(N) if method == "activity" else None
    out = prune(net, method=method, neuron_sparsity=0.5, synapse_sparsity=0.6, seed=3, activity=activity)
    kept = np.asarray(out.pruning.kept)
    assert out.population("hidden").size == len(kept) == N // 2
    # per-neuron parameters and the input/readout weights are the kept neurons' own
    np.testing.assert_array_equal(out.population("hidden").leak, net.population("hidden").leak[kept])
    np.testing.assert_array_equal(out.projection("input_to_hidden").weight, net.projection("input_to_hidden").weight[kept])
    np.testing.assert_array_equal(out.projection("hidden_to_readout").weight, net.projection("hidden_to_readout").weight[:, kept])
    # synapse sparsity among the survivors (the delocalisation step may add a few back)
    among = sp.csr_matrix(rec)[kept][:, kept].nnz
    got = out.projection("hidden_to_hidden").weight.nnz - out.pruning.added_synapses
    # the baselines keep an exact count; LNP samples each synapse with its keep probability, calibrated so the
    # expected count is the target (Moore & Chaudhuri): within three binomial standard deviations of it
    slack = 1 if method != "lnp" else 3 * np.sqrt(among * 0.4 * 0.6)
    assert abs(got - round(0.4 * among)) <= slack
    assert out.pruning.before["neurons"] == N and out.pruning.after["neurons"] == N // 2
    assert out.projection("hidden_to_hidden").recurrent
    if method == "activity":  # the least active neurons go
        assert set(kept) == set(np.argsort(activity)[N // 2:])


def test_the_record_round_trips_and_bad_requests_are_refused(tmp_path):
    net = ingest_model(_model(), timesteps=T)
    out = prune(net, method="random", neuron_sparsity=0.25, synapse_sparsity=0.5, seed=0)
    ir.save(out, tmp_path / "p.ncnet")
    assert ir.load(tmp_path / "p.ncnet").pruning == out.pruning
    with pytest.raises(NeurocompileError, match="activity="):
        prune(net, method="activity", neuron_sparsity=0.5, synapse_sparsity=0.5)
    with pytest.raises(NeurocompileError, match="unknown pruning method"):
        prune(net, method="magnitude", neuron_sparsity=0.5, synapse_sparsity=0.5)
    with pytest.raises(NeurocompileError, match="not quantised yet"):
        prune(quantize(net), method="random", neuron_sparsity=0.5, synapse_sparsity=0.5)
    ff = net.replace(projections=tuple(p for p in net.projections if not p.recurrent))
    with pytest.raises(NeurocompileError, match="one recurrent population"):
        prune(ff, method="random", neuron_sparsity=0.5, synapse_sparsity=0.5)


def test_pruned_ir_runs_as_the_pruned_model_does(tmp_path):
    """The IR pass and the model's own pruning (``model.pruned``) agree: same spikes in the float simulator."""
    save_rsnn(_model(4), tmp_path / "m.rsnn")
    model, net = ingest_rsnn(tmp_path / "m.rsnn", timesteps=T)
    out = prune(net, method="lnp", neuron_sparsity=0.4, synapse_sparsity=0.5, seed=0)
    small = model.pruned(np.asarray(out.pruning.kept), out.projection("hidden_to_hidden").weight)
    x = torch.as_tensor(np.random.default_rng(0).random((2, T, N_IN)), dtype=torch.float64)
    small = small.double()
    with torch.no_grad():
        want = small(x).spikes.numpy().astype(bool)
        got = FloatSimulator(out, dtype=torch.float64)(small.frames(x), record=True).spike_trains["hidden"].numpy()
    np.testing.assert_array_equal(got, want)
    assert want.any()


@pytest.mark.lava
def test_a_pruned_rsnn_runs_on_lava_spike_for_spike(backend):
    from test_lava_agreement import assert_same

    net = ingest_model(_model(5), timesteps=T)
    q = quantize(prune(net, method="lnp", neuron_sparsity=0.5, synapse_sparsity=0.7, seed=0))
    x = _frames(5)
    ref = ReferenceBackend().run(q, x, record=True)
    assert_same(ref, backend.run(q, x, record=True))
    assert 0 < int(ref.spike_counts["hidden"].sum()) < ref.spike_trains["hidden"].size


def test_the_record_holds_the_spiking_networks_lyapunov_exponent_measured_on_its_own_neurons():
    """Before and after: the exponent of the population's LIF dynamics (not only of the linearised rate network),
    recomputed here from the IR alone; on this seed LNP leaves the spiking network no less stable."""
    from neurocompile.lnp import LIFNeurons, largest_spiking_lyapunov_exponent

    def measured(net):
        pop = net.population("hidden")
        neurons = LIFNeurons(leak=pop.values("leak"), current_decay=pop.values("current_decay"), threshold=pop.values("threshold"),
                             bias=pop.values("bias"), reset=pop.reset)
        return largest_spiking_lyapunov_exponent(sp.csr_matrix(net.projection("hidden_to_hidden").weight, dtype=np.float64), neurons, seed=3)

    net = ingest_model(_model(), timesteps=T)
    out = prune(net, method="lnp", neuron_sparsity=0.6, synapse_sparsity=0.9, seed=3)
    before, after = out.pruning.before["spiking_lyapunov_exponent"], out.pruning.after["spiking_lyapunov_exponent"]
    assert before == pytest.approx(measured(net), abs=1e-12) and after == pytest.approx(measured(out), abs=1e-12)
    assert after <= before
