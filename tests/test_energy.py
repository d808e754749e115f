"""Operation counts and energy, checked against hand computations on a 2-layer network.

The joules are recomputed here from the raw TOML (read with tomllib, not through
neurocompile.profiles), so a unit slip in the loader would show up.
"""
from __future__ import annotations

import tomllib

import numpy as np
import pytest
import scipy.sparse as sp

from neurocompile.cores import Routes
from neurocompile.errors import NeurocompileError
from neurocompile.ir import Network, Population, Projection, RunSettings
from neurocompile.passes.map import map_to_cores, placements
from neurocompile.profiles import LABEL_FACTORS, load_profile, load_profiles, profiles_dir
from neurocompile.report import count_ops, energy_table, estimate_energy

# in (4) --W1--> h (3, spiking) --W2--> out (2, readout)
W1 = np.array([[1.0, 0.0, 2.0, 0.0],
               [0.0, 0.0, 3.0, 1.0],
               [1.0, 1.0, 0.0, 0.0]])  # synapses per input neuron: 2, 1, 2, 1
W2 = np.array([[1.0, -1.0, 0.0],
               [0.0, 2.0, 2.0]])  # synapses per hidden neuron: 1, 2, 1
STEPS = 10
IN_EVENTS = np.array([10.0, 0.0, 5.0, 5.0])  # 20 nonzero input frames per sample
H_SPIKES = np.array([3.0, 4.0, 1.0])  # 8 spikes per sample

PJ, NS = 1e-12, 1e-9
UNIT = {"pJ": 1e-12, "nJ": 1e-9, "ns": 1e-9, "us": 1e-6, "mW": 1e-3, "W": 1.0}


def two_layer(sparse_w2: bool = False, encoding: str = "direct") -> Network:
    pops = (
        Population("in", (4,), "input"),
        Population("h", (3,), "spiking"),
        Population("out", (2,), "readout"),
    )
    projs = (
        Projection("w1", "in", "h", "dense", W1),
        Projection("w2", "h", "out", "sparse" if sparse_w2 else "dense", sp.csr_matrix(W2) if sparse_w2 else W2),
    )
    net = Network(pops, projs, ("in",), ("out",), settings=RunSettings(timesteps=8, encoding=encoding))
    net.validate()
    return net


def raw(name: str) -> dict:
    """A profile's constants in SI, straight from its TOML."""
    doc = tomllib.loads((profiles_dir() / f"{name}.toml").read_text())
    return {f"{s}.{k}": v["value"] * UNIT.get(v["unit"], 1.0) for s in ("energy", "time") for k, v in doc.get(s, {}).items()}


# -- counting -------------------------------------------------------------------------------
def test_count_ops_exact_per_neuron_spikes():
    ops = count_ops(two_layer(), {"in": IN_EVENTS, "h": H_SPIKES}, STEPS)
    # w1: 10*2 + 0*1 + 5*2 + 5*1 = 35 ;  w2: 3*1 + 4*2 + 1*1 = 12
    assert ops["per_projection"]["w1"]["synops"] == 35
    assert ops["per_projection"]["w2"]["synops"] == 12
    assert ops["synops"] == 47
    assert ops["effective_macs"] == 35  # direct input: graded payloads
    assert ops["effective_acs"] == 12
    assert ops["neuron_updates"] == (3 + 2) * STEPS
    assert ops["dense_macs"] == 6 + 4
    assert ops["parameters"] == 10
    assert ops["connection_sparsity"] == pytest.approx(1 - 10 / 18)
    assert ops["input_events"] == 20
    assert ops["spikes"] == 8
    assert ops["activation_sparsity"] == pytest.approx(1 - 8 / (3 * STEPS))
    assert ops["per_population"]["h"]["rate_per_step"] == pytest.approx(8 / 30)


def test_count_ops_totals_assume_even_spread():
    ops = count_ops(two_layer(), {"in": 20.0, "h": 8.0}, STEPS)
    assert ops["per_projection"]["w1"]["synops"] == pytest.approx(20 * 6 / 4)
    assert ops["per_projection"]["w2"]["synops"] == pytest.approx(8 * 4 / 3)


