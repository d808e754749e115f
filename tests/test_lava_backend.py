"""LavaBackend on tiny networks whose results are computed by hand.

Units (lava/proc/lif/models.py, fixed point): with du = 4095 a neuron's u is
this step's input ``a << 6``; v adds u each step (dv = 0) and a spike needs
``v > vth << 6``. A projection's output reaches its target one step later,
and step 1 of every period is a reset step, so a period of P steps gives a
first-layer neuron P - 1 steps of input and the layer after it P - 2.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

pytest.importorskip("lava")
from neurocompile.backends import Backend, get_backend  # noqa: E402
from neurocompile.errors import NeurocompileError  # noqa: E402
from nc_testutils import fixed_network  # noqa: E402
from neurocompile.ir import Network, NeuronFixed, Population, Projection, SynapseFixed  # noqa: E402
from neurocompile_lava.backend import LavaBackend  # noqa: E402
from neurocompile_lava.describe import describe_lowering  # noqa: E402
from neurocompile.sim.fixed_point import lava_weights  # noqa: E402
from neurocompile_lava.plan import plan_lowering  # noqa: E402

pytestmark = pytest.mark.lava


def quant(n: int, vth: int, bias: int = 0, bias_exp: int = 0, du: int = 4095, dv: int = 0) -> NeuronFixed:
    return NeuronFixed(vth=vth, bias_mant=np.full(n, bias, np.int64), bias_exp=bias_exp, du=du, dv=dv)


def dense(name: str, src: str, dst: str, w, exp: int = 0) -> tuple[Projection, SynapseFixed]:
    w = np.asarray(w, np.int64)
    return Projection(name, src, dst, "dense", w.astype(float)), SynapseFixed(w, exp)


def with_neuron(net: Network, name: str, q: NeuronFixed) -> Network:
    """``net`` with population ``name``'s integer parameters replaced."""
    return net.replace(fixed=dataclasses.replace(net.fixed, neurons={**net.fixed.neurons, name: q}))


def two_inputs_one_neuron(w, vth: int, reset: str = "subtract", exp: int = 0) -> Network:
    """2 inputs → 1 spiking neuron → 1 readout (weight 1): the readout's v counts the neuron's spikes."""
    pops = (
        Population("in", (2,), "input"),
        Population("h", (1,), "spiking", reset=reset),
        Population("out", (1,), "readout"),
    )
    (p1, s1), (p2, s2) = dense("w1", "in", "h", [w], exp), dense("w2", "h", "out", [[1]])
    return fixed_network(pops, (p1, p2), neurons={"h": quant(1, vth), "out": quant(1, 1000, bias=77)},  # readout bias: decoder only
                         synapses={"w1": s1, "w2": s2})


def ideal_if_count(drive: int, steps: int, vth: int) -> int:
    """Spikes of an ideal integrate-and-fire neuron (subtractive reset, strict v > θ) after ``steps`` of constant drive."""
    total, theta = drive * steps, vth << 6
    return max(math.ceil(total / theta) - 1, 0)


def test_is_a_registered_backend(backend):
    assert isinstance(backend, Backend)
    assert isinstance(get_backend("lava"), LavaBackend)
    ok, platform = backend.available()
    assert ok and "Loihi2SimCfg(select_tag='fixed_pt')" in platform and "lava-loihi" in platform


def test_constant_drive_gives_the_ideal_if_count_and_resets_per_sample(backend):
    P, vth = 20, 16
    net = two_inputs_one_neuron([3, 2], vth)  # excitatory: no truncation, drive 5 → u = 320
    frames = np.ones((3, P, 2), np.int64)
    frames[1] = 0  # a silent sample between two driven ones: no state may leak across periods
    r = backend.run(net, frames, record=True)
    expect = ideal_if_count(5 << 6, P - 1, vth)
    assert expect == 5
    np.testing.assert_array_equal(r.spike_counts["h"][:, 0], [expect, 0, expect])
    assert r.spike_counts["h"].dtype == np.int64 and set(r.spike_counts) == {"h"}
    # the readout integrates the spikes one step later, never fires, and has no on-chip bias
    assert r.readout.dtype == np.int64 and r.readout.shape == (3, 1)
    trains = r.spike_trains["h"]
    assert trains.shape == (3, P, 1) and trains.dtype == bool
    assert not trains[:, 0].any()  # reset step: nothing is sent
    delivered = trains[:, 1 : P - 1, 0].sum(1)  # spikes of steps 2..P-1 reach the readout by step P
    np.testing.assert_array_equal(r.readout[:, 0], delivered * 64)
    assert r.steps == 3 * P and r.wall_s > 0 and any("steps/s" in n for n in r.notes)


def test_zero_reset_loses_the_remainder(backend):
    P, vth = 20, 16
    r = backend.run(two_inputs_one_neuron([3, 2], vth, reset="zero"), np.ones((1, P, 2), np.int64))
    steps_per_spike = math.ceil(((vth << 6) + 1) / (5 << 6))  # v > 1024 needs 4 steps of 320
    assert r.spike_counts["h"][0, 0] == (P - 1) // steps_per_spike == 4


