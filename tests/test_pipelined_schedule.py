"""The pipelined schedule (ir/graph.py): what Lava's stock LIFReset runs, with no custom neuron process.

Checked three ways: against a direct transcription of the schedule (window
coordinates, Lava's LIF rules as written, one sample at a time), against Lava
itself (stock LIFReset processes, spike for spike), and end to end: a
``--reset zero`` fine-tuned build lowers to stock LIFReset only.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from nc_testutils import fixed_network, random_neuron_fixed as _quant, random_projection as _proj
from neurocompile.errors import NeurocompileError
from neurocompile.ir import ConvSpec, NeuronFixed, Population, Projection
from neurocompile.sim import fixed_point as fx
from neurocompile.sim.engine import simulate

IN_SHAPE, H1_SHAPE = (1, 4, 4), (2, 4, 4)


def layered_network(seed: int, *, readout_du: int = 4095):
    """A random quantised chain in → conv → dense → sparse → readout, zero reset, leaks, currents and biases drawn at random."""
    rng = np.random.default_rng(seed)
    n1 = int(np.prod(H1_SHAPE))
    pops = (Population("in", IN_SHAPE, "input"), Population("h1", H1_SHAPE, "spiking", reset="zero"),
            Population("h2", (10,), "spiking", reset="zero"), Population("h3", (7,), "spiking", reset="zero"),
            Population("out", (3,), "readout"))
    neurons = {"h1": _quant(rng, n1, False), "h2": _quant(rng, 10, bool(rng.random() < 0.3)), "h3": _quant(rng, 7, False),
               "out": NeuronFixed(vth=100, bias_mant=rng.integers(-50, 50, 3), bias_exp=0, du=readout_du, dv=0)}
    conv = ConvSpec(in_shape=IN_SHAPE, out_shape=H1_SHAPE, stride=(1, 1), padding=(1, 1))
    projs = (_proj(rng, "c1", "in", "h1", "conv", (2, 1, 3, 3), hot=False, conv=conv),
             _proj(rng, "d2", "h1", "h2", "dense", (10, n1), hot=False),
             _proj(rng, "s3", "h2", "h3", "sparse", (7, 10), hot=False, density=0.6),
             _proj(rng, "d4", "h3", "out", "dense", (3, 7), hot=False))
    net = fixed_network(pops, [p for p, _ in projs], neurons, {p.name: sf for p, sf in projs}, schedule="pipelined")
    net.validate()
    return net


def frames_for_seed(seed: int, samples: int, period: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 7)
    if seed % 2:
        return rng.integers(0, 256, (samples, period, 16))
    return (rng.random((samples, period, 16)) < rng.random((samples, 1, 16))).astype(np.int64)


def transcribed(net, frames: np.ndarray):
    """The pipelined schedule as ir/graph.py words it, one sample at a time: step i of a population takes step i of its sources,
    and the first step resets (u, v) then integrates. Lava's rules as written (fixed_point), Lava's weights, no fast path."""
    order = [p.name for p in net.neurons]
    weights = {pr.name: (torch.as_tensor(fx.lava_weights(net.fixed_matrix(pr).toarray().astype(np.int64))), net.synapse_fixed(pr.name).exp)
               for pr in net.projections}
    counts = {p: np.zeros((len(frames), net.population(p).size), np.int64) for p in order if net.population(p).kind == "spiking"}
    readout = np.zeros((len(frames), net.population(net.output).size), np.int64)
    for b, sample in enumerate(torch.as_tensor(frames)):
        state = {}
        for i, frame in enumerate(sample):
            sent = {net.input: frame.to(torch.int64)}
            for name in order:
                pop, q = net.population(name), net.neuron_fixed(name)
                u, v = state.get(name, (torch.zeros(pop.size, dtype=torch.int64),) * 2) if i else (torch.zeros(pop.size, dtype=torch.int64),) * 2
                a_in = sum((fx.shift(fx.wrap32(w @ sent[pr.source]), e) for pr in net.incoming(name) for w, e in [weights[pr.name]]),
                           torch.zeros(pop.size, dtype=torch.int64))
                bias = torch.zeros(pop.size, dtype=torch.int64) if pop.kind == "readout" else fx.effective_bias(q.bias_mant, q.bias_exp)
                u, v = fx.lif_subthreshold(u, v, a_in, q.du, q.dv, bias)
                s = torch.zeros(pop.size, dtype=torch.int64)
                if pop.kind == "spiking":
                    s = (v > (q.vth << fx.VTH_SHIFT)).to(torch.int64)
                    v = torch.where(s > 0, torch.zeros_like(v), v)
                    counts[name][b] += s.numpy()
                state[name], sent[name] = (u, v), s
        readout[b] = state[net.output][1].numpy()
    return readout, counts


@pytest.mark.parametrize("seed", range(4))
def test_engine_is_the_schedule_as_written(seed):
    net = layered_network(seed).with_settings(timesteps=6)
    frames = frames_for_seed(seed, 3, 6)
    want_readout, want_counts = transcribed(net, frames)
    got = simulate(net, torch.as_tensor(frames))
    np.testing.assert_array_equal(got.readout.numpy(), want_readout)
    for name, c in want_counts.items():
        np.testing.assert_array_equal(got.spike_counts[name].numpy(), c, err_msg=name)
    assert sum(int(c.sum()) for c in want_counts.values()) > 0  # activity, not agreement on silence


def test_samples_are_independent_and_first_step_input_counts():
    """Window coordinates: a sample's result does not depend on its neighbours, and its first frame is integrated."""
    net = layered_network(1).with_settings(timesteps=5)
    frames = frames_for_seed(1, 4, 5)
    together = simulate(net, torch.as_tensor(frames)).readout
    alone = torch.cat([simulate(net, torch.as_tensor(frames[i : i + 1])).readout for i in range(4)])
    assert torch.equal(together, alone)
    one_step = torch.as_tensor(frames[:1, :1])  # a period of one step: periodic would integrate nothing at all
    v_h1 = simulate(net.with_settings(timesteps=1), one_step).state["h1"][1]
    v_bias_only = simulate(net.with_settings(timesteps=1), torch.zeros_like(one_step)).state["h1"][1]
    assert frames[0, 0].any() and not torch.equal(v_h1, v_bias_only)