def test_rate_encoding_makes_every_synop_an_accumulate():
    ops = count_ops(two_layer(encoding="rate"), {"in": IN_EVENTS, "h": H_SPIKES}, STEPS)
    assert ops["effective_macs"] == 0 and ops["effective_acs"] == 47


def test_sparse_projection_counts_like_dense():
    a = count_ops(two_layer(), {"in": IN_EVENTS, "h": H_SPIKES}, STEPS)
    b = count_ops(two_layer(sparse_w2=True), {"in": IN_EVENTS, "h": H_SPIKES}, STEPS)
    assert a["synops"] == b["synops"] and a["dense_macs"] == b["dense_macs"]


def test_missing_or_misshapen_spike_counts_are_refused():
    net = two_layer()
    with pytest.raises(NeurocompileError, match="no entry for population 'in'"):
        count_ops(net, {"h": 8.0}, STEPS)
    with pytest.raises(NeurocompileError, match="has 2 entries; population 'h' has 3"):
        count_ops(net, {"in": 20.0, "h": np.ones(2)}, STEPS)
    with pytest.raises(NeurocompileError, match="steps_per_sample"):
        count_ops(net, {"in": 20.0, "h": 8.0}, 0)


# -- energy ----------------------------------------------------------------------------------
def by_hand(name: str, chips_used: int = 1) -> dict:
    """The two-layer net's estimate on one profile, computed here from the raw TOML.

    Placement: h on core 0 and out on core 1, both in tile 0; the host feeds tile 0,
    so all 28 messages (20 input events to h's one core, 8 spikes to out's) stay in the tile.
    Events spread evenly (the pipeline's totals): each h neuron meets 2 of the 4 inputs'
    5 events, scaled to the exact 35 synops: 35/3 per neuron, lambda = 7/6 per step;
    each out neuron meets 2 of h's 8/3 spikes, scaled to 12: 6 per neuron, lambda = 0.6.
    An update is active with probability 1 - exp(-lambda).
    """
    c = raw(name)
    act_h, act_out = 30 * (1 - np.exp(-7 / 6)), 20 * (1 - np.exp(-0.6))
    idle_h, idle_out = 30 - act_h, 20 - act_out
    core_h = (35 * c["time.synop"] + act_h * c["time.neuron_update"] + idle_h * c["time.neuron_update_idle"]
              + 8 * c["time.spike_message"]) / STEPS
    core_out = (12 * c["time.synop"] + act_out * c["time.neuron_update"] + idle_out * c["time.neuron_update_idle"]) / STEPS
    step = max(core_h, core_out) + c["time.barrier_sync"] + chips_used * c["time.x86_step"]
    step += 20 / STEPS * c.get("time.input_event", 0.0)
    energy = {
        "synop": 47 * c["energy.synop"],
        "neuron_update": (act_h + act_out) * c["energy.neuron_update"],
        "neuron_update_idle": (idle_h + idle_out) * c["energy.neuron_update_idle"],
        "spike_message": 28 * c["energy.spike_message"],
        "x86_step": STEPS * chips_used * c["energy.x86_step"],
        "static": chips_used * c["energy.static_power"] * STEPS * step,
    }
    if "energy.input_event" in c:
        energy["input_event"] = 20 * c["energy.input_event"]
    return {"core_h": core_h, "core_out": core_out, "step": step, "latency": STEPS * step, "energy": energy}