def test_mixed_sign_weights_get_lavas_even_truncation(backend):
    """[5, -2] is mixed-sign: Lava's Dense floors it to [4, -2] (num_weight_bits=8), drive 2, not 3."""
    P, vth = 10, 5
    w = np.array([[5, -2]])
    np.testing.assert_array_equal(lava_weights(w), [[4, -2]])
    r = backend.run(two_inputs_one_neuron(w[0], vth), np.ones((1, P, 2), np.int64))
    assert r.spike_counts["h"][0, 0] == ideal_if_count(2 << 6, P - 1, vth) == 3
    assert ideal_if_count(3 << 6, P - 1, vth) == 5  # what exact weights would have given
    rows = {d["process"]: d for d in describe_lowering(two_inputs_one_neuron(w[0], vth), np.ones((1, P, 2), np.int64))}
    assert "1 odd mixed-sign weight" in rows["Dense"]["note"]


def test_graded_input_and_weight_exponent(backend):
    """Direct (graded) input: the payload multiplies the weight; weight_exp shifts the sum."""
    P = 6
    pops = (Population("in", (2,), "input"), Population("out", (2,), "readout"))
    pr, sf = dense("w", "in", "out", [[2, 0], [3, 1]], exp=-1)
    net = fixed_network(pops, (pr,), neurons={"out": quant(2, 1000, du=4095, dv=0)}, synapses={"w": sf})
    frames = np.zeros((2, P, 2), np.int64)
    frames[0, :, 0] = 7  # 7·2 >> 1 = 7 ;  7·3 >> 1 = 10
    frames[1, :, 1] = 200  # 200·1 >> 1 = 100
    r = backend.run(net, frames)
    per_step = np.array([[7, 10], [0, 100]])
    np.testing.assert_array_equal(r.readout, per_step * (P - 1) * 64)
    assert r.spike_counts == {}
    assert plan_lowering(net, frames).synapses[0].num_message_bits == 8


def test_bad_networks_are_rejected_before_running(backend):
    net = two_inputs_one_neuron([3, 2], 16)
    frames = np.ones((1, 5, 2), np.int64)
    with pytest.raises(NeurocompileError, match="shape"):
        backend.run(net, np.ones((1, 5, 3)))
    float_w = net.replace(fixed=dataclasses.replace(net.fixed, synapses={**net.fixed.synapses, "w1": SynapseFixed(np.array([[0.7, 1.0]]))}))
    with pytest.raises(NeurocompileError, match="integers"):
        backend.run(float_w, frames)
    with pytest.raises(NeurocompileError, match=r"\[0, 255\]"):
        backend.run(two_inputs_one_neuron([300, 2], 16), frames)
    unquantised = net.replace(fixed=None)
    with pytest.raises(NeurocompileError, match="not quantised"):
        backend.run(unquantised, frames)
    part = net.replace(fixed=dataclasses.replace(net.fixed, neurons={"out": net.neuron_fixed("out")}))  # h has no integers
    with pytest.raises(NeurocompileError, match="quantize"):
        backend.run(part, frames)
    big_bias = with_neuron(net, "h", quant(1, 16, bias=40000))
    with pytest.raises(NeurocompileError, match="16 bits"):
        backend.run(big_bias, frames)
    two_biases = with_neuron(net, "h", NeuronFixed(vth=16, bias_mant=np.array([1, 2]), bias_exp=0))
    for b in (backend, get_backend("reference")):  # one shared check, both backends
        with pytest.raises(NeurocompileError, match="2 values for 1 neurons"):
            b.run(two_biases, frames)


def test_describe_lowering_names_every_process_and_its_loihi2_status():
    net = two_inputs_one_neuron([3, 2], 16)
    rows = describe_lowering(net, np.ones((1, 5, 2), np.int64))
    by = {r["process"]: r for r in rows}
    assert set(by) == {"RingBuffer", "PeriodicLIF", "Dense"}
    assert by["PeriodicLIF"]["count"] == 2 and by["PeriodicLIF"]["stock_loihi2"] is False
    assert by["Dense"]["count"] == 2 and by["Dense"]["stock_loihi2"] is True
    assert all(isinstance(r["note"], str) and r["note"] for r in rows)


def test_floating_point_models_match_fixed_point_where_the_arithmetic_is_exact(backend):
    """Lava's float LIF conventions (u = u(1-du) + a_in, v = v(1-dv) + u + bias) on the same network.

    du = 4095 ↔ 1.0 and dv = 0 ↔ 0.0 are exact, and every value is a small
    integer, so counts and (rescaled) readouts must equal the fixed-point run.
    """
    net = two_inputs_one_neuron([3, 2], 16)
    frames = np.ones((2, 20, 2), np.int64)
    frames[1, ::3] = 0
    fixed = backend.run(net, frames, record=True)
    flt = LavaBackend(precision="floating_pt").run(net, frames, record=True)
    assert "floating_pt" in flt.platform
    np.testing.assert_array_equal(flt.spike_counts["h"], fixed.spike_counts["h"])
    np.testing.assert_array_equal(flt.spike_trains["h"], fixed.spike_trains["h"])
    np.testing.assert_array_equal(flt.readout, fixed.readout)


def test_hardware_without_lava_loihi_is_refused_with_a_reason():
    from neurocompile_lava.backend import lava_loihi_installed

    if lava_loihi_installed():
        pytest.skip("lava-loihi is installed here")
    ok, why = LavaBackend(hardware=True).available()
    assert not ok and "lava-loihi" in why
    with pytest.raises(NeurocompileError, match="lava-loihi"):
        LavaBackend(hardware=True).run(two_inputs_one_neuron([3, 2], 16), np.ones((1, 5, 2), np.int64))
