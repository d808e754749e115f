"""STDB fine-tuning (neurocompile/passes/finetune, passes/finetune.py) on scikit-learn's digits.

A small trained MLP converted at T = 2 loses ~15 pp to the ANN; a few epochs of
fine-tuning on the chip's schedule must win most of it back.
Resuming from a checkpoint, and running on two DDP processes, must give what
one uninterrupted process gives.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from neurocompile.errors import NeurocompileError
from neurocompile.frontend.capture import capture
from neurocompile.passes.convert import convert
from neurocompile.passes.finetune import finetune_network
from neurocompile.passes.quantize import quantize
from neurocompile.sim.run import evaluate
from neurocompile.passes.finetune import FinetuneSettings, finetune
from neurocompile.passes.finetune import loop as loop_module
from neurocompile.passes.finetune.checkpoint import load_checkpoint
from finetune_ddp_worker import run_rank

torch.set_num_threads(2)

FAST = dict(lr=1e-3, batch=64)  # digits has 23 batches an epoch: the paper's 1e-4 needs ~10x more steps


@pytest.fixture(scope="module")
def converted(trained_mlp, digits):
    """The conftest MLP (64-64-10) converted at T = 2, with its ANN accuracy (~97 %; conversion ~81 %)."""
    _, module = trained_mlp
    net = capture(torch.export.export(module.eval(), (torch.zeros(1, 1, 8, 8),)))
    with torch.no_grad():
        ann = float((module(torch.as_tensor(digits.x_test)).argmax(1).numpy() == digits.y_test).mean())
    return convert(net, digits.x_train[:512], timesteps=2), ann


def _subset(digits, n_train: int = 512, n_val: int = 360):
    return (digits.x_train[:n_train], digits.y_train[:n_train]), (digits.x_test[:n_val], digits.y_test[:n_val])


def test_finetuning_raises_accuracy_at_two_time_steps(converted, digits):
    net, ann = converted
    before = evaluate(net, digits.x_test, "float").accuracy(digits.y_test)
    settings = FinetuneSettings(epochs=4, timesteps=2, quant_aware_epochs=1, seed=0, **FAST)
    result = finetune(net, (digits.x_train, digits.y_train), (digits.x_test, digits.y_test), settings, progress=False)
    after = evaluate(result.network, digits.x_test, "float").accuracy(digits.y_test)
    fixed = evaluate(quantize(result.network), digits.x_test, "fixed").accuracy(digits.y_test)
    assert before < ann - 0.1  # plain conversion at T = 2: too few spikes
    assert after >= before + 0.07 and after >= ann - 0.06, (before, after, ann)
    assert fixed >= after - 0.01, (after, fixed)  # the quant-aware last epoch: quantisation costs (almost) nothing
    assert result.history[-1].val_accuracy == pytest.approx(after, abs=1e-9)
    assert [r.quant_aware for r in result.history] == [False, False, False, True]
    assert result.network.timesteps == 2 and result.network.fixed is None


def test_the_pass_is_pure_checks_its_input_and_trains_thresholds_only_when_asked(converted, digits):
    net, _ = converted
    data = dataclasses.replace(digits, x_train=digits.x_train[:256], y_train=digits.y_train[:256],
                               x_test=digits.x_test[:64], y_test=digits.y_test[:64])
    spiking = [p.name for p in net.populations if p.kind == "spiking"]
    for train_threshold in (True, False):
        settings = FinetuneSettings(epochs=1, timesteps=2, quant_aware_epochs=0, train_threshold=train_threshold, **FAST)
        out = finetune_network(net, data=data, settings=settings)
        moved = [not np.array_equal(out.population(n).threshold, net.population(n).threshold) for n in spiking]
        assert all(moved) if train_threshold else not any(moved)
        assert all(np.ndim(out.population(n).threshold) == 0 for n in spiking)  # one threshold per population
    assert any(not np.array_equal(a.weight, b.weight) for a, b in zip(out.projections, net.projections))
    with pytest.raises(NeurocompileError, match="finetune_network needs"):
        finetune_network(quantize(net), data=data, settings=settings)


def test_reset_to_zero_networks_train_too(converted, digits):
    net, _ = converted
    train, val = _subset(digits)
    settings = FinetuneSettings(epochs=3, timesteps=2, quant_aware_epochs=0, reset="zero", **FAST)
    result = finetune(net, train, val, settings, progress=False)
    assert all(p.reset == "zero" for p in result.network.populations if p.kind == "spiking")
    assert result.history[-1].val_accuracy >= result.initial_val_accuracy + 0.05, (result.initial_val_accuracy, result.history)


def _weights(state: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state["model"].items()}


def test_a_resumed_run_ends_identical_to_an_uninterrupted_one(converted, digits, tmp_path, monkeypatch):
    net, _ = converted
    train, val = _subset(digits, 256, 64)
    settings = FinetuneSettings(epochs=3, timesteps=2, quant_aware_epochs=1, dropout=0.1, **FAST)
    whole = finetune(net, train, val, settings, checkpoint_dir=tmp_path / "a", progress=False)

    real, calls = loop_module._train_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user's Ctrl-C during the third epoch
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_module, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        finetune(net, train, val, settings, checkpoint_dir=tmp_path / "b", progress=False)
    assert load_checkpoint(tmp_path / "b")["epochs_done"] == 2
    monkeypatch.setattr(loop_module, "_train_epoch", real)
    resumed = finetune(net, train, val, settings, checkpoint_dir=tmp_path / "b", progress=False)
    assert resumed.resumed_from_epoch == 2
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for k, v in _weights(a).items():
        assert torch.equal(v, _weights(b)[k]), k
    strip = lambda h: [dataclasses.replace(r, seconds=0.0) for r in h]  # noqa: E731
    assert strip(resumed.history) == strip(whole.history)
    for pa, pb in zip(whole.network.projections, resumed.network.projections):
        assert np.array_equal(pa.weight, pb.weight)
    with pytest.raises(NeurocompileError, match="other settings"):
        finetune(net, train, val, dataclasses.replace(settings, lr=2e-3), checkpoint_dir=tmp_path / "b", progress=False)


def test_two_ddp_processes_match_one(converted, digits, tmp_path):
    net, _ = converted
    train, val = _subset(digits, 256, 64)
    settings = FinetuneSettings(epochs=2, timesteps=2, quant_aware_epochs=1, dropout=0.1, **FAST)
    one = finetune(net, train, val, settings, checkpoint_dir=tmp_path / "one", progress=False)
    ctx = mp.start_processes(run_rank, args=(2, str(tmp_path / "rdzv"), net, train, val, settings, str(tmp_path / "two")),
                             nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + 240
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the DDP processes did not finish within 240 s")
    a, b = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    for k, v in _weights(a).items():
        torch.testing.assert_close(_weights(b)[k], v, rtol=1e-4, atol=1e-5, msg=k)
    for ra, rb in zip(one.history, b["history"]):
        assert rb["loss"] == pytest.approx(ra.loss, rel=1e-4)
        assert rb["val_accuracy"] == pytest.approx(ra.val_accuracy, abs=2 / len(val[1]))


def test_settings_are_checked():
    for bad in (dict(epochs=-1), dict(timesteps=0), dict(dropout=1.0), dict(surrogate="tanh"), dict(quant_aware_epochs=5, epochs=2),
                dict(reset="hard")):
        with pytest.raises(NeurocompileError):
            FinetuneSettings(**bad)
    assert FinetuneSettings(epochs=10).milestone_epochs == [6, 8, 9]


def test_the_quant_aware_forward_is_the_bit_exact_engine(converted, digits):
    """What the last epochs train on (quant_aware.py) is what the fixed-point reference computes: same logits."""
    from neurocompile.sim.encoding import encode
    from neurocompile.passes.finetune.loop import build_simulator
    from neurocompile.passes.finetune.quant_aware import quantised_parameters

    net, _ = converted
    x = digits.x_test[:200]
    sim = build_simulator(net, FinetuneSettings(timesteps=2)).double()
    q = quantize(net)
    want = evaluate(q, x, "fixed").logits
    frames = encode(x, "direct", 2 + net.depth(), fixed=True).double() / 255
    with torch.no_grad(), quantised_parameters(sim, net):
        got = sim.logits(sim(frames).readout, 2).numpy() * q.fixed.v_units_per_float[net.output]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)
    assert torch.equal(sim.synapse_params(net.projections[0].name).weight,
                       torch.as_tensor(np.asarray(net.projections[0].weight), dtype=torch.float64))  # float values are back


def test_training_in_threshold_units_changes_no_spike_and_no_integer(converted, digits):
    from neurocompile.passes.finetune.units import rescale, threshold_scales

    net, _ = converted
    scales = threshold_scales(net)
    assert scales and all(s != 1.0 for s in scales.values())
    unit = rescale(net, scales)
    assert all(unit.population(n).threshold == 1.0 for n in scales)
    a, b = evaluate(net, digits.x_test, "float"), evaluate(unit, digits.x_test, "float")
    assert all(np.array_equal(a.spike_counts[k], b.spike_counts[k]) for k in a.spike_counts)
    np.testing.assert_allclose(a.logits, b.logits, rtol=1e-5, atol=1e-5)
    qa, qb = quantize(net).fixed, quantize(unit).fixed
    for name in qa.synapses:
        assert np.abs(np.asarray(qa.synapses[name].weight) - np.asarray(qb.synapses[name].weight)).max() <= 2  # rounding ties
    back = rescale(unit, scales, inverse=True)
    for p, q in zip(net.projections, back.projections):
        np.testing.assert_allclose(q.weight, p.weight, rtol=1e-12)


class _Residual(torch.nn.Module):
    """Linear → ReLU → Linear with a skip (residual add) → ReLU → Linear: the front end's residual form."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.a, self.b, self.out = (torch.nn.Linear(64, 48), torch.nn.Linear(48, 48), torch.nn.Linear(48, 48),
                                              torch.nn.Linear(48, 10))

    def forward(self, x):
        h = torch.relu(self.inp(x.flatten(1)))
        return self.out(torch.relu(self.b(torch.relu(self.a(h))) + h))


