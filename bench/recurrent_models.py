"""The recurrent network the speed benchmarks share (bench/sim_speed.py, bench/peers.py), and its input.

input (100) → dense → 1,000 neurons with a 10 %-sparse recurrent projection → readout (10).
Excitatory-leaning input, inhibition-leaning recurrence (mean -4, sd 20): with 20 %
Bernoulli input the integrate-and-fire population fires at ~0.1 spikes/neuron/step, none
saturated. Mixed-sign weights are even and within ±250, so Lava's 8-bit truncation leaves
them unchanged, and no synapse rounds to zero (the density stays 10 %). ``dv`` > 0 makes the
neurons leaky (LIF): v × (4096 - dv) / 4096 per step, e.g. dv = 512: v × 0.875.

The float fields equal the fixed-point ones in the engine's units (``v > vth << 6`` against
``a_in << 6``): threshold = vth, leak = dv / 4096, integer weights, so the float simulator and
the peers' float simulations run the same network.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from neurocompile.ir import FixedPoint, Network, NeuronFixed, Population, Projection, RunSettings, SynapseFixed

VTH = 400


def recurrent_network(n: int = 1000, n_in: int = 100, density: float = 0.1, seed: int = 0, dv: int = 0,
                      timesteps: int = 32) -> Network:
    """The quantised network (``net.replace(fixed=None)`` is its float twin)."""
    rng = np.random.default_rng(seed)
    even = lambda a: (np.round(np.clip(a, -250, 250) / 2) * 2).astype(np.int64)  # noqa: E731
    w_in = even(rng.normal(4, 6, (n, n_in)))
    w_rec = sp.random(n, n, density=density, random_state=seed + 1, format="csr", data_rvs=np.ones)
    d = even(rng.normal(-4, 20, w_rec.nnz))
    w_rec.data = np.where(d == 0, -2, d).astype(np.float64)
    w_rec = w_rec.astype(np.int64)
    w_out = even(rng.normal(0, 10, (10, n)))
    zero = lambda k: np.zeros(k, dtype=np.int64)  # noqa: E731
    net = Network(
        populations=(
            Population("input", (n_in,), "input"),
            Population("rec", (n,), "spiking", threshold=float(VTH), leak=dv / 4096, bias=np.zeros(n)),
            Population("output", (10,), "readout", bias=np.zeros(10)),
        ),
        projections=(
            Projection("input->rec", "input", "rec", "dense", w_in.astype(np.float64)),
            Projection("rec->rec", "rec", "rec", "sparse", w_rec.astype(np.float64), recurrent=True),
            Projection("rec->output", "rec", "output", "dense", w_out.astype(np.float64)),
        ),
        inputs=("input",),
        outputs=("output",),
        settings=RunSettings(timesteps=timesteps, encoding="rate", seed=seed),
        fixed=FixedPoint(
            neurons={"rec": NeuronFixed(vth=VTH, bias_mant=zero(n), bias_exp=0, dv=dv),
                     "output": NeuronFixed(vth=(1 << 17) - 1, bias_mant=zero(10), bias_exp=0)},
            synapses={"input->rec": SynapseFixed(w_in), "rec->rec": SynapseFixed(w_rec), "rec->output": SynapseFixed(w_out)},
        ),
    )
    net.validate()
    return net


def bernoulli_frames(samples: int, period: int, n_in: int, rate: float, seed: int) -> np.ndarray:
    """Binary input spikes, (samples, period, n_in) int8; sample i's stream depends only on (seed, i)."""
    out = np.empty((samples, period, n_in), dtype=np.int8)
    for i in range(samples):
        out[i] = np.random.default_rng([seed, i]).random((period, n_in), dtype=np.float32) < rate
    return out


def pruned_rsnn(n: int = 2000, n_in: int = 20, seed: int = 0, timesteps: int = 32, neuron_sparsity: float = 0.6,
                synapse_sparsity: float = 0.9) -> Network:
    """A quantised heterogeneous RSNN after pruning: ``neurocompile.nn.HRSNN`` (gamma τ, 10 % recurrence),
    pruned by the IR pass to 40 % of its neurons and 10 % of their recurrent synapses.

    Random pruning at the requested sparsity: the simulators' speed depends on the sizes, per-neuron
    decays and the sparse recurrence, not on which synapses a method keeps (and LNP on 2,000 neurons
    takes a minute on its own).
    """
    from neurocompile.frontend.rsnn import ingest_model
    from neurocompile.nn import HRSNN
    from neurocompile.passes.prune import prune
    from neurocompile.passes.quantize import quantize

    model = HRSNN(n_in, n, 10, 3.0, 8.0, recurrent_density=0.1, seed=seed, input_gain=2.0)
    net = ingest_model(model, timesteps=timesteps, seed=seed)
    return quantize(prune(net, method="random", neuron_sparsity=neuron_sparsity, synapse_sparsity=synapse_sparsity, seed=seed))


def graded_frames(samples: int, period: int, n_in: int, seed: int, silent_tail: int = 2) -> np.ndarray:
    """Direct input as the chip gets it: 8-bit graded payloads per step, silent for the readout delay at the end."""
    out = np.empty((samples, period, n_in), dtype=np.int64)
    for i in range(samples):
        out[i] = np.random.default_rng([seed, i]).integers(0, 256, (period, n_in))
    out[:, period - silent_tail:] = 0
    return out
