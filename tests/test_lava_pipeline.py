"""A really trained model, through the real pipeline (ingest → convert → quantize), on Lava and on the reference."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lava")
from neurocompile.data import shape_for_model  # noqa: E402
from neurocompile.frontend import ingest  # noqa: E402
from neurocompile.passes.convert import convert  # noqa: E402
from neurocompile.passes.quantize import quantize  # noqa: E402
from neurocompile.backends.reference import ReferenceBackend  # noqa: E402
from neurocompile.sim.run import frames_for  # noqa: E402
from neurocompile_lava.backend import LavaBackend  # noqa: E402
from neurocompile_lava.describe import describe_lowering  # noqa: E402

pytestmark = pytest.mark.lava


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_trained_mlp_runs_identically_on_lava_and_reference(trained_mlp, digits, encoding):
    path, _ = trained_mlp
    net = ingest(path, sample_shape=digits.sample_shape)
    x_train = shape_for_model(digits.x_train, net.population(net.input).shape)
    x_test = shape_for_model(digits.x_test, net.population(net.input).shape)[:6]
    qnet = quantize(convert(net, x_train[:256], timesteps=8, encoding=encoding))
    frames = frames_for(qnet, x_test, fixed=True).numpy()

    lava = LavaBackend().run(qnet, frames, record=True)
    ref = ReferenceBackend().run(qnet, frames, record=True)

    np.testing.assert_array_equal(lava.readout, ref.readout)
    for name in ref.final_state:
        np.testing.assert_array_equal(lava.final_state[name], ref.final_state[name], err_msg=name)
    assert set(lava.spike_counts) == set(ref.spike_counts) and lava.spike_counts
    for name in ref.spike_counts:
        np.testing.assert_array_equal(lava.spike_trains[name], ref.spike_trains[name])
        np.testing.assert_array_equal(lava.spike_counts[name], ref.spike_counts[name])
    assert sum(int(c.sum()) for c in lava.spike_counts.values()) > 0
    rows = {r["process"]: r for r in describe_lowering(qnet, frames)}
    assert rows["PeriodicLIF"]["stock_loihi2"] is False
    assert ("graded" in rows["RingBuffer"]["note"]) == (encoding == "direct")