def test_loihi_energy_by_hand():
    """The cost model's terms on a placement: idle updates, tile messages, embedded x86 and static power.

    Changed with the cost model (issue 11): neuron updates split into active (81 pJ) and idle (52 pJ),
    the embedded x86's step program (calibrated on the LSNN run) on every step, and its time in the step.
    """
    net = two_layer()
    ops = count_ops(net, {"in": IN_EVENTS, "h": H_SPIKES}, STEPS)
    profile = load_profile("loihi")
    est = estimate_energy(net, ops, profile, placement=placements(net, [profile])["loihi"])
    hand = by_hand("loihi")
    assert hand["core_h"] > hand["core_out"]  # h's core is the slowest
    assert est["time_per_step_s"] == pytest.approx(hand["step"])
    assert est["latency_s"] == pytest.approx(hand["latency"])
    assert est["breakdown"] == pytest.approx(hand["energy"])
    assert est["joules_per_sample"] == pytest.approx(sum(hand["energy"].values()))
    assert est["traffic"] == {"within_tile": 28.0, "mesh": 0.0, "mesh_hops": 0.0, "between_chips": 0.0}
    assert est["counts"]["spike_message"] == 28 and est["counts"]["mesh_hop"] == 0
    # the range's bottom: every constant at its label's low factor (pre-silicon 0.5, estimated 0.25)
    lo_pre, lo_est = LABEL_FACTORS["pre-silicon"][0], LABEL_FACTORS["estimated"][0]
    low_dynamic = (lo_pre * sum(v for k, v in hand["energy"].items() if k not in ("x86_step", "static"))
                   + lo_est * hand["energy"]["x86_step"])
    assert est["estimates"]["dynamic"]["range"][0] == pytest.approx(low_dynamic)
    assert est["range_j"][0] < est["joules_per_sample"] < est["range_j"][1]
    assert "no energy.input_event" in " ".join(est["notes"])  # loihi states no input-event cost: said, not hidden
    assert est["provenance"]["energy.synop"]["label"] == "pre-silicon"
    assert est["provenance"]["energy.static_power"]["label"] == "measured"
    assert est["labels"] == ["estimated", "measured", "pre-silicon"] and not est["uncertain"]  # estimated: the x86 step
    assert est["fits"] is True and est["cores_used"] == 2 and est["chips_used"] == 1
    assert "mapped onto loihi for this estimate: 2 cores on 1 chip(s)" in est["notes"]


def test_loihi2_charges_input_events_and_is_marked_estimated():
    net = two_layer()
    ops = count_ops(net, {"in": IN_EVENTS, "h": H_SPIKES}, STEPS)
    profile = load_profile("loihi2")
    est = estimate_energy(net, ops, profile, placement=placements(net, [profile])["loihi2"])
    hand = by_hand("loihi2")
    assert est["latency_s"] == pytest.approx(hand["latency"])
    assert est["breakdown"] == pytest.approx(hand["energy"])
    assert est["breakdown"]["input_event"] == pytest.approx(20 * 9.1e-9)
    assert est["breakdown"]["static"] == pytest.approx(0.232 * hand["latency"])
    assert "estimated" in est["labels"] and est["uncertain"]
    assert est["provenance"]["energy.input_event"]["uncertain"] is True
    # how the estimate was obtained travels with it
    assert est["provenance"]["calibration.measured_dynamic_energy"]["label"] == "measured"
    assert est["provenance"]["derivation.energy_scale"]["value"] == 1.0


def test_multi_chip_profiles_charge_the_chips_used_not_the_system():
    net = two_layer()
    ops = count_ops(net, {"in": IN_EVENTS, "h": H_SPIKES}, STEPS)
    profiles = [load_profile(n) for n in ("loihi2", "kapoho_point", "hala_point")]
    table = energy_table(net, ops, profiles, placements(net, profiles))
    assert table["hala_point"]["joules_per_sample"] == pytest.approx(table["loihi2"]["joules_per_sample"])
    assert table["hala_point"]["chips_used"] == 1
    assert "not the system's 1,152" in " ".join(table["hala_point"]["notes"])
def test_ann_baselines_by_hand():
    net = two_layer()
    ops = count_ops(net, {"in": IN_EVENTS, "h": H_SPIKES}, STEPS)
    table = energy_table(net, ops, [load_profile("cmos45_fp32"), load_profile("cmos45_int8")])
    # 10 MACs; 10 stored weights read once: fp32 -> 10*32/64 = 5 reads, int8 -> 10*8/64 = 1.25 reads of 10 pJ
    assert table["cmos45_fp32"]["joules_per_sample"] == pytest.approx(10 * 4.6 * PJ + 5 * 10 * PJ)
    assert table["cmos45_int8"]["joules_per_sample"] == pytest.approx(10 * 0.23 * PJ + 1.25 * 10 * PJ)
    assert table["cmos45_fp32"]["latency_s"] is None
    assert "static" not in table["cmos45_fp32"]["breakdown"]


