"""Float mode: the engine's float arithmetic equals Lava's floating_pt models on the same numbers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("lava")
from test_lava_agreement import random_frames, random_network  # noqa: E402

from neurocompile.passes.quantize import dequantize  # noqa: E402
from neurocompile.sim.engine import simulate  # noqa: E402
from neurocompile_lava.backend import LavaBackend  # noqa: E402

pytestmark = pytest.mark.lava


@pytest.mark.parametrize("seed", [0, 3])
def test_float_engine_matches_lava_floating_pt(backend, seed):
    qnet = random_network(seed, recurrent=seed == 3)
    frames = random_frames(seed, 2, 12, graded=False)
    lava = LavaBackend(precision="floating_pt").run(qnet, frames, record=True)
    ours = simulate(dequantize(qnet), torch.as_tensor(frames), "float", record=True, dtype=torch.float64)
    for name, trains in lava.spike_trains.items():
        np.testing.assert_array_equal(ours.spike_trains[name].numpy(), trains, err_msg=name)
    assert sum(int(t.sum()) for t in lava.spike_trains.values()) > 0
