"""The reference engine against Lava's *stock* fixed-point LIF and Conv processes.

The lowering runs populations as PeriodicLIF (stock LIF's own sub-threshold
model plus a per-sample reset) and conv projections as stock Conv where that is
exact, else Sparse (neurocompile_lava.plan.conv_is_exact); these tests hold the
engine's rules against the stock processes themselves:

* stock ``LIF`` (zero reset, ``scale_bias`` every step, 24-bit ``u`` wrap,
  ``v`` clip, round-toward-zero decays) driven with arbitrary graded input,
  including inputs that wrap ``u`` and saturate ``v``: the engine's neuron
  update must give the same spike trains and final ``u``, ``v``, bit for bit;
* stock ``Conv``: with ``weight_exp = 0`` its messages equal the engine's conv
  projection (layout (X, Y, C), flipped kernel); it ignores ``weight_exp``
  (lava/proc/conv/models.py never reads it), which is why the lowering
  unrolls conv projections with an exponent into Sparse, which applies it.
"""
from __future__ import annotations

import json
import subprocess
from unittest import mock
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lava")

from neurocompile.ir_geometry import conv_output_hw  # noqa: E402
from neurocompile.ir import ConvSpec, NeuronFixed, Population, Projection, SynapseFixed  # noqa: E402
from neurocompile.sim import native  # noqa: E402
from neurocompile.sim.engine import _Neurons, _Synapses  # noqa: E402
from neurocompile_lava import runner  # noqa: E402

PROBE = Path(__file__).with_name("lava_stock_probe.py")


def run_probe(spec: dict, tmp_path: Path, timeout_s: float = 180) -> dict:
    """Run the probe in its own session; whatever happens, leave no actors or shared memory behind."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    before = runner.shm_segments()
    proc = subprocess.Popen([sys.executable, str(PROBE), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    finally:
        runner.terminate_group(proc)
        runner.remove_leaked_segments(before)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


# (du, dv, vth, bias_mant range, bias_exp, input magnitude): each case aims at one rule
LIF_CASES = [
    (4095, 0, 300, 400, 3, 60),  # integrate-and-fire: the engine's int32 fast path
    (0, 0, 5000, 100, 0, 1 << 16),  # u never decays: a_in << 6 wraps u at 24 bits
    (2048, 1000, 1000, 4095, 7, 1 << 14),  # large bias and input: v clips at ±(2^23 - 1)
    (100, 4095, 50, 4095, 7, 3000),  # v forgets everything, u decays slowly, negative drives
    (3000, 200, 0, 50, 2, 200),  # vth = 0: fires whenever v > 0
    ((1 << 12) - 1, 17, (1 << 17) - 1, 4095, 7, 1 << 17),  # largest threshold, biggest drive
]


def _reference_lif(du, dv, vth, bias_mant, bias_exp, a_in, kernel):
    """The engine's neuron update on the exact input sequence the stock LIF receives.

    ``kernel``: "native" lets the integrate-and-fire fast path use the fused C step
    (sim/native) where it applies; "torch" makes it use torch ops.
    """
    q = NeuronFixed(vth=vth, bias_mant=bias_mant, bias_exp=bias_exp, du=du, dv=dv)
    with mock.patch.object(native, "if_step", native.if_step if kernel == "native" else lambda: None):
        nrn = _Neurons(Population("h", (len(bias_mant),), "spiking", reset="zero"), q, 1,
                       in_bound=float(np.abs(a_in).max()), period=len(a_in) + 1)
    spikes = [nrn.step([(torch.as_tensor(a[None], dtype=nrn.v.dtype), 0)]) for a in a_in]
    u, v = nrn.state()
    return torch.cat(spikes).numpy(), u[0].numpy(), v[0].numpy()  # spikes (steps, n)


@pytest.mark.parametrize("seed", [0, 1])
def test_engine_neuron_matches_stock_lava_lif(seed, tmp_path):
    rng = np.random.default_rng(seed)
    n, steps = 6, 24
    cases, data = [], []
    for du, dv, vth, bmax, bexp, amp in LIF_CASES:
        cases.append({"du": du, "dv": dv, "vth": vth, "bias_mant": rng.integers(-bmax, bmax + 1, n).tolist(),
                      "bias_exp": [bexp] * n})
        data.append(rng.integers(-amp, amp + 1, (n, steps)) * (rng.random((n, steps)) < 0.7))
    got = run_probe({"kind": "lif", "data": np.concatenate(data).tolist(), "cases": cases}, tmp_path)["cases"]
    for case, d, lava in zip(cases, data, got):
        # the stock LIF gets a_in = 0 at step 1 (Dense sends its empty buffer first), then data[:, t - 2]
        a_in = np.concatenate([np.zeros((1, n), np.int64), d[:, : steps - 1].T])
        for kernel in ("native", "torch") if native.if_step() is not None else ("torch",):
            spikes, u, v = _reference_lif(case["du"], case["dv"], case["vth"], np.asarray(case["bias_mant"]), case["bias_exp"][0], a_in, kernel)
            what = f"du={case['du']} dv={case['dv']} vth={case['vth']} ({kernel})"
            assert np.array_equal(spikes, np.asarray(lava["spikes"]) != 0), what
            assert np.array_equal(u, lava["u"]), what
            assert np.array_equal(v, lava["v"]), what
    fired = [int(np.asarray(c["spikes"]).sum()) for c in got]
    assert fired[0] > 0 and sum(fired[1:]) > 0, f"spikes per case {fired}: the spike rule would go untested"


def _reference_conv(weight, frames, stride, padding, weight_exp, graded):
    """Our conv projection's messages for each frame (IR layout: (C, H, W), cross-correlation)."""
    in_shape = frames.shape[1:]
    c_out = weight.shape[0]
    h, w = conv_output_hw(*in_shape[1:], weight.shape[2:], stride, padding)
    proj = Projection("c", "a", "b", "conv", weight.astype(float),
                      conv=ConvSpec(in_shape=in_shape, out_shape=(c_out, h, w), stride=stride, padding=padding, groups=1))
    syn = _Synapses(proj, SynapseFixed(weight, weight_exp), max_input=float(np.abs(frames).max()), binary=not graded)
    syn.accept(torch.as_tensor(frames.reshape(len(frames), -1)))
    x, e = syn.message()
    return (x.to(torch.int64) << e).numpy().reshape(len(frames), c_out, h, w)