def test_a_residual_network_finetunes_and_stays_bit_exact(digits):
    """Every architecture the front end takes: a skip connection (two projections summed at one population)."""
    torch.manual_seed(0)
    m = _Residual()
    x, y = torch.as_tensor(digits.x_train).reshape(len(digits.x_train), -1), torch.as_tensor(digits.y_train)
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    for _ in range(30):
        for i in range(0, len(x), 128):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x[i : i + 128]), y[i : i + 128]).backward()
            opt.step()
    m.eval()
    net = capture(torch.export.export(m, (torch.zeros(1, 64),)))
    assert any(len(net.incoming(p.name)) == 2 for p in net.neurons)  # the skip reaches its population as a second edge
    snn = convert(net, digits.x_train[:512], timesteps=2)
    x_test = digits.x_test.reshape(len(digits.x_test), -1)
    before = evaluate(snn, x_test, "float").accuracy(digits.y_test)
    settings = FinetuneSettings(epochs=3, timesteps=2, seed=0, **FAST)
    result = finetune(snn, (digits.x_train.reshape(len(digits.x_train), -1), digits.y_train), None, settings, progress=False)
    after = evaluate(result.network, x_test, "float").accuracy(digits.y_test)
    fixed = evaluate(quantize(result.network), x_test, "fixed").accuracy(digits.y_test)
    assert after >= before + 0.05, (before, after)
    assert fixed >= after - 0.02, (after, fixed)


