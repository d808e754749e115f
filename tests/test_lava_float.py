"""Float mode: the engine's float arithmetic equals Lava's floating_pt models on the same numbers."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

pytest.importorskip("lava")
from test_lava_agreement import random_frames, random_network  # noqa: E402

from neurocompile.ir import Network  # noqa: E402
from neurocompile.sim.float_sim import FloatSimulator  # noqa: E402
from neurocompile.target import LOIHI2  # noqa: E402
from neurocompile_lava.backend import LavaBackend  # noqa: E402

pytestmark = pytest.mark.lava


def dequantize(net: Network) -> Network:
    """The float network that computes exactly what the quantised one does, in Lava's float units.

    ``LOIHI2.float_equivalents`` for the neurons; weights ``w·2^weight_exp``
    after Lava's truncation. Lava's ``floating_pt`` models run these numbers;
    so does the float engine, which makes the two comparable.
    """
    pops = [net.population(net.input)]
    for p in net.neurons:
        q = net.neuron_fixed(p.name)
        f = LOIHI2.float_equivalents(q.vth, q.bias_mant, q.bias_exp, q.du, q.dv)
        pops.append(dataclasses.replace(p, threshold=f["vth"], bias=f["bias"], leak=f["dv"], current_decay=f["du"]))
    projs = []
    for pr in net.projections:
        sf = net.synapse_fixed(pr.name)
        w = LOIHI2.synapse_weights(pr, sf.weight).astype(np.float64) * 2.0**sf.exp
        projs.append(dataclasses.replace(pr, weight=w))
    return net.replace(populations=tuple(pops), projections=tuple(projs), fixed=None)


def assert_float_simulator_is_lava_floating_pt(qnet: Network, frames: np.ndarray) -> None:
    """The float simulator on :func:`dequantize`'d ``qnet`` and Lava's floating_pt models: the same spike trains, not all silent."""
    lava = LavaBackend(precision="floating_pt").run(qnet, frames, record=True)
    with torch.no_grad():
        ours = FloatSimulator(dequantize(qnet), dtype=torch.float64)(torch.as_tensor(frames), record=True)
    for name, trains in lava.spike_trains.items():
        np.testing.assert_array_equal(ours.spike_trains[name].numpy(), trains, err_msg=name)
    assert sum(int(t.sum()) for t in lava.spike_trains.values()) > 0


@pytest.mark.parametrize("seed", [0, 3])
def test_float_engine_matches_lava_floating_pt(backend, seed):
    assert_float_simulator_is_lava_floating_pt(random_network(seed, recurrent=seed == 3), random_frames(seed, 2, 12, graded=False))
