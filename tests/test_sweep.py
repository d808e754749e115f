"""The accuracy-vs-T sweep from one long run equals running every T on its own (a shorter run is a prefix)."""
from __future__ import annotations

import pytest
import torch

from neurocompile.frontend import capture
from neurocompile.passes.convert import convert
from neurocompile.passes.quantize import FixedPointFormat, quantize
from neurocompile.profiles import load_profile
from neurocompile.sim.run import accuracy_vs_timesteps, evaluate


@pytest.fixture(scope="module")
def ann(trained_mlp):
    return capture(torch.export.export(trained_mlp[1], (torch.zeros(1, 1, 8, 8),)))


@pytest.mark.parametrize("encoding", ["direct", "rate"])
@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_one_run_sweep_equals_separate_runs(ann, digits, encoding, mode):
    x, y = digits.x_test[:100], digits.y_test[:100]
    snn = convert(ann, digits.x_train[:128], timesteps=8, encoding=encoding)
    snn = snn.with_settings(seed=3)
    if mode == "fixed":
        snn = quantize(snn, FixedPointFormat.from_profile(load_profile("loihi2")))
    Ts = (1, 3, 8, 13)
    swept = accuracy_vs_timesteps(snn, x, y, Ts, mode=mode, batch_size=24)
    for T in Ts:
        alone = evaluate(snn.with_settings(timesteps=T), x, mode)
        assert swept[T] == alone.accuracy(y), T
    assert len(set(swept.values())) > 1  # the sweep really differs across T on this net
