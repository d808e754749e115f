"""Acceptance: the example MLP and CNN, trained on digits, built end to end on Lava."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("lava")
from neurocompile.cli import main  # noqa: E402

pytestmark = pytest.mark.lava
SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_example.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_example_builds_on_lava_within_2pp(tmp_path, example, model, capsys):
    module, _ = example.train_example(model)
    path = example.export_model(module, tmp_path / f"{model}.pt2", "pt2", example.example_input(model))
    out = tmp_path / "build"
    code = main(["build", str(path), "--target", "loihi2", "--data", "digits", "-o", str(out), "-T", "32", "--lava-samples", "12", "--sweep", ""])
    assert code == 0, capsys.readouterr().err
    r = json.loads((out / "report.json").read_text())
    st = r["stages"]
    assert st["snn_float"]["accuracy"] >= st["ann"]["accuracy"] - 0.02
    assert st["snn_quantized"]["accuracy"] >= st["ann"]["accuracy"] - 0.02
    lava = st["lava"]
    assert lava["samples"] == 12 and "Loihi2SimCfg" in lava["platform"]
    assert abs(lava["accuracy"] - lava["snn_quantized_accuracy_same_samples"]) <= 0.02
    assert lava["agreement"]["readout_identical"] and lava["agreement"]["spike_counts_identical"]
    procs = {row["process"]: row for row in r["lowering"]}
    assert procs["PeriodicLIF"]["stock_loihi2"] is False and ("Dense" in procs or "Sparse" in procs)
    assert all(r["layers"][i]["spikes_per_sample"] > 0 for i in range(len(r["layers"]) - 1))
    # `neurocompile run` on both backends: same predictions and spike counts on the same samples
    runs = {}
    for backend in ("reference", "lava"):
        capsys.readouterr()
        assert main(["run", str(out), "--backend", backend, "--samples", "8", "--json"]) == 0
        runs[backend] = json.loads(capsys.readouterr().out)
    assert runs["lava"]["predictions"] == runs["reference"]["predictions"]
    assert runs["lava"]["spikes_per_layer"] == runs["reference"]["spikes_per_layer"]