def test_progressive_finetuning_is_the_stages_run_one_after_the_other(converted, digits, tmp_path):
    """T = 1 from the network fine-tuned at T = 2 (passes/finetune/progressive.py): the same as two plain calls, checkpointed per stage."""
    from neurocompile.passes.finetune import finetune_progressively, warm_start_timesteps

    net, _ = converted
    train, val = _subset(digits, 256, 120)
    settings = FinetuneSettings(epochs=1, timesteps=1, quant_aware_epochs=0, **FAST)
    assert warm_start_timesteps(1) == (2,) and warm_start_timesteps(4) == ()
    got = finetune_progressively(net, train, val, settings, via=(2,), checkpoint_dir=tmp_path / "ck", progress=False)
    warm = finetune(net, train, val, dataclasses.replace(settings, timesteps=2), progress=False).network
    want = finetune(warm, train, val, settings, progress=False)
    for a, b in zip(got.network.projections, want.network.projections):
        np.testing.assert_array_equal(np.asarray(a.weight), np.asarray(b.weight))
    assert got.network.settings.timesteps == 1 and (tmp_path / "ck" / "T2").is_dir() and (tmp_path / "ck" / "T1").is_dir()
    with pytest.raises(NeurocompileError, match="above the target T=1"):
        finetune_progressively(net, train, val, settings, via=(1,))
    with pytest.raises(NeurocompileError, match="a list of whole numbers"):
        finetune_progressively(net, train, val, settings, via=2)
