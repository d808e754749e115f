"""Our NeuroBench-style counts against the ``neurobench`` package's own, on the same model.

One snntorch network (16 graded inputs -> 8 LIF -> 3 LIF, some weights zero),
run by NeuroBench (``Benchmark`` with ``Footprint``, ``ConnectionSparsity``,
``SynapticOperations``, ``ActivationSparsity``) and counted by
:func:`neurocompile.report.count_ops` from the very spikes it produced, per
neuron. Skipped where neurobench cannot be installed beside the pinned torch.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

nb = pytest.importorskip("neurobench", reason="neurobench is not installed (optional extra: pip install -c <(echo torch==2.13.0) -e '.[neurobench]')")
snn = pytest.importorskip("snntorch")

from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.static import ConnectionSparsity, Footprint  # noqa: E402
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations  # noqa: E402
from neurobench.models import SNNTorchModel  # noqa: E402

from neurocompile.ir import Network, Population, Projection, RunSettings  # noqa: E402
from neurocompile.report import count_ops  # noqa: E402

SAMPLES, STEPS = 6, 12


def model() -> nn.Sequential:
    torch.manual_seed(0)
    lin1, lin2 = nn.Linear(16, 8), nn.Linear(8, 3)
    with torch.no_grad():
        lin1.weight.mul_(8.0)
        lin2.weight.mul_(8.0)
        lin1.weight[:, :5] = 0.0  # inputs 0-4 connect to nothing: 40 zero weights
        lin2.weight[0, :4] = 0.0
    return nn.Sequential(lin1, snn.Leaky(beta=0.9, init_hidden=True), lin2, snn.Leaky(beta=0.9, init_hidden=True, output=True))


def data() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(SAMPLES, STEPS, 16, generator=g)
    return x * (torch.rand(SAMPLES, STEPS, 16, generator=g) < 0.4)  # graded, 60 % zeros


def recorded_spikes(net: nn.Sequential, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Per layer, spikes per neuron summed over steps and samples (the same run NeuroBench sees)."""
    snn.utils.reset(net)
    counts = {"h": torch.zeros(8), "o": torch.zeros(3)}
    with torch.no_grad():
        for t in range(STEPS):
            s1 = net[1](net[0](x[:, t]))
            s2, _ = net[3](net[2](s1))
            counts["h"] += s1.sum(0)
            counts["o"] += s2.sum(0)
    return {k: v.numpy().astype(np.float64) for k, v in counts.items()}


def ir_of(net: nn.Sequential) -> Network:
    w1, b1 = net[0].weight.detach().numpy().astype(np.float64), net[0].bias.detach().numpy()
    w2, b2 = net[2].weight.detach().numpy().astype(np.float64), net[2].bias.detach().numpy()
    pops = (Population("in", (16,), "input"), Population("h", (8,), "spiking", bias=b1), Population("o", (3,), "spiking", bias=b2))
    projs = (Projection("w1", "in", "h", "dense", w1), Projection("w2", "h", "o", "dense", w2))
    return Network(pops, projs, ("in",), ("o",), RunSettings(timesteps=STEPS))


def test_counts_match_neurobench_on_the_same_model():
    net, x = model(), data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(SAMPLES)), batch_size=SAMPLES)
    bench = Benchmark(SNNTorchModel(net), loader, [], [], [[Footprint, ConnectionSparsity], [SynapticOperations, ActivationSparsity]])
    theirs = bench.run(quiet=True)

    spikes = recorded_spikes(net, x)
    per_sample = {"in": (x != 0).sum((0, 1)).numpy() / SAMPLES, "h": spikes["h"] / SAMPLES, "o": spikes["o"] / SAMPLES}
    ours = count_ops(ir_of(net), per_sample, STEPS)["neurobench"]
    assert spikes["h"].sum() > 0 and spikes["o"].sum() > 0  # the comparison is not of zeros

    # Footprint of the two Linear layers (weights + biases, float32) plus snntorch's own neuron buffers, which the IR does not keep
    fresh = model()  # as NeuroBench measured it: before a run sizes the membrane buffers to the batch
    neuron_bytes = sum(b.numel() * b.element_size() for m in (fresh[1], fresh[3]) for b in list(m.buffers()) + list(m.parameters()))
    assert ours["footprint"] == (16 * 8 + 8 + 8 * 3 + 3) * 4
    assert theirs["Footprint"] == ours["footprint"] + neuron_bytes
    assert ours["connection_sparsity"] == pytest.approx(theirs["ConnectionSparsity"], abs=5e-5)  # neurobench rounds to 4 places
    assert ours["connection_sparsity"] == pytest.approx(44 / 152)
    assert ours["activation_sparsity"] == pytest.approx(theirs["ActivationSparsity"])
    syn = theirs["SynapticOperations"]
    assert ours["synaptic_operations"]["Effective_MACs"] == pytest.approx(syn["Effective_MACs"])  # graded input
    assert ours["synaptic_operations"]["Effective_ACs"] == pytest.approx(syn["Effective_ACs"])  # binary spikes
    assert ours["synaptic_operations"]["Dense"] == pytest.approx(syn["Dense"])
    assert syn["Dense"] == (16 * 8 + 8 * 3) * STEPS
