"""The IR: an explicit graph with typed records and a fixed-point layer; lossless, versioned, pickle-free files."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from nc_testutils import export_pt2

from neurocompile import ir
from neurocompile.errors import NeurocompileError
from neurocompile.frontend import ingest
from neurocompile.ir import (ConversionRecord, FixedPoint, Network, NeuronFixed, Population, Projection, RunSettings,
                             SynapseFixed)

GOLDEN = Path(__file__).parent / "golden"


def _net(tmp_path):
    import torch.nn as nn
    from nc_testutils import randomize_bn

    m = randomize_bn(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(2, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3)))
    return ingest(export_pt2(m, tmp_path / "m.pt2", (1, 8, 8)))


def _recurrent(rng: np.random.Generator, n: int = 6, per_neuron: bool = True) -> Network:
    """input → r (recurrent, per-neuron decays and thresholds) → output, with a hand-made fixed-point layer."""
    w_in = rng.integers(-40, 60, (n, 3)) * 2
    w_rec = sp.random(n, n, density=0.3, random_state=1, data_rvs=lambda k: rng.integers(-30, 30, k) * 2, format="csr").astype(np.int64)
    w_out = np.ones((2, n), dtype=np.int64)
    leak = rng.uniform(0.02, 0.3, n) if per_neuron else 0.0
    pops = (Population("input", (3,), "input"),
            Population("r", (n,), "spiking", threshold=rng.uniform(0.5, 1.5, n) if per_neuron else 1.0, leak=leak, bias=np.zeros(n)),
            Population("output", (2,), "readout", bias=np.zeros(2)))
    projs = (Projection("in", "input", "r", "dense", w_in.astype(float)),
             Projection("rec", "r", "r", "sparse", w_rec.astype(float), recurrent=True),
             Projection("out", "r", "output", "dense", w_out.astype(float)))
    vth = rng.integers(80, 140, n) if per_neuron else 100
    dv = rng.integers(0, 600, n) if per_neuron else 0
    fixed = FixedPoint(neurons={"r": NeuronFixed(vth=vth, bias_mant=np.zeros(n, np.int64), bias_exp=0, dv=dv),
                                "output": NeuronFixed(vth=1, bias_mant=np.zeros(2, np.int64), bias_exp=0)},
                       synapses={"in": SynapseFixed(w_in), "rec": SynapseFixed(w_rec), "out": SynapseFixed(w_out)})
    return Network(pops, projs, inputs=("input",), outputs=("output",), settings=RunSettings(timesteps=12, encoding="rate"),
                   fixed=fixed)


def test_round_trip_is_lossless(tmp_path):
    net = _net(tmp_path)
    net = net.replace(settings=RunSettings(timesteps=8, encoding="rate", seed=7, data="digits", model="m.pt2", source_format="export"),
                      conversion=ConversionRecord("max", 0.7, {"relu": 1.5}), mapping=_mapping(net, x=[1, 2.5, None]))
    ir.save(net, tmp_path / "n.ncnet")
    back = ir.load(tmp_path / "n.ncnet")
    assert [p.name for p in back.populations] == [p.name for p in net.populations]
    for a, b in zip(net.projections, back.projections):
        assert (a.kind, a.source, a.target, a.conv, a.delay, a.recurrent) == (b.kind, b.source, b.target, b.conv, b.delay, b.recurrent)
        assert abs(a.matrix() - b.matrix()).max() == 0
    for a, b in zip(net.populations, back.populations):
        assert a.shape == b.shape and a.kind == b.kind
        if a.bias is not None:
            np.testing.assert_array_equal(a.bias, b.bias)
    assert back.settings == net.settings and back.conversion == net.conversion and back.mapping == net.mapping
    assert (back.inputs, back.outputs) == (net.inputs, net.outputs)


def _mapping(net: Network, **extra) -> dict:
    """The smallest placement the loader accepts: one core chunk per population (the map pass writes more)."""
    pops = {p.name: {"chunks": [[0, p.size]]} for p in net.neurons}
    return {"profile": "loihi2", "cores_used": len(pops), "layout": {}, "cores": [], "populations": pops, **extra}


def test_a_placement_that_does_not_cover_its_populations_is_refused(tmp_path):
    net = _net(tmp_path)
    bad = _mapping(net)
    name = net.neurons[0].name
    bad["populations"][name]["chunks"] = [[0, 1]]
    ir.save(net.replace(mapping=bad), tmp_path / "m.ncnet")
    with pytest.raises(NeurocompileError, match=f"covers 1 of its {net.neurons[0].size} neurons"):
        ir.load(tmp_path / "m.ncnet")
    ir.save(net.replace(mapping={"profile": "loihi2"}), tmp_path / "m.ncnet")
    with pytest.raises(NeurocompileError, match="map the network again"):
        ir.load(tmp_path / "m.ncnet")


def test_fixed_point_layer_and_per_neuron_parameters_round_trip(tmp_path):
    net = _recurrent(np.random.default_rng(0))
    ir.save(net, tmp_path / "r.ncnet")
    back = ir.load(tmp_path / "r.ncnet")
    r, r2 = net.population("r"), back.population("r")
    for f in ("threshold", "leak"):
        np.testing.assert_array_equal(getattr(r, f), getattr(r2, f))
    for f in ("vth", "dv", "bias_mant"):
        np.testing.assert_array_equal(getattr(net.neuron_fixed("r"), f), getattr(back.neuron_fixed("r"), f))
    assert abs(back.fixed_matrix(back.projection("rec")) - net.fixed_matrix(net.projection("rec"))).max() == 0
    assert back.projection("rec").recurrent and not back.projection("in").recurrent
    ir.save(back, tmp_path / "again.ncnet")  # deterministic: the same network gives the same bytes
    assert (tmp_path / "r.ncnet").read_bytes() == (tmp_path / "again.ncnet").read_bytes()


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


def test_a_version_1_artifact_is_migrated_and_runs_as_it_did():
    """tests/golden/v1/mlp_build.ncnet was written by the version-1 code (the golden MLP's build): read now, its
    fixed-point readouts over the digits test split hash to the value that code recorded in examples.json."""
    from neurocompile.data import load_dataset, shape_for_model
    from neurocompile.sim.run import evaluate

    net = ir.load(GOLDEN / "v1" / "mlp_build.ncnet")
    assert net.settings.timesteps == 16 and net.settings.encoding == "direct" and net.settings.data == "digits"
    assert net.conversion.threshold_method == "percentile 99.9" and net.mapping is None  # v1 placements lack the layout
    assert net.quantized and set(net.fixed.synapses) == {pr.name for pr in net.projections}
    assert not any(pr.recurrent for pr in net.projections)
    ds = load_dataset("digits", seed=0)
    ev = evaluate(net, shape_for_model(ds.x_test, net.population(net.input).shape), "fixed")
    digest = hashlib.sha256(np.ascontiguousarray(ev.logits, dtype=np.float64).tobytes()).hexdigest()
    assert digest == json.loads((GOLDEN / "examples.json").read_text())["mlp"]["logits_sha256"]


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def test_v1_recurrence_is_taken_from_the_order_of_populations(tmp_path):
    """Version 1 had no flag: an edge to the same or an earlier population was recurrent."""
    with zipfile.ZipFile(GOLDEN / "v1" / "mlp_build.ncnet") as z:
        items = {n: z.read(n) for n in z.namelist()}
    header = json.loads(items["network.json"])
    size = {p["name"]: int(np.prod(p["shape"])) for p in header["populations"]}
    back = (size["relu"], size["relu_1"])
    items["back.npy"], items["backq.npy"] = _npy(np.zeros(back)), _npy(np.zeros(back, np.int64))
    header["projections"].append({"__type__": "Projection", "name": "back", "source": "relu_1", "target": "relu", "kind": "dense",
                                  "weight": {"__array__": "back"}, "qweight": {"__array__": "backq"}, "weight_exp": 0})
    items["network.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(tmp_path / "rec.ncnet", "w") as z:
        for n, b in items.items():
            z.writestr(n, b)
    net = ir.load(tmp_path / "rec.ncnet")
    assert net.projection("back").recurrent and not any(pr.recurrent for pr in net.projections if pr.name != "back")
    assert net.depth() == 3


def test_graph_order_comes_from_edges_not_storage():
    net = _recurrent(np.random.default_rng(1))
    shuffled = net.replace(populations=tuple(reversed(net.populations)), projections=tuple(reversed(net.projections)))
    shuffled.validate()
    assert [p.name for p in shuffled.neurons] == ["r", "output"] and shuffled.depth() == 2


def test_graph_errors_are_one_line_and_name_the_problem():
    net = _recurrent(np.random.default_rng(2))
    unflagged = net.replace(projections=tuple(Projection(p.name, p.source, p.target, p.kind, p.weight) for p in net.projections))
    with pytest.raises(NeurocompileError, match="recurrent=True"):
        unflagged.validate()
    with pytest.raises(NeurocompileError, match="delay 3"):
        net.replace(projections=(*net.projections[:2], Projection("out", "r", "output", "dense", np.ones((2, 6)), delay=3))).validate()
    with pytest.raises(NeurocompileError, match="threshold must be one value or 6 values"):
        net.replace_population(Population("r", (6,), "spiking", threshold=np.ones(4))).validate()
    with pytest.raises(NeurocompileError, match="inputs"):
        net.replace(inputs=("r",)).validate()
    with pytest.raises(NeurocompileError, match="fixed-point layer does not match"):
        net.replace(fixed=FixedPoint(neurons={"r": net.neuron_fixed("r")}, synapses=net.fixed.synapses)).validate()
    with pytest.raises(NeurocompileError, match="exactly one"):
        _ = net.replace(outputs=("output", "r")).output
    with pytest.raises(NeurocompileError, match="not quantised"):
        net.replace(fixed=None).neuron_fixed("r")


def test_recurrent_projection_is_simulated_with_per_neuron_thresholds_and_leaks():
    """A self-projection delivers last step's spikes, each neuron with its own vth and dv: against a hand-rolled loop."""
    import torch

    from neurocompile.sim.engine import simulate

    rng = np.random.default_rng(0)
    net = _recurrent(rng)
    net.validate()
    assert net.depth() == 2
    frames = torch.as_tensor(rng.integers(0, 2, (1, 20, 3)))
    got = simulate(net, frames, "fixed", record=True).spike_trains["r"][0].numpy()
    q = net.neuron_fixed("r")
    w_in, w_rec = net.synapse_fixed("in").weight, net.synapse_fixed("rec").weight.toarray()
    vth, dv = np.asarray(q.vth, np.int64) << 6, np.asarray(q.dv, np.int64)
    # independent loop (Lava's LIF with du = 4095): v = v·(4096 - dv) / 4096 (toward zero) + (W s(t-1)) << 6;
    # spike if v > vth << 6, subtract
    v, s_prev, x_prev, want = np.zeros(6, np.int64), np.zeros(6, np.int64), np.zeros(3, np.int64), []
    for t in range(20):
        if t == 0:
            s = np.zeros(6, np.int64)
        else:
            d = v * (4096 - dv)
            v = np.sign(d) * (np.abs(d) >> 12) + ((w_in @ x_prev + w_rec @ s_prev) << 6)
            s = (v > vth).astype(np.int64)
            v = v - s * vth
        want.append(s.astype(bool))
        s_prev, x_prev = s, frames[0, t].numpy()
    np.testing.assert_array_equal(got, np.array(want))
    assert 0 < got.sum() < got.size