def test_period_is_T_and_the_sweep_reads_each_T():
    from neurocompile.sim.run import period, readout_step

    net = layered_network(0).with_settings(timesteps=8)
    assert period(net) == 8 and readout_step(net, 3) == 2
    assert period(net.with_settings(schedule="periodic")) == 8 + net.depth()


def test_graphs_that_cannot_run_pipelined_are_refused_in_one_line():
    net = layered_network(0)
    skip = Projection("skip", "in", "h3", "dense", np.zeros((7, 16)))
    with pytest.raises(NeurocompileError, match="skips from depth 0 to 3"):
        net.replace(projections=net.projections + (skip,)).validate()
    loop = Projection("loop", "h2", "h2", "dense", np.zeros((10, 10)), recurrent=True)
    with pytest.raises(NeurocompileError, match="'loop' is recurrent"):
        net.replace(projections=net.projections + (loop,)).validate()


def test_finetuning_for_zero_reset_picks_the_pipelined_schedule_where_the_graph_allows(trained_mlp):
    from neurocompile.frontend.capture import capture
    from neurocompile.passes.convert import convert
    from neurocompile.passes.finetune import FinetuneSettings
    from neurocompile.passes.finetune.loop import prepare_network

    _, module = trained_mlp
    snn = convert(capture(torch.export.export(module.eval(), (torch.zeros(1, 1, 8, 8),))), np.random.rand(64, 1, 8, 8), timesteps=4)
    assert prepare_network(snn, FinetuneSettings(reset="zero")).settings.schedule == "pipelined"
    assert prepare_network(snn, FinetuneSettings()).settings.schedule == "periodic"  # subtractive reset: PeriodicLIF
    assert prepare_network(snn, FinetuneSettings(reset="zero", schedule="periodic")).settings.schedule == "periodic"
    stock = prepare_network(snn, FinetuneSettings(reset="zero"))  # re-tuned for subtraction: back to PeriodicLIF's schedule
    assert prepare_network(stock.with_settings(), FinetuneSettings(reset="subtract")).settings.schedule == "periodic"
    with pytest.raises(NeurocompileError, match="schedule"):
        FinetuneSettings(schedule="staggered")


