"""Smoke test of bench/peers.py: the peers get the same network, and every simulator runs.

Skipped unless at least one peer (SpikingJelly, snnTorch, Norse: the ``peers`` extra) is
installed. Speeds are machine-dependent and not checked.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
PEER_MODULES = ("spikingjelly", "snntorch", "norse")

if not any(importlib.util.find_spec(m) is not None for m in PEER_MODULES):
    pytest.skip("no peer simulator installed (pip install -e .[peers] with the torch pin)", allow_module_level=True)


@pytest.fixture(scope="module")
def peers():
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "bench" / "peers.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_peers"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def small_cnn():
    """A small conv net with BN and composed pools, captured and converted (float) like the bench's CNN."""
    from neurocompile.frontend import capture
    from neurocompile.passes.convert import convert

    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(4, 6, 3), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 12), nn.ReLU(), nn.Linear(12, 10),
    ).eval()
    with torch.no_grad():
        m[1].running_mean.uniform_(-0.2, 0.2)
        m[1].running_var.uniform_(0.5, 1.5)
    x = np.random.default_rng(0).random((64, 1, 14, 14), dtype=np.float32)
    net = capture(torch.export.export(m, (torch.from_numpy(x[:2]),)))
    return convert(net, x, timesteps=8), x


def test_peer_stages_apply_the_networks_own_projections(peers, small_cnn):
    """Each stage's op (pools taken back out of the composed kernels) equals the IR projection plus the target's bias."""
    from neurocompile.sim.ops import project, weight_tensor

    net, _ = small_cnn
    stages = peers.stages_of(net)
    assert [st.name for st in stages] == [p.name for p in net.neurons]
    assert any(isinstance(m, nn.AvgPool2d) for st in stages for m in st.ff.modules())  # a pool was taken out
    g = torch.Generator().manual_seed(1)
    for st in stages:
        (pr,) = net.incoming(st.name)
        src, dst = net.population(pr.source), net.population(pr.target)
        s = (torch.rand(5, src.size, generator=g) < 0.3).float()
        want = project(pr, weight_tensor(pr, torch.float32), s)
        if dst.kind != "readout" and dst.bias is not None:
            want = want + torch.as_tensor(dst.bias, dtype=torch.float32)
        with torch.no_grad():
            got = st.ff(s.reshape(5, *src.shape)).reshape(5, -1)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        assert st.threshold == pytest.approx(float(dst.threshold))


def test_every_simulator_runs_with_comparable_rates(peers):
    """A 200-neuron recurrent net through neurocompile (fixed, float) and each installed peer."""
    from neurocompile.sim.run import period

    qnet = peers.recurrent_network(n=200, n_in=50, dv=512, timesteps=peers.T)
    fnet = qnet.replace(fixed=None)
    fr = peers.bernoulli_frames(8, period(qnet), 50, 0.2, seed=2)
    x = torch.from_numpy(fr)
    rows = peers.measure("rec", fnet, qnet, x, x.float(), x.float(), False, peers.peer_status(), repeats=1)
    sims = {r["sim"]: r for r in rows}
    runner = {"spikingjelly": "SpikingJelly 's'", "snntorch": "snnTorch", "norse": "Norse"}  # 'm' cannot run recurrence
    installed = {runner[m] for m in PEER_MODULES if importlib.util.find_spec(m) is not None}
    assert set(sims) == {"neurocompile fixed", "neurocompile float"} | installed
    ref = sims["neurocompile fixed"]["fire"]
    assert ref > 0
    for name, r in sims.items():
        assert r["rate_ss"] > 0
        assert 0.5 <= r["fire"] / ref <= 2.0, (name, r["fire"], ref)
