"""The Lava backend and the reference simulator agree bit for bit on random quantised networks.

Each network mixes dense, sparse and conv projections, a skip connection
(two projections summed at one population), subtractive and zero reset,
current and voltage leaks, biases with exponents, odd mixed-sign weights
(truncated by Lava), and drives some populations hard enough to wrap the
24-bit ``u`` and saturate ``v``. Spike trains, spike counts and readouts must
be identical.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings, strategies as st

pytest.importorskip("lava")
from neurocompile.backends import reference  # noqa: E402
from neurocompile.ir_geometry import conv_output_hw  # noqa: E402
from nc_testutils import fixed_network, random_neuron_fixed as _quant, random_projection as _proj  # noqa: E402
from neurocompile.ir import ConvSpec, Network, NeuronFixed, Population, Projection, SynapseFixed  # noqa: E402
from neurocompile.sim.fixed_point import lava_weights  # noqa: E402

pytestmark = pytest.mark.lava

N_SEEDS, SAMPLES, PERIOD = 8, 3, 14
IN_SHAPE = (1, 4, 4)
H1_SHAPE = (2, 4, 4)  # conv 3×3, padding 1


def random_network(seed: int, n2: int = 12, n3: int = 8, n_out: int = 4, recurrent: bool = False) -> Network:
    rng = np.random.default_rng(seed)
    hot = {name: bool(rng.random() < 0.35) for name in ("h1", "h2", "h3")}
    resets = {name: str(rng.choice(["subtract", "zero"])) for name in ("h1", "h2", "h3")}
    n_in, n1 = 16, int(np.prod(H1_SHAPE))
    pops = (
        Population("in", IN_SHAPE, "input"),
        Population("h1", H1_SHAPE, "spiking", reset=resets["h1"]),
        Population("h2", (n2,), "spiking", reset=resets["h2"]),
        Population("h3", (n3,), "spiking", reset=resets["h3"]),
        Population("out", (n_out,), "readout"),
    )
    neurons = {"h1": _quant(rng, n1, hot["h1"]), "h2": _quant(rng, n2, hot["h2"]), "h3": _quant(rng, n3, hot["h3"]),
               "out": _quant(rng, n_out, False)}  # out's bias must be ignored on chip
    conv = ConvSpec(in_shape=IN_SHAPE, out_shape=H1_SHAPE, stride=(1, 1), padding=(1, 1))
    projs = (
        _proj(rng, "c1", "in", "h1", "conv", (2, 1, 3, 3), hot=hot["h1"], conv=conv),
        _proj(rng, "d2", "h1", "h2", "dense", (n2, n1), hot=hot["h2"]),
        _proj(rng, "s2", "in", "h2", "sparse", (n2, n_in), hot=False),  # skip: summed with d2 at h2's a_in
        _proj(rng, "s3", "h2", "h3", "sparse", (n3, n2), hot=hot["h3"], density=0.6),
        _proj(rng, "d4", "h3", "out", "dense", (n_out, n3), hot=False),
        _proj(rng, "s4", "h1", "out", "sparse", (n_out, n1), hot=False, density=0.2),
    )
    if recurrent:  # h3 → h2 (backwards) and h2 → h2 (self): delivered one step later, like any projection
        projs += (
            _proj(rng, "r32", "h3", "h2", "dense", (n2, n3), hot=False, recurrent=True),
            _proj(rng, "r22", "h2", "h2", "sparse", (n2, n2), hot=False, density=0.3, recurrent=True),
        )
    net = fixed_network(pops, [pr for pr, _ in projs], neurons, {pr.name: sf for pr, sf in projs})
    net.validate()
    return net


def random_frames(seed: int, samples: int, period: int, graded: bool) -> np.ndarray:
    rng = np.random.default_rng(seed + 10_000)
    if graded:
        return rng.integers(-20 if seed % 2 else 0, 256, (samples, period, 16))
    return (rng.random((samples, period, 16)) < rng.random((samples, 1, 16))).astype(np.int64)


def assert_same(ref, lava) -> None:
    np.testing.assert_array_equal(lava.readout, ref.readout, err_msg="readout")
    assert set(lava.final_state) == set(ref.final_state)
    for name in ref.final_state:  # u and v of every population, hidden ones included, after the last step
        np.testing.assert_array_equal(lava.final_state[name], ref.final_state[name], err_msg=f"final (u, v) of {name}")
    assert set(lava.spike_counts) == set(ref.spike_counts)
    for name in ref.spike_counts:
        np.testing.assert_array_equal(lava.spike_trains[name], ref.spike_trains[name], err_msg=f"spike train of {name}")
        np.testing.assert_array_equal(lava.spike_counts[name], ref.spike_counts[name], err_msg=f"spike counts of {name}")


@pytest.mark.parametrize("seed", range(N_SEEDS))
def test_random_network_agrees_with_reference(backend, seed):
    net = random_network(seed)
    frames = random_frames(seed, SAMPLES, PERIOD, graded=seed % 2 == 1)
    ref = reference.ReferenceBackend().run(net, frames, record=True)
    lava = backend.run(net, frames, record=True)
    assert_same(ref, lava)
    # the test must exercise real activity, not agree on silence
    assert sum(int(c.sum()) for c in ref.spike_counts.values()) > 0


def _peak_input(net: Network, frames: np.ndarray, trains: dict[str, np.ndarray]) -> dict[str, int]:
    """Largest |a_in| any neuron of each population receives, recomputed from the recorded spikes."""
    sent = {net.input: frames, **{k: v.astype(np.int64) for k, v in trains.items()}}
    total: dict[str, np.ndarray] = {}
    for pr in net.projections:
        m = net.fixed_matrix(pr).toarray().astype(np.int64)
        w = lava_weights(m)
        acc = sent[pr.source] @ w.T
        exp = net.synapse_fixed(pr.name).exp
        acc = acc << exp if exp >= 0 else acc >> -exp
        total[pr.target] = total.get(pr.target, 0) + acc
    return {k: int(np.abs(v).max()) for k, v in total.items()}


def test_the_random_networks_are_not_vacuous():
    """Across the seeds: inputs beyond the 24-bit u range, and every hidden population active but not saturated."""
    overflowing, active = 0, {"h1": 0, "h2": 0, "h3": 0}
    for seed in range(N_SEEDS):
        net, frames = random_network(seed), random_frames(seed, SAMPLES, PERIOD, graded=seed % 2 == 1)
        ref = reference.ReferenceBackend().run(net, frames, record=True)
        overflowing += max(_peak_input(net, frames, ref.spike_trains).values()) << 6 > (1 << 23)
        for name in active:
            active[name] += 0.05 < ref.spike_counts[name].mean() / PERIOD < 0.95
    assert overflowing >= 2
    assert min(active.values()) >= 2, active


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10**6),
    n2=st.integers(1, 30),
    n3=st.integers(1, 20),
    n_out=st.integers(1, 10),
    recurrent=st.booleans(),
    graded=st.booleans(),
    samples=st.integers(1, 3),
    period=st.integers(2, 16),
)
def test_hypothesis_networks_agree_with_reference(backend, seed, n2, n3, n_out, recurrent, graded, samples, period):
    """Hypothesis-drawn sizes, periods and recurrence on top of the random parameters above."""
    net = random_network(seed, n2=n2, n3=n3, n_out=n_out, recurrent=recurrent)
    frames = random_frames(seed, samples, period, graded=graded)
    assert_same(reference.ReferenceBackend().run(net, frames, record=True), backend.run(net, frames, record=True))


def _with_conv_exp0(seed: int) -> Network:
    net = random_network(seed)
    conv = dataclasses.replace(net.synapse_fixed("c1"), exp=0)  # odd mixed-sign kernels included
    return net.replace(fixed=dataclasses.replace(net.fixed, synapses={**net.fixed.synapses, "c1": conv}))


@pytest.mark.parametrize("graded", [False, True])
def test_conv_lowered_to_lava_conv_agrees_with_reference(backend, graded):
    """Exponent 0 and small sums: the conv projection runs on Lava's stock Conv (weight sharing), still bit for bit."""
    active = []  # the first two seeds whose conv target fires
    for seed in range(40):
        net, frames = _with_conv_exp0(seed), random_frames(seed, SAMPLES, PERIOD, graded=graded)
        ref = reference.ReferenceBackend().run(net, frames, record=True)
        if ref.spike_counts["h1"].sum() > 0:
            active.append((net, frames, ref))
        if len(active) == 2:
            break
    assert len(active) == 2
    for net, frames, ref in active:
        procs = {row["process"]: row for row in backend.describe(net, frames)}
        assert procs["Conv"]["count"] == 1 and procs["Conv"]["stock_loihi2"], procs.keys()
        assert_same(ref, backend.run(net, frames, record=True))


