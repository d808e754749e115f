"""IR serialisation: lossless round trip, versioned, no pickle."""
from __future__ import annotations

import dataclasses
import json
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from nc_testutils import export_pt2

from neurocompile import ir
from neurocompile.errors import NeurocompileError
from neurocompile.frontend import ingest


def _net(tmp_path):
    import torch.nn as nn
    from nc_testutils import randomize_bn

    m = randomize_bn(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(2, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3)))
    return ingest(export_pt2(m, tmp_path / "m.pt2", (1, 8, 8)))


def test_round_trip_is_lossless(tmp_path):
    net = _net(tmp_path)
    net = net.replace(meta={"timesteps": 8, "nested": {"a": [1, 2.5, "x"]}, "arr": np.arange(3)})
    ir.save(net, tmp_path / "n.ncnet")
    back = ir.load(tmp_path / "n.ncnet")
    assert [p.name for p in back.populations] == [p.name for p in net.populations]
    for a, b in zip(net.projections, back.projections):
        assert (a.kind, a.source, a.target, a.conv) == (b.kind, b.source, b.target, b.conv)
        assert abs(a.matrix() - b.matrix()).max() == 0
    for a, b in zip(net.populations, back.populations):
        assert a.shape == b.shape and a.kind == b.kind
        if a.bias is not None:
            np.testing.assert_array_equal(a.bias, b.bias)
    assert back.meta["nested"] == {"a": [1, 2.5, "x"]} and back.meta["arr"].tolist() == [0, 1, 2]


def test_sparse_weights_round_trip(tmp_path):
    net = _net(tmp_path)
    pr = net.projections[1]  # replaced by a sparse projection of the same shape, whatever its kind
    m = sp.random(*pr.matrix().shape, density=0.2, format="csr", random_state=0)
    net = net.replace(projections=(net.projections[0], ir.Projection("s", pr.source, pr.target, "sparse", m), *net.projections[2:]))
    ir.save(net, tmp_path / "n.ncnet")
    assert abs(ir.load(tmp_path / "n.ncnet").projections[1].weight - m).max() == 0


def test_other_versions_and_files_are_refused(tmp_path):
    net = _net(tmp_path)
    ir.save(net, tmp_path / "n.ncnet")
    with zipfile.ZipFile(tmp_path / "n.ncnet") as z:
        items = {n: z.read(n) for n in z.namelist()}
    header = json.loads(items["network.json"])
    header["version"] = 999
    items["network.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(tmp_path / "v.ncnet", "w") as z:
        for n, b in items.items():
            z.writestr(n, b)
    with pytest.raises(NeurocompileError, match="version 999"):
        ir.load(tmp_path / "v.ncnet")
    (tmp_path / "junk").write_text("x")
    with pytest.raises(NeurocompileError, match="not a neurocompile network"):
        ir.load(tmp_path / "junk")


def test_recurrent_projection_is_allowed_and_simulated(tmp_path):
    """A self-projection delivers last step's spikes: checked against a hand-rolled loop."""
    import torch

    from neurocompile.ir import Network, NeuronQuant, Population, Projection
    from neurocompile.sim.engine import simulate

    rng = np.random.default_rng(0)
    w_in = rng.integers(-40, 60, (6, 3)) * 2
    w_rec = sp.random(6, 6, density=0.3, random_state=1, data_rvs=lambda n: rng.integers(-30, 30, n) * 2, format="csr").astype(np.int64)
    q = NeuronQuant(vth=100, bias_mant=np.zeros(6, dtype=np.int64), bias_exp=0)
    net = Network(
        populations=(Population("input", (3,), "input"), Population("r", (6,), "spiking", quant=q), Population("output", (2,), "readout", quant=dataclasses.replace(q, bias_mant=np.zeros(2, np.int64)))),
        projections=(
            Projection("in", "input", "r", "dense", w_in.astype(float), qweight=w_in),
            Projection("rec", "r", "r", "sparse", w_rec.astype(float), qweight=w_rec),
            Projection("out", "r", "output", "dense", np.ones((2, 6)), qweight=np.ones((2, 6), dtype=np.int64)),
        ),
        input="input",
        output="output",
    )
    net.validate()
    assert net.depth() == 2 and net.is_recurrent(net.projections[1])
    frames = torch.as_tensor(rng.integers(0, 2, (1, 20, 3)))
    got = simulate(net, frames, "fixed", record=True).spike_trains["r"][0].numpy()
    # independent loop: v += (W_in s_in(t-1) + W_rec s_r(t-1)) << 6, spike if v > 100 << 6, subtract
    v, s_prev, x_prev, want = np.zeros(6, np.int64), np.zeros(6, np.int64), np.zeros(3, np.int64), []
    for t in range(20):
        if t == 0:
            s = np.zeros(6, np.int64)
        else:
            v = v + ((w_in @ x_prev + w_rec @ s_prev) << 6)
            s = (v > 100 << 6).astype(np.int64)
            v = v - s * (100 << 6)
        want.append(s.astype(bool))
        s_prev, x_prev = s, frames[0, t].numpy()
    np.testing.assert_array_equal(got, np.array(want))
    assert got.sum() > 0
