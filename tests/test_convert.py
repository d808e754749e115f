"""Conversion: IF rates reproduce ReLU activations; thresholds come from calibration data."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurocompile.errors import NeurocompileError
from neurocompile.ir import Network, Population, Projection
from neurocompile.passes.convert import activation_scales, convert
from neurocompile.sim.ann import ann_forward
from neurocompile.sim.run import evaluate, frames_for, period
from neurocompile.sim.float_sim import FloatSimulator


def one_layer(w: np.ndarray, b: np.ndarray) -> Network:
    n_out, n_in = w.shape
    return Network(
        populations=(
            Population("input", (n_in,), "input"),
            Population("h", (n_out,), "spiking", bias=b),
            Population("output", (1,), "readout", bias=np.zeros(1)),
        ),
        projections=(Projection("i->h", "input", "h", "dense", w), Projection("h->o", "h", "output", "dense", np.ones((1, n_out)))),
        inputs=("input",),
        outputs=("output",),
    )


def test_if_rates_match_relu_activations_within_one_spike():
    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 0.5, (20, 6)), rng.normal(0, 0.1, 20)
    x = rng.uniform(0, 1, (50, 6))
    net = one_layer(w, b)
    T = 64
    snn = convert(net, x, timesteps=T, method="max")
    lam = snn.population("h").threshold
    with torch.no_grad():
        r = FloatSimulator(snn)(frames_for(snn, x, fixed=False))
    # layer h integrates P-1 steps (step 0 resets); rate · λ ≈ ReLU(Wx + b), error ≤ one spike
    steps = period(snn) - 1
    rate = r.spike_counts["h"].double().numpy() / steps
    want = np.clip(np.maximum(x @ w.T + b, 0) / lam, 0, 1)
    assert np.abs(rate - want).max() <= 1.0 / steps + 1e-9


def test_max_and_percentile_thresholds_from_ann_activations():
    rng = np.random.default_rng(1)
    w, b = rng.normal(0, 1, (10, 4)), np.zeros(10)
    x = rng.uniform(0, 1, (200, 4))
    net = one_layer(w, b)
    acts = ann_forward(net, torch.as_tensor(x))["h"].numpy()
    pos = acts[acts > 0]
    assert activation_scales(net, x, "max")["h"] == pytest.approx(pos.max())
    assert activation_scales(net, x, "percentile", 99.0)["h"] == pytest.approx(np.percentile(pos, 99.0), rel=1e-6)


def test_weights_scaled_by_source_threshold():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (100, 3))
    net = one_layer(rng.normal(0, 1, (5, 3)), np.zeros(5))
    snn = convert(net, x, timesteps=8, method="max")
    lam_h = snn.population("h").threshold
    np.testing.assert_allclose(snn.projections[1].weight, net.projections[1].weight * lam_h)
    np.testing.assert_allclose(snn.projections[0].weight, net.projections[0].weight)  # input λ = 1


def test_snn_matches_ann_on_digits(digits, trained_mlp):
    from neurocompile.frontend import ingest

    path, model = trained_mlp
    net = ingest(path)
    x_tr, x_te, y = digits.x_train, digits.x_test, digits.y_test
    with torch.no_grad():
        ann = (model(torch.as_tensor(x_te)).argmax(1).numpy() == y).mean()
    snn = convert(net, x_tr[:512], timesteps=32)
    acc = evaluate(snn, x_te, "float").accuracy(y)
    assert ann > 0.93
    assert acc >= ann - 0.02, (acc, ann)


def test_rate_encoding_is_reproducible_per_sample():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (6, 5))
    net = convert(one_layer(rng.normal(0, 1, (4, 5)), np.zeros(4)), x, timesteps=16, encoding="rate")
    all_frames = frames_for(net, x, fixed=True)
    tail = frames_for(net, x[3:], fixed=True, first_index=3)
    assert torch.equal(all_frames[3:], tail)  # same sample index → same spikes, whatever the batch
    assert set(np.unique(all_frames.numpy())) <= {0, 1}
    assert abs(all_frames.double().mean().item() - x.mean()) < 0.05


def test_bad_options_are_refused():
    net = one_layer(np.ones((2, 2)), np.zeros(2))
    with pytest.raises(NeurocompileError, match="encoding"):
        convert(net, np.ones((2, 2)), timesteps=8, encoding="poisson")
    with pytest.raises(NeurocompileError, match="threshold method"):
        convert(net, np.ones((2, 2)), timesteps=8, method="mean")
    with pytest.raises(NeurocompileError, match="timesteps"):
        convert(net, np.ones((2, 2)), timesteps=0)