# -- Lava: stock LIFReset, spike for spike ------------------------------------------------------------------------


@pytest.mark.lava
@pytest.mark.parametrize("seed,T,samples", [(0, 5, 3), (1, 5, 3), (2, 5, 3), (3, 5, 3), (4, 1, 1), (5, 1, 3)])
def test_stock_lifreset_agrees_with_the_reference(backend, seed, T, samples):
    """Random layered networks; T = 1 makes every step a window's first (reset_offset 0 of interval 1)."""
    from neurocompile.backends import reference
    from neurocompile_lava.describe import describe_lowering

    net = layered_network(seed).with_settings(timesteps=T)
    frames = frames_for_seed(seed, samples, T)
    ref = reference.ReferenceBackend().run(net, frames, record=True)
    lava = backend.run(net, frames, record=True)
    np.testing.assert_array_equal(lava.readout, ref.readout)
    for name in ref.spike_counts:
        np.testing.assert_array_equal(lava.spike_trains[name], ref.spike_trains[name], err_msg=name)
        np.testing.assert_array_equal(lava.spike_counts[name], ref.spike_counts[name], err_msg=name)
    assert sum(int(c.sum()) for c in ref.spike_counts.values()) > 0 or T == 1  # one step: a layer may stay silent
    rows = {r["process"]: r for r in describe_lowering(net, frames)}
    lif = rows["LIFReset"]
    assert lif["count"] == 4 and "PeriodicLIF" not in rows
    # stock unless a random bias exceeds Loihi 2's 13-bit mantissa (seeds draw some): then the note says which
    assert lif["stock_loihi2"] is ("widths exceeded" not in lif["note"])


def test_the_stock_lowering_refuses_what_lifreset_cannot_run():
    pytest.importorskip("lava")
    from neurocompile_lava.plan import plan_lowering

    net = layered_network(0).with_settings(timesteps=4)
    frames = frames_for_seed(0, 1, 4)
    subtract = net.replace_population(dataclasses.replace(net.population("h2"), reset="subtract"))
    with pytest.raises(NeurocompileError, match="resets by subtraction.*--reset zero"):
        plan_lowering(subtract, frames)
    q = net.fixed.neurons["h3"]
    per_neuron = net.replace(fixed=dataclasses.replace(net.fixed, neurons={**net.fixed.neurons, "h3": dataclasses.replace(q, dv=np.arange(7))}))
    with pytest.raises(NeurocompileError, match="one dv per neuron"):
        plan_lowering(per_neuron, frames)
    # a readout whose synaptic current barely decays could climb to the largest threshold within a window
    with pytest.raises(NeurocompileError, match="readout's v could reach"):
        plan_lowering(layered_network(0, readout_du=0).with_settings(timesteps=64), frames_for_seed(0, 1, 64))


@pytest.mark.lava
@pytest.mark.parametrize("seed", [0, 2, 3])
def test_the_float_simulator_is_lavas_floating_point_lifreset(backend, seed):
    """The trainable simulator's pipelined schedule against Lava's own float LIFReset model, spike for spike."""
    from test_lava_float import assert_float_simulator_is_lava_floating_pt

    # binary input: float and fixed point see the same payloads
    assert_float_simulator_is_lava_floating_pt(layered_network(seed).with_settings(timesteps=6), frames_for_seed(2 * seed, 2, 6))
