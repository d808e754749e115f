"""Per-neuron decays and thresholds on the reference engine: the fused C step equals Lava's rules as written.

The engine runs a population whose ``du``, ``dv`` or ``vth`` differ per neuron
through ``native/lif_step.c`` with per-neuron factors; without the compiled
kernel it takes ``fixed_point.lif_subthreshold`` in int64 (each line of it
cites Lava). Hypothesis draws the extremes (no decay, full decay, the largest
threshold, biases and inputs that wrap the 24-bit ``u`` and saturate ``v``).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from neurocompile.ir import FixedPoint, Network, NeuronFixed, Population, Projection, RunSettings, SynapseFixed
from neurocompile.sim import native
from neurocompile.sim.engine import simulate

pytestmark = pytest.mark.skipif(native.lif_step() is None, reason=f"no fused kernel here ({native.status()})")

DECAYS = st.sampled_from([0, 1, 7, 100, 2048, 4000, 4094, 4095])


def _net(seed: int, n: int, du, dv, vth, bias_exp: int, reset: str, wide: bool) -> Network:
    rng = np.random.default_rng(seed)
    w_in = rng.integers(-254, 255, (n, 4)) & ~1
    w_rec = sp.random(n, n, density=0.4, random_state=seed, data_rvs=lambda k: (rng.integers(-120, 120, k) * 2), format="csr").astype(np.int64)
    w_out = rng.integers(-50, 50, (2, n)) * 2
    pops = (Population("in", (4,), "input"), Population("h", (n,), "spiking", reset=reset), Population("out", (2,), "readout"))
    projs = (Projection("ih", "in", "h", "dense", w_in.astype(float)),
             Projection("hh", "h", "h", "sparse", w_rec.astype(float), recurrent=True),
             Projection("ho", "h", "out", "dense", w_out.astype(float)))
    fixed = FixedPoint(
        neurons={"h": NeuronFixed(vth=vth, bias_mant=rng.integers(-4000, 4000, n), bias_exp=bias_exp, du=du, dv=dv),
                 "out": NeuronFixed(vth=1, bias_mant=np.zeros(2, np.int64), bias_exp=0, du=du[:2], dv=dv[:2])},
        synapses={"ih": SynapseFixed(w_in, 6 if wide else 0), "hh": SynapseFixed(w_rec, 3 if wide else -2), "ho": SynapseFixed(w_out)})
    return Network(pops, projs, inputs=("in",), outputs=("out",), settings=RunSettings(timesteps=20), fixed=fixed)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), n=st.integers(2, 40), du=st.lists(DECAYS, min_size=40, max_size=40),
       dv=st.lists(DECAYS, min_size=40, max_size=40), vth=st.lists(st.sampled_from([0, 1, 50, 3000, (1 << 17) - 1]), min_size=40, max_size=40),
       bias_exp=st.integers(0, 7), reset=st.sampled_from(["subtract", "zero"]), wide=st.booleans(), graded=st.booleans())
def test_fused_per_neuron_step_equals_lavas_rules(monkeypatch, seed, n, du, dv, vth, bias_exp, reset, wide, graded):
    net = _net(seed, n, np.array(du[:n]), np.array(dv[:n]), np.array(vth[:n]), bias_exp, reset, wide)
    rng = np.random.default_rng(seed + 1)
    frames = torch.as_tensor(rng.integers(-255, 256, (3, 21, 4)) if graded else rng.integers(0, 2, (3, 21, 4)))
    fused = simulate(net, frames, "fixed", record=True, readout_steps=(7, 20))
    with monkeypatch.context() as m:
        m.setattr(native, "lif_step", lambda: None)
        plain = simulate(net, frames, "fixed", record=True, readout_steps=(7, 20))
    assert torch.equal(fused.spike_trains["h"], plain.spike_trains["h"])
    assert torch.equal(fused.readout.to(torch.int64), plain.readout.to(torch.int64))
    for name in ("h", "out"):
        for a, b in zip(fused.state[name], plain.state[name]):
            assert torch.equal(a.to(torch.int64).expand_as(b), b.to(torch.int64)), name
    for t in (7, 20):
        assert torch.equal(fused.readouts_at[t].to(torch.int64), plain.readouts_at[t].to(torch.int64))
