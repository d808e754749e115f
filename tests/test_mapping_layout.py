"""Placement on tiles, the mesh and chips, spike routes, the "which profile would fit" line,
and one partition shared by profiles with the same per-core limits (hand-computed small cases)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import neurocompile.passes.map as mapping
from neurocompile.cores import MeshLayout, routes
from neurocompile.errors import NeurocompileError
from neurocompile.ir import Network, Population, Projection, RunSettings
from neurocompile.passes.map import map_to_cores, placements
from neurocompile.profiles import load_profile


def system(tmp_path: Path, *, neurons=2, cores=2, per_tile=2, tiles_x=1, tiles_y=1, chips=2):
    def entry(section, key, value, unit="count"):
        return f'[{section}.{key}]\nvalue = {value}\nunit = "{unit}"\nsource = "test"\nlabel = "specified"\n\n'

    text = '[profile]\nname = "testsys"\nkind = "neuromorphic"\n\n'
    for key, value in (("cores", cores), ("neurons_per_core", neurons), ("cores_per_tile", per_tile),
                       ("mesh_tiles_x", tiles_x), ("mesh_tiles_y", tiles_y), ("chips", chips)):
        text += entry("limits", key, value)
    text += entry("limits", "synaptic_memory_bits_per_core", 100_000, "bit")
    text += entry("formats", "weight_bits", 8, "bit") + entry("energy", "synop", 1.0, "pJ") + entry("energy", "neuron_update", 1.0, "pJ")
    (tmp_path / "testsys.toml").write_text(text)
    return load_profile(str(tmp_path / "testsys.toml"))


def two_chip_net() -> Network:
    """in (2) -all-> h (4) -identity-> out (4)."""
    pops = (Population("in", (2,), "input"), Population("h", (4,), "spiking"), Population("out", (4,), "readout"))
    projs = (Projection("w1", "in", "h", "dense", np.ones((4, 2))), Projection("w2", "h", "out", "dense", np.eye(4)))
    net = Network(pops, projs, ("in",), ("out",), RunSettings(timesteps=4))
    net.validate()
    return net


def test_layout_snakes_tiles_and_chips():
    lay = MeshLayout(cores_per_tile=2, tiles_x=2, tiles_y=2, cores_per_chip=8, chips=4)
    chip, tile, x, y = lay.place(np.array([0, 1, 2, 4, 6, 8, 16, 24, -1]))
    assert lay.chips_x == 2
    assert chip.tolist() == [0, 0, 0, 0, 0, 1, 2, 3, 0]
    assert tile.tolist() == [0, 0, 1, 2, 3, 4, 8, 12, 0]  # the host (-1) feeds chip 0's first tile
    # tiles 0 1 / 3 2 (snake); chips 0 1 / 3 2
    assert list(zip(x.tolist(), y.tolist())) == [(0, 0), (0, 0), (1, 0), (1, 1), (0, 1), (2, 0), (2, 2), (0, 2), (0, 0)]
    assert lay.chips_used(17) == 3


def test_two_chip_mapping_and_routes_by_hand(tmp_path):
    # 2 neurons per core, 2 cores per chip: h on chip 0 (cores 0, 1; one tile), out on chip 1 (cores 2, 3)
    profile = system(tmp_path)
    m = map_to_cores(two_chip_net(), profile).mapping
    assert m["cores_used"] == 4 and m["chips_used"] == 2 and m["tiles_used"] == 2
    assert [(c["core"], c["population"], c["chip"], c["x"]) for c in m["cores"]] == [
        (0, "h", 0, 0), (1, "h", 0, 0), (2, "out", 1, 1), (3, "out", 1, 1)]
    assert [c["neurons_per_core"] for c in m["cores"]] == [2, 2, 2, 2]
    place = placements(two_chip_net(), [profile])["testsys"]
    # each input reaches both of h's cores, in the host's tile
    r_in = place["routes"]["in"]
    assert (r_in.tile.tolist(), r_in.mesh.tolist()) == ([2, 2], [0, 0])
    # each h neuron reaches one out core, on the other chip, one hop east
    r_h = place["routes"]["h"]
    assert (r_h.tile.tolist(), r_h.mesh.tolist(), r_h.hops.tolist(), r_h.chip.tolist()) == ([0] * 4, [1] * 4, [1] * 4, [1] * 4)


def test_traffic_is_counted_in_the_energy_estimate(tmp_path):
    from neurocompile.report import count_ops, estimate_energy

    profile = system(tmp_path)
    net = map_to_cores(two_chip_net(), profile)
    est = estimate_energy(net, count_ops(net, {"in": 6.0, "h": 10.0}, 8), profile)
    # input: 6 events x 2 tile messages; h: 10 spikes x 1 mesh message of 1 hop, between chips
    assert est["traffic"] == {"within_tile": 12.0, "mesh": 10.0, "mesh_hops": 10.0, "between_chips": 10.0}


def test_a_network_too_big_names_the_profile_that_fits():
    # 300 x 1,024 neurons with one synapse each: 300 Loihi cores; Loihi 2 holds 8,192 per core: 38 cores
    n = 300 * 1024
    w = sp.csr_matrix((np.ones(n), (np.arange(n), np.arange(n) % 10)), shape=(n, 10))
    net = Network((Population("in", (10,), "input"), Population("h", (n,), "readout")),
                  (Projection("w", "in", "h", "sparse", w),), ("in",), ("h",))
    with pytest.raises(NeurocompileError) as e:
        map_to_cores(net, load_profile("loihi"))
    msg = str(e.value)
    assert "\n" not in msg
    assert "needs 300 cores, loihi has 128 (2.3x over)" in msg and "loihi2 would fit (38 of 128 cores)" in msg


def test_a_neuron_too_wide_for_loihi_names_loihi2():
    pops = (Population("in", (5000,), "input"), Population("out", (2,), "readout"))
    net = Network(pops, (Projection("w", "in", "out", "dense", np.ones((2, 5000))),), ("in",), ("out",))
    with pytest.raises(NeurocompileError, match=r"\(1.2x over\) on loihi; loihi2 would fit \(1 of 128 cores\)"):
        map_to_cores(net, load_profile("loihi"))


def test_kapoho_point_spreads_over_two_chips():
    # 130 x 8,192 neurons: 130 Loihi 2 cores, over one chip's 128; Kapoho Point's 8 chips hold it on 2
    n = 130 * 8192
    w = sp.csr_matrix((np.ones(n), (np.arange(n), np.arange(n) % 10)), shape=(n, 10))
    net = Network((Population("in", (10,), "input"), Population("h", (n,), "readout")),
                  (Projection("w", "in", "h", "sparse", w),), ("in",), ("h",))
    with pytest.raises(NeurocompileError, match=r"needs 130 cores, loihi2 has 128 .*kapoho_point would fit \(130 of 1,024 cores\)"):
        map_to_cores(net, load_profile("loihi2"))
    m = map_to_cores(net, load_profile("kapoho_point")).mapping
    assert (m["cores_used"], m["chips_used"], m["cores_available"]) == (130, 2, 1024)


def test_profiles_with_the_same_core_share_one_partition(monkeypatch):
    calls = []
    real = mapping.partition
    monkeypatch.setattr(mapping, "partition", lambda *a, **k: calls.append(1) or real(*a, **k))
    net = two_chip_net()
    profiles = [load_profile(n) for n in ("loihi2", "kapoho_point", "hala_point")]
    out = placements(net, profiles)
    assert len(calls) == 1 and {p["cores_used"] for p in out.values()} == {2}
    mapped = map_to_cores(net, profiles[0])
    calls.clear()
    placements(mapped, profiles)  # mapped for loihi2 already: its partition serves all three
    assert calls == []


def test_routes_need_a_placed_source():
    net = two_chip_net()
    r = routes(net, "h", {"h": [(0, 4)], "out": [(0, 4)]}, MeshLayout(4, 1, 1, 4, 1))
    assert r.tile.tolist() == [1, 1, 1, 1] and r.mesh.sum() == 0


def test_profiles_state_their_tiles_with_provenance():
    from neurocompile.cores import mesh_layout

    loihi, loihi2, hala = (load_profile(n) for n in ("loihi", "loihi2", "hala_point"))
    assert mesh_layout(loihi) == MeshLayout(4, 8, 4, 128, 1)
    assert loihi.limits["cores_per_tile"].label == "specified"
    assert loihi2.limits["cores_per_tile"].label == "estimated" and loihi2.limits["cores_per_tile"].uncertain
    assert mesh_layout(hala) == MeshLayout(4, 8, 4, 122, 1152)  # Loihi 2's tiles, 122 cores per chip
    assert mesh_layout(hala).chips_x == 34
