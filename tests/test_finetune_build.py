"""Fine-tuning inside the build and as a pass command: trained at small T, then quantised, mapped and run on Lava unchanged."""
from __future__ import annotations

from pathlib import Path

import pytest

import neurocompile
from neurocompile import ir
from neurocompile.cli import main
from neurocompile.errors import NeurocompileError

MLP = Path(__file__).parent / "golden" / "mlp.pt2"


def test_build_with_finetuning_raises_small_T_accuracy_and_runs_bit_exact(tmp_path):
    pytest.importorskip("lava")
    out = tmp_path / "b"
    report = neurocompile.build(MLP, data="digits", out=out, timesteps=2, finetune_epochs=3, lava_samples=8, backend="lava",
                                t_sweep=(1, 2, 4))
    st = report["stages"]
    # plain conversion at T = 2 is far from the ANN; three epochs of fine-tuning close most of the gap
    assert st["finetune"]["accuracy"] > st["snn_float"]["accuracy"] + 0.05
    assert st["finetune"]["accuracy"] > st["ann"]["accuracy"] - 0.05
    assert len(st["finetune"]["history"]) == 3 and st["finetune"]["settings"]["timesteps"] == 2
    # the bit-exact stage quantises the fine-tuned network: its loss is measured against the fine-tuned float accuracy
    assert st["snn_quantized"]["change_vs_float"] == pytest.approx(st["snn_quantized"]["accuracy"] - st["finetune"]["accuracy"])
    assert abs(st["snn_quantized"]["change_vs_float"]) < 0.03
    assert st["lava"]["agreement"] == {"predictions": 1.0, "readout_identical": True, "spike_counts_identical": True}
    assert set(report["accuracy_vs_T_finetuned"]) == {"1", "2", "4"}
    assert report["accuracy_vs_T_finetuned"]["2"] == st["finetune"]["accuracy"]
    assert not (tmp_path / "b.finetune-checkpoint").exists()  # the build is in place: nothing left to resume
    net = ir.load(out / "network.ncnet")
    assert net.settings.timesteps == 2 and net.quantized


def test_finetune_options_are_checked_before_any_compute(tmp_path):
    with pytest.raises(NeurocompileError, match="--reset zero"):
        neurocompile.build(MLP, data="digits", out=tmp_path / "x", reset="zero")
    with pytest.raises(NeurocompileError, match="surrogate"):
        neurocompile.build(MLP, data="digits", out=tmp_path / "x", finetune_epochs=1, surrogate="sigmoid")
    with pytest.raises(NeurocompileError, match="finetune-epochs"):
        neurocompile.build(MLP, data="digits", out=tmp_path / "x", finetune_epochs=-1)
    assert not (tmp_path / "x").exists()


def test_finetune_pass_command_with_zero_reset(tmp_path, capsys):
    ann, snn, ft = tmp_path / "a.ncnet", tmp_path / "s.ncnet", tmp_path / "f.ncnet"
    assert main(["ingest", str(MLP), "-o", str(ann)]) == 0
    assert main(["convert", str(ann), "-o", str(snn), "-T", "4"]) == 0
    capsys.readouterr()
    assert main(["finetune", str(snn), "--epochs", "1", "--reset", "zero", "-o", str(ft)]) == 0
    line = capsys.readouterr().out
    assert "validation accuracy" in line and "T=4" in line
    net = ir.load(ft)
    assert all(p.reset == "zero" for p in net.neurons if p.kind == "spiking") and not net.quantized
    assert not (tmp_path / "f.ncnet.checkpoint").exists()


def test_a_zero_reset_build_lowers_to_stock_lifreset_only_and_runs_spike_identical(tmp_path):
    """The stock-silicon option: fine-tuned for reset to zero, the network runs on Lava's own LIFReset (no PeriodicLIF)."""
    pytest.importorskip("lava")
    report = neurocompile.build(MLP, data="digits", out=tmp_path / "z", timesteps=2, finetune_epochs=2, reset="zero",
                                lava_samples=8, backend="lava", t_sweep=(1, 2))
    st = report["stages"]
    assert st["lava"]["agreement"] == {"predictions": 1.0, "readout_identical": True, "spike_counts_identical": True}
    neurons = [r for r in report["lowering"] if r["module"].startswith("lava.proc.lif") or "PeriodicLIF" in r["process"]]
    assert [r["process"] for r in neurons] == ["LIFReset"] and neurons[0]["stock_loihi2"] is True
    assert st["finetune"]["accuracy"] > st["snn_float"]["accuracy"]  # conversion at T = 2 is far off; training recovers
    net = ir.load(tmp_path / "z" / "network.ncnet")
    assert net.settings.schedule == "pipelined" and all(p.reset == "zero" for p in net.neurons if p.kind == "spiking")
    # a sample every T steps, but one inference alone lasts T + depth: the cost model's latency counts the latter
    assert report["period_steps"] == 2 and report["ops_per_sample"]["steps_per_sample"] == 2 + net.depth()


def test_a_one_step_build_fine_tunes_at_two_steps_first(tmp_path):
    """At T = 1 a converted network is silent; the build fine-tunes at T = 2 first (progressive.py) and T = 1 then trains."""
    report = neurocompile.build(MLP, data="digits", out=tmp_path / "t1", timesteps=1, finetune_epochs=2, reset="zero",
                                lava_samples=0, backend="none", t_sweep=())
    st = report["stages"]
    assert st["finetune"]["warm_start_timesteps"] == [2] and st["finetune"]["settings"]["timesteps"] == 1
    assert st["snn_float"]["accuracy"] < 0.3 < 0.8 < st["snn_quantized"]["accuracy"]
    with pytest.raises(NeurocompileError, match="above the target T=4"):
        neurocompile.build(MLP, data="digits", out=tmp_path / "bad", timesteps=4, finetune_epochs=1, finetune_via=(2,))
    assert not (tmp_path / "bad").exists()
