"""Quantisation: formats respected, no overflow possible, fixed point tracks float."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from neurocompile.frontend import ingest
from neurocompile.passes.convert import convert
from neurocompile.passes.quantize import FixedPointFormat, quantize
from neurocompile.sim.run import evaluate
from neurocompile.target import LOIHI2


def _q(trained_mlp, digits, T=32, encoding="direct"):
    net = convert(ingest(trained_mlp[0]), digits.x_train[:512], timesteps=T, encoding=encoding)
    return net, quantize(net)


def test_integers_fit_the_loihi2_formats(trained_mlp, digits):
    _, q = _q(trained_mlp, digits)
    fmt = LOIHI2.format
    for pr in q.projections:
        sf = q.synapse_fixed(pr.name)
        w = sf.weight.data if sp.issparse(sf.weight) else np.asarray(sf.weight)
        assert w.dtype.kind == "i" and np.abs(w).max() <= 255
        assert fmt.weight_exp_min <= sf.exp <= fmt.weight_exp_max
        # already in the form Lava's Dense uses (mixed sign → even), so Lava changes nothing
        np.testing.assert_array_equal(LOIHI2.lava_weights(sf.weight), sf.weight)
    for p in q.neurons:
        nf = q.neuron_fixed(p.name)
        assert 0 < nf.vth < 2**17
        assert np.abs(nf.bias_mant).max() < 2**12 and 0 <= nf.bias_exp < 8
        assert (nf.du, nf.dv) == (4095, 0)


def test_worst_case_input_cannot_overflow_the_state(trained_mlp, digits):
    _, q = _q(trained_mlp, digits)
    for p in q.neurons:
        worst = 0
        for pr in q.incoming(p.name):
            unit = 255 if pr.source == q.input else 1  # direct input payloads are 8 bit
            sf = q.synapse_fixed(pr.name)
            w = abs(sp.csr_matrix(sf.weight)).toarray() * 2.0**sf.exp * unit
            worst = np.maximum(worst, w.sum(1))
        assert (worst * 64).max() < 2**23  # a_in << 6 never wraps u


def test_fixed_point_accuracy_tracks_float(trained_mlp, digits):
    for encoding in ("direct", "rate"):
        net, q = _q(trained_mlp, digits, encoding=encoding)
        ef = evaluate(net, digits.x_test, "float")
        eq = evaluate(q, digits.x_test, "fixed")
        assert abs(ef.accuracy(digits.y_test) - eq.accuracy(digits.y_test)) <= 0.02, encoding
        agree = (ef.logits.argmax(1) == eq.logits.argmax(1)).mean()
        assert agree >= 0.95, (encoding, agree)
        for k in ef.spike_counts:  # spike counts per sample within a few percent
            rel = abs(ef.spike_counts[k].sum() - eq.spike_counts[k].sum()) / ef.spike_counts[k].sum()
            assert rel < 0.05, (encoding, k, rel)


def test_format_from_profile_table():
    class P:
        formats = {"weight_bits": {"value": 6, "unit": "bit"}, "vth_bits": 12, "irrelevant": 3}

    f = FixedPointFormat.from_profile(P())
    assert f.weight_bits == 6 and f.vth_bits == 12 and f.state_bits == 24


def test_the_format_comes_from_the_loihi2_profile():
    """One source of bit widths: the target's format is the shipped profile's [formats]; the rules follow it."""
    from neurocompile.profiles import load_profile

    p = load_profile("loihi2")
    assert FixedPointFormat.from_profile(p) == LOIHI2.format
    assert LOIHI2.threshold_shift == int(p.formats["threshold_shift"])
    assert LOIHI2.uv_max == 1 << (int(p.formats["state_bits"]) - 1)
    assert LOIHI2.clip_range["mixed"] == (-(1 << int(p.formats["weight_bits"])), (1 << int(p.formats["weight_bits"])) - 1)
    six = FixedPointFormat.from_profile(type("P", (), {"formats": {"weight_bits": 6}})())
    assert six.weight_top(mixed=True) == 62 and six.weight_top(mixed=False) == 63