def test_conv_with_a_weight_exponent_stays_sparse(backend):
    net = random_network(0)
    assert net.projections[0].kind == "conv" and net.synapse_fixed(net.projections[0].name).exp != 0
    procs = {row["process"]: row for row in backend.describe(net)}
    assert "Conv" not in procs and "unrolled into Sparse" in procs["Sparse"]["note"]


def _conv_net(groups: int, c_in: int, c_out: int, seed: int = 5) -> tuple[Network, np.ndarray]:
    """A non-square input, asymmetric stride and padding, grouped channels, exponent 0."""
    rng = np.random.default_rng(seed)
    in_shape, stride, padding = (c_in, 7, 5), (1, 2), (1, 0)
    out_shape = (c_out, *conv_output_hw(*in_shape[1:], (3, 3), stride, padding))
    kernel = rng.integers(-90, 91, (c_out, c_in // groups, 3, 3))  # odd mixed-sign values: Lava truncates them
    n1 = int(np.prod(out_shape))
    w_out = rng.integers(-60, 61, (3, n1))
    net = fixed_network(
        (Population("in", in_shape, "input"), Population("h1", out_shape, "spiking"), Population("out", (3,), "readout")),
        (Projection("c1", "in", "h1", "conv", kernel.astype(float),
                    conv=ConvSpec(in_shape=in_shape, out_shape=out_shape, stride=stride, padding=padding, groups=groups)),
         Projection("o", "h1", "out", "dense", w_out.astype(float))),
        neurons={"h1": NeuronFixed(vth=20, bias_mant=rng.integers(-40, 40, n1), bias_exp=2),
                 "out": NeuronFixed(vth=(1 << 17) - 1, bias_mant=np.zeros(3, np.int64), bias_exp=0)},
        synapses={"c1": (kernel, 0), "o": w_out},
        timesteps=12, encoding="direct",
    )
    net.validate()
    frames = np.repeat(rng.integers(0, 30, (3, 1, int(np.prod(in_shape)))), PERIOD, axis=1)
    return net, frames


def test_grouped_strided_conv_on_lava_conv_agrees_with_reference(backend):
    net, frames = _conv_net(groups=2, c_in=4, c_out=6)
    procs = {row["process"]: row for row in backend.describe(net, frames)}
    assert procs["Conv"]["count"] == 1
    ref = reference.ReferenceBackend().run(net, frames, record=True)
    assert int(ref.spike_counts["h1"].sum()) > 0
    assert_same(ref, backend.run(net, frames, record=True))


def test_conv_geometry_beyond_lavas_int8_vars_stays_sparse():
    """Lava's Conv keeps groups, stride, padding and kernel size in int8 Vars (groups = 128 gave all zeros)."""
    from neurocompile_lava.plan import plan_lowering

    net, frames = _conv_net(groups=128, c_in=128, c_out=128)
    (conv, _) = plan_lowering(net, frames).synapses
    assert conv.process == "Sparse"
    net, frames = _conv_net(groups=1, c_in=2, c_out=2)
    assert plan_lowering(net, frames).synapses[0].process == "Conv"


@pytest.mark.parametrize("weight_exp", [1, 0])  # 1: unrolled to Sparse; 0: Lava's Conv
def test_conv_taps_that_only_meet_padding_do_not_decide_the_sign_mode(backend, weight_exp):
    """Lava infers the weights' sign mode over the synapses that exist: a negative tap that only
    ever multiplies padding must not make the positive ones 'mixed' (and floored to even)."""
    kernel = np.full((1, 1, 3, 3), 3, np.int64)
    kernel[0, 0, 0, 0] = -1  # with stride 2 and padding 1 on a 2×2 input, tap (0, 0) only meets padding
    spec = ConvSpec(in_shape=(1, 2, 2), out_shape=(1, 1, 1), stride=(2, 2), padding=(1, 1))
    zero = np.zeros(1, np.int64)
    net = fixed_network(
        (Population("in", (1, 2, 2), "input"), Population("h", (1, 1, 1), "spiking"), Population("out", (1,), "readout")),
        (Projection("c", "in", "h", "conv", kernel.astype(float), conv=spec), Projection("o", "h", "out", "dense", np.ones((1, 1)))),
        neurons={"h": NeuronFixed(vth=1000, bias_mant=zero, bias_exp=0), "out": NeuronFixed(vth=1, bias_mant=zero, bias_exp=0)},
        synapses={"c": (kernel, weight_exp), "o": np.ones((1, 1), np.int64)},
        timesteps=6, encoding="rate",
    )
    frames = np.ones((1, PERIOD, 4), np.int64)
    procs = {row["process"] for row in backend.describe(net, frames)}
    assert ("Conv" in procs) == (weight_exp == 0)
    ref = reference.ReferenceBackend().run(net, frames, record=True)
    u_per_step = 3 * 4 << weight_exp << 6  # four taps of 3 see the input: no flooring to 2
    assert ref.final_state["h"][0][0] == u_per_step
    assert_same(ref, backend.run(net, frames, record=True))