def test_mapping_changes_spike_messages(tmp_path):
    """With two neurons per core, h spans two cores; input neuron 0 reaches both, so it sends 2 messages per event."""
    src = (profiles_dir() / "loihi.toml").read_text()
    tiny = src.replace('name = "loihi"', 'name = "tiny"').replace("value = 1024\nunit = \"neurons\"", "value = 2\nunit = \"neurons\"")
    (tmp_path / "tiny.toml").write_text(tiny)
    profile = load_profile(str(tmp_path / "tiny.toml"))
    assert profile.limit("neurons_per_core") == 2
    net = map_to_cores(two_layer(), profile)
    assert net.mapping["populations"]["h"]["chunks"] == [[0, 2], [2, 3]]
    ops = count_ops(net, {"in": 20.0, "h": 8.0}, STEPS)
    est = estimate_energy(net, ops, profile)
    # destination cores per input neuron: col0 -> rows {0,2} = 2 cores; the others 1 each
    assert est["counts"]["spike_message"] == pytest.approx(20 * (2 + 1 + 1 + 1) / 4 + 8 * 1)
    assert not any("for this estimate" in n for n in est["notes"])  # the network's own mapping was used


def test_a_network_that_does_not_fit_is_still_costed_and_says_so():
    # 5,000 inputs into one neuron: over Loihi's 4,096 fan-in axons, fine on Loihi 2 (not published, not checked)
    pops = (Population("in", (5000,), "input"), Population("out", (2,), "readout"))
    net = Network(pops, (Projection("w", "in", "out", "dense", np.ones((2, 5000))),), ("in",), ("out",))
    ops = count_ops(net, {"in": 100.0}, STEPS)
    profiles = [load_profile("loihi"), load_profile("loihi2"), load_profile("cmos45_int8")]
    places = placements(net, profiles)
    assert set(places) == {"loihi", "loihi2"}  # ANN baselines have no cores
    assert places["loihi"]["cores_used"] == 1  # filled to the neuron limit: 2 neurons, one core
    table = energy_table(net, ops, profiles, places)
    assert table["loihi"]["fits"] is False
    assert any(n.startswith("does not fit loihi: ") and "fan-in" in n for n in table["loihi"]["notes"])
    assert table["loihi"]["joules_per_sample"] > 0
    assert table["loihi2"]["fits"] is True
    assert table["cmos45_int8"]["fits"] is None


def test_energy_table_covers_every_profile():
    net = two_layer()
    ops = count_ops(net, {"in": IN_EVENTS, "h": H_SPIKES}, STEPS)
    profiles = load_profiles()
    table = energy_table(net, ops, profiles, placements(net, profiles))
    assert set(table) == set(profiles)
    for name, e in table.items():
        assert e["joules_per_sample"] == pytest.approx(sum(e["breakdown"].values()))
        for key in e["provenance"]:
            assert e["provenance"][key]["source"]


def test_the_report_costs_the_placement_it_is_given_and_maps_nothing_itself(monkeypatch):
    """The energy model reads a placement; without one it does not run the mapper (it has no import of it)."""
    import neurocompile.passes.map as mapping

    net, profile = two_layer(), load_profile("loihi")
    ops = count_ops(net, {"in": IN_EVENTS, "h": H_SPIKES}, STEPS)
    given = placements(net, [profile])["loihi"]
    # a placement that puts every input neuron's synapses on 3 cores of its tile triples the input's messages
    r = given["routes"]["in"]
    tripled = {**given, "routes": {**given["routes"], "in": Routes(r.tile * 3, r.mesh * 3, r.hops * 3, r.chip * 3)}}
    a = estimate_energy(net, ops, profile, placement=given)["counts"]["spike_message"]
    b = estimate_energy(net, ops, profile, placement=tripled)["counts"]["spike_message"]
    assert b - a == pytest.approx(2 * float(np.sum(IN_EVENTS)))

    def no_mapping(*args, **kwargs):
        raise AssertionError("the report ran the mapping pass")

    monkeypatch.setattr(mapping, "map_to_cores", no_mapping)
    est = estimate_energy(net, ops, profile)
    assert est["fits"] is None and est["cores_used"] == 2
    assert any(n.startswith("not mapped onto loihi: ") for n in est["notes"])