@pytest.mark.parametrize("graded", [False, True])
def test_engine_conv_matches_stock_lava_conv_and_why_conv_is_unrolled(graded, tmp_path):
    rng = np.random.default_rng(3)
    c_in, c_out, H, W, steps = 2, 3, 6, 5, 4
    weight = rng.integers(-120, 121, (c_out, c_in, 3, 3)) // 2 * 2  # even: Lava's 8-bit truncation keeps them
    frames = rng.integers(0, 256 if graded else 2, (steps, c_in, H, W))
    stride, padding = (1, 2), (1, 0)
    # Lava: input (X, Y, C) = our (C, H, W) transposed; weight (C_out, X, Y, C_in), flipped (Lava convolves)
    lava_w = weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)
    spec = {"kind": "conv", "data": frames.transpose(3, 2, 1, 0).tolist(), "weight": lava_w.tolist(),
            "stride": stride[::-1], "padding": padding[::-1], "num_message_bits": 8 if graded else 0}
    outs = {}
    for exp in (0, 2):
        a_out = np.asarray(run_probe({**spec, "weight_exp": exp}, tmp_path)["a_out"])  # (X', Y', C', steps)
        outs[exp] = a_out[..., 1:].transpose(3, 2, 1, 0)  # step t + 1 carries frame t: (steps - 1, C', Y', X')
    want = _reference_conv(weight, frames[: steps - 1], stride, padding, 0, graded)
    assert np.abs(want).max() > 0
    assert np.array_equal(outs[0], want)
    # weight_exp = 2 should multiply by 4; Lava's Conv sends the same as for 0
    assert np.array_equal(outs[2], want)
    assert not np.array_equal(_reference_conv(weight, frames[: steps - 1], stride, padding, 2, graded), want)
