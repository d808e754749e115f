"""Core mapping: each chip limit cuts populations where a hand count says it should,
and a network too big for the chip is refused with the "over by" figure."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from neurocompile.errors import NeurocompileError
from neurocompile.ir import ConvSpec, Network, Population, Projection, RunSettings
from neurocompile.passes.map import destination_core_counts, map_to_cores
from neurocompile.profiles import load_profile


def chip(tmp_path: Path, *, neurons=4, memory=10_000, fan_in=None, fan_out=None, state_bits=None,
         weight_bits=8, index_bits=4, cores=64) -> object:
    """A neuromorphic profile with the given per-core limits (None: not stated)."""
    def entry(section, key, value, unit="count", extra=""):
        return f'[{section}.{key}]\nvalue = {value}\nunit = "{unit}"\nsource = "test"\nlabel = "specified"\n{extra}\n'

    text = '[profile]\nname = "testchip"\nkind = "neuromorphic"\n\n'
    text += entry("limits", "cores", cores) + entry("limits", "neurons_per_core", neurons)
    text += entry("limits", "synaptic_memory_bits_per_core", memory, "bit") + entry("limits", "synapse_index_bits", index_bits, "bit")
    if fan_in is not None:
        text += entry("limits", "fan_in_axons_per_core", fan_in)
    if fan_out is not None:
        text += entry("limits", "fan_out_axons_per_core", fan_out)
    if state_bits is not None:
        text += entry("limits", "shared_state_bits_per_neuron", state_bits, "bit")
    text += entry("formats", "weight_bits", weight_bits, "bit")
    text += entry("energy", "synop", 1.0, "pJ") + entry("energy", "neuron_update", 1.0, "pJ")
    path = tmp_path / "testchip.toml"
    path.write_text(text)
    return load_profile(str(path))


def ring_net() -> Network:
    """in (6) -> h (8) where hidden neuron i listens to inputs i%6 and (i+1)%6; h -> out (8) one-to-one.

    Each out neuron has a single synapse (8 bits dense, 12 sparse), so ``out`` never binds."""
    w1 = np.zeros((8, 6))
    for i in range(8):
        w1[i, i % 6] = 1.0
        w1[i, (i + 1) % 6] = 1.0
    pops = (Population("in", (6,), "input"), Population("h", (8,), "spiking"), Population("out", (8,), "readout"))
    projs = (Projection("w1", "in", "h", "dense", w1), Projection("w2", "h", "out", "dense", np.eye(8)))
    net = Network(pops, projs, ("in",), ("out",), RunSettings(timesteps=4))
    net.validate()
    return net


def chunks(net: Network, pop: str) -> list[list[int]]:
    return net.mapping["populations"][pop]["chunks"]


def test_neuron_limit(tmp_path):
    net = map_to_cores(ring_net(), chip(tmp_path, neurons=4))
    m = net.mapping
    assert chunks(net, "h") == [[0, 4], [4, 8]]
    assert m["populations"]["h"]["binding"] == "neurons per core"
    assert chunks(net, "out") == [[0, 4], [4, 8]]
    assert m["cores_used"] == 4 and m["cores_available"] == 64
    assert m["populations"]["h"]["first_core"] == 0 and m["populations"]["out"]["first_core"] == 2


def test_memory_limit_by_hand(tmp_path):
    # A run of k ring neurons uses k+1 source columns and 2k synapses:
    # dense block k*(k+1)*8 bits, sparse entries 2k*(8+4) bits; the cheaper is stored.
    # k=2: min(48, 48) = 48 <= 64;  k=3: min(96, 72) = 72 > 64  -> runs of 2.
    net = map_to_cores(ring_net(), chip(tmp_path, neurons=4, memory=64))
    assert chunks(net, "h") == [[0, 2], [2, 4], [4, 6], [6, 8]]
    rec = net.mapping["populations"]["h"]
    assert rec["binding"] == "synaptic memory per core"
    assert rec["max_memory_bits"] == 48


def test_shared_state_memory_by_hand(tmp_path):
    # 10 state bits per neuron: k=1 costs 16 + 10 = 26; k=2 costs 48 + 20 = 68 > 64 -> one neuron per core
    net = map_to_cores(ring_net(), chip(tmp_path, neurons=4, memory=64, state_bits=10))
    assert net.mapping["populations"]["h"]["cores"] == 8


def test_fan_in_limit_by_hand(tmp_path):
    # k ring neurons listen to k+1 distinct inputs: 3 axons allow k=2
    net = map_to_cores(ring_net(), chip(tmp_path, neurons=4, fan_in=3))
    assert chunks(net, "h") == [[0, 2], [2, 4], [4, 6], [6, 8]]
    rec = net.mapping["populations"]["h"]
    assert rec["binding"] == "fan-in axons per core" and rec["max_fan_in"] == 3


def test_fan_out_limit_by_hand(tmp_path):
    # each hidden neuron reaches one core of out, so needs one output axon; 2 axons per core -> runs of 2
    net = map_to_cores(ring_net(), chip(tmp_path, neurons=4, fan_out=2))
    assert chunks(net, "h") == [[0, 2], [2, 4], [4, 6], [6, 8]]
    assert net.mapping["populations"]["h"]["binding"] == "fan-out axons per core"


def test_destination_cores_follow_the_target_partition():
    net = ring_net()
    d = destination_core_counts(net, "in", {"h": [(0, 2), (2, 4), (4, 6), (6, 8)], "out": [(0, 8)]})
    # input j feeds hidden neurons j-1 and j (mod 6, plus 6 and 7 for j = 0, 1, 2)
    # in0 -> h{0,5,6}: cores {0,2,3}; in1 -> h{0,1,6,7}: {0,3}; in2 -> h{1,2,7}: {0,1,3}
    # in3 -> h{2,3}: {1}; in4 -> h{3,4}: {1,2}; in5 -> h{4,5}: {2}
    assert d.tolist() == [3, 2, 3, 1, 2, 1]


def test_conv_kernel_is_stored_once_per_channel(tmp_path):
    # conv 1x4x4 -> 2x2x2 (3x3 kernel): 9 weights x 8 bits = 72 bits per output channel.
    # 100 bits hold one channel's kernel, not two, so a core takes one channel (4 neurons).
    kernel = np.arange(1, 19, dtype=float).reshape(2, 1, 3, 3)
    pops = (Population("in", (1, 4, 4), "input"), Population("c", (2, 2, 2), "spiking"), Population("out", (2,), "readout"))
    projs = (
        Projection("k", "in", "c", "conv", kernel, conv=ConvSpec((1, 4, 4), (2, 2, 2))),
        Projection("d", "c", "out", "dense", np.ones((2, 8))),
    )
    net = Network(pops, projs, ("in",), ("out",))
    net.validate()
    mapped = map_to_cores(net, chip(tmp_path, neurons=8, memory=100))
    assert chunks(mapped, "c") == [[0, 4], [4, 8]]
    assert mapped.mapping["populations"]["c"]["max_memory_bits"] == 72


def test_a_single_neuron_that_cannot_fit(tmp_path):
    # one ring neuron needs min(1*2*8, 2*12) = 16 bits
    with pytest.raises(NeurocompileError) as e:
        map_to_cores(ring_net(), chip(tmp_path, memory=10))
    assert "neuron 0 of population 'h' alone exceeds one core's synaptic memory per core: needs 16, a core has 10 (1.6x over)" in str(e.value)


def wide_net(hidden: int) -> Network:
    """in (10) -> h (hidden), one synapse per hidden neuron: only the neuron count matters."""
    w = sp.csr_matrix((np.ones(hidden), (np.arange(hidden), np.arange(hidden) % 10)), shape=(hidden, 10))
    pops = (Population("in", (10,), "input"), Population("h", (hidden,), "readout"))
    net = Network(pops, (Projection("w", "in", "h", "sparse", w),), ("in",), ("h",))
    net.validate()
    return net


def test_too_big_for_loihi_says_by_how_much():
    net = wide_net(300 * 1024)
    with pytest.raises(NeurocompileError) as e:
        map_to_cores(net, load_profile("loihi"))
    msg = str(e.value)
    assert "needs 300 cores, loihi has 128 (2.3x over)" in msg
    assert "h 300 cores (neurons per core)" in msg
    assert "3 chips" in msg
    # and with three chips it fits
    assert map_to_cores(net, load_profile("loihi"), chips=3).mapping["cores_used"] == 300


def test_loihi2_mapping_is_pure_and_reports_unchecked_and_uncertain_limits():
    net = wide_net(20_000)
    mapped = map_to_cores(net, load_profile("loihi2"))
    assert net.mapping is None  # the input network is untouched
    m = mapped.mapping
    assert m["cores_used"] == 3  # 8192 neurons per core
    assert m["profile"] == "loihi2"
    notes = " ".join(m["notes"])
    assert "does not publish fan-in axons per core, fan-out axons per core: not checked" in notes
    assert "synaptic memory bits per core is uncertain" in notes


def test_loihi_memory_by_hand():
    # 4,096 inputs per neuron (exactly the fan-in limit), stored as a dense block of 9-bit weights
    # (8 bits + sign): 36,864 bits per neuron; 1,048,576 bits per core hold 28 of them.
    pops = (Population("in", (4096,), "input"), Population("out", (100,), "readout"))
    net = Network(pops, (Projection("w", "in", "out", "dense", np.ones((100, 4096))),), ("in",), ("out",))
    m = map_to_cores(net, load_profile("loihi")).mapping["populations"]["out"]
    assert m["chunks"] == [[0, 28], [28, 56], [56, 84], [84, 100]]
    assert m["binding"] == "synaptic memory per core"
    assert m["max_memory_bits"] == 28 * 4096 * 9 and m["max_fan_in"] == 4096


def test_loihi_fan_in_limit_refuses_a_too_wide_dense_neuron():
    pops = (Population("in", (5000,), "input"), Population("out", (2,), "readout"))
    net = Network(pops, (Projection("w", "in", "out", "dense", np.ones((2, 5000))),), ("in",), ("out",))
    with pytest.raises(NeurocompileError, match=r"fan-in axons per core: needs 5,000, a core has 4,096 \(1.2x over\)"):
        map_to_cores(net, load_profile("loihi"))


def test_spreading_over_more_cores_shortens_the_busiest_core():
    from neurocompile.report import count_ops, estimate_energy

    net = wide_net(20_000)
    profile = load_profile("loihi2")
    packed, spread = map_to_cores(net, profile), map_to_cores(net, profile, max_neurons_per_core=1000)
    assert spread.mapping["cores_used"] == 20
    assert spread.mapping["populations"]["h"]["binding"] == "neurons per core"
    latency = [estimate_energy(n, count_ops(n, {"in": 100.0}, 10), profile)["latency_s"] for n in (packed, spread)]
    assert latency[1] < latency[0]


def test_ann_profile_has_no_cores():
    with pytest.raises(NeurocompileError, match="cmos45_int8.*no cores"):
        map_to_cores(ring_net(), load_profile("cmos45_int8"))
