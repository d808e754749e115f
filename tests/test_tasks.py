"""Generated tasks and training helpers (neurocompile.tasks) against independent computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from neurocompile.data import Dataset
from neurocompile.errors import NeurocompileError
from neurocompile.nn import HRSNN
from neurocompile.tasks import (
    DirectEncoding, EndToEndSettings, ReadoutSettings, SeriesSettings, fit_ridge, lorenz, make_prediction_task, nrmse,
    rossler, select_ridge, sequential_digits, train_end_to_end, train_readout,
)
from neurocompile.tasks.sequences import sequence_task


pytestmark = pytest.mark.usefixtures("one_thread")


def rk4(f, x0: np.ndarray, n_samples: int, dt: float, substeps: int) -> np.ndarray:
    """Classic fixed-step Runge–Kutta, ``substeps`` steps per sample."""
    h = dt / substeps
    x = np.asarray(x0, dtype=np.float64)
    out = [x]
    for _ in range(n_samples - 1):
        for _ in range(substeps):
            k1 = f(x)
            k2 = f(x + h / 2 * k1)
            k3 = f(x + h / 2 * k2)
            k4 = f(x + h * k3)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(x)
    return np.array(out)


def lorenz_rhs(s):
    x, y, z = s
    return np.array([10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z])


def rossler_rhs(s):
    x, y, z = s
    return np.array([-y - z, x + 0.2 * y, 0.2 + z * (x - 5.7)])


@pytest.mark.parametrize("make, rhs, dt", [(lorenz, lorenz_rhs, 0.02), (rossler, rossler_rhs, 0.1)])
def test_series_match_hand_rk4(make, rhs, dt):
    s = SeriesSettings(n_samples=200, dt=dt, transient=50, seed=3)
    series = make(s)
    ref = rk4(rhs, series.x0, 250, dt, substeps=40)[50:]
    assert series.values.shape == (200, 3)
    np.testing.assert_allclose(series.values, ref, rtol=0, atol=1e-6 * np.abs(ref).max())


def test_series_are_seeded():
    a, b, c = (lorenz(SeriesSettings(n_samples=50, transient=10, seed=s)).values for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_nrmse_of_trivial_predictors():
    y = np.array([1.0, 2.0, 4.0, 7.0])
    p = np.array([0.0, 1.0, 2.0, 4.0])  # persistence: the previous value
    std = np.sqrt(np.mean((y - 3.5) ** 2))  # 2.2913...
    assert nrmse(p, y) == pytest.approx(np.sqrt((1 + 1 + 4 + 9) / 4) / std, rel=1e-15)
    assert nrmse(np.full(4, y.mean()), y) == pytest.approx(1.0, rel=1e-15)
    assert nrmse(y, y) == 0.0
    # two components: total squared error over the summed variance of each about its own mean
    y2 = np.stack([y, 10 * y + 100], 1)
    p2 = y2 + np.array([1.0, -2.0])
    assert nrmse(p2, y2) == pytest.approx(np.sqrt((1 + 4) / 2) / np.sqrt((np.var(y) + 100 * np.var(y)) / 2), rel=1e-14)
    with pytest.raises(NeurocompileError):
        nrmse(np.zeros(3), np.ones(3))


def test_prediction_task_alignment_and_normalisation():
    series = lorenz(SeriesSettings(n_samples=1000, transient=100, seed=0))
    task = make_prediction_task(series, horizon=3, washout=50)
    z = (series.values - task.mean) / task.std
    np.testing.assert_allclose(task.inputs, z)
    t = task.rows["val"][5]
    np.testing.assert_array_equal(task.targets[t], z[t + 3])
    np.testing.assert_array_equal(task.persistence("val")[5], z[t])
    rows = np.concatenate([task.rows[s] for s in ("train", "val", "test")])
    np.testing.assert_array_equal(rows, np.arange(50, 997))  # chronological, nothing scored twice
    train = z[: task.rows["train"][-1] + 4]
    np.testing.assert_allclose(train.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(train.std(0), 1, atol=1e-12)
    x, y, washout = task.windows("train", 40, 10)
    assert x.shape[1:] == (40, 3) and y.shape == x.shape and washout == 10
    np.testing.assert_array_equal(y[:, :-3], x[:, 3:])  # targets are the inputs 3 samples ahead
    assert not np.isnan(y).any()


def test_ridge_matches_scikit_learn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 10))
    y = x @ rng.normal(size=(10, 2)) + 3 + 0.1 * rng.normal(size=(200, 2))
    for alpha in (0.0, 0.5, 20.0):
        ours = fit_ridge(x, y, alpha)
        sk = Ridge(alpha=alpha, solver="svd").fit(x, y)
        np.testing.assert_allclose(ours.weight, sk.coef_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.bias, sk.intercept_, rtol=1e-9)


def test_select_ridge_picks_the_best_validation_penalty():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 40))
    w = rng.normal(size=(40, 1))
    y = x @ w + rng.normal(size=(60, 1)) * 2
    xv = rng.normal(size=(100, 40))
    yv = xv @ w
    fit, scores = select_ridge(x, y, xv, yv, nrmse, alphas=(1e-6, 1.0, 10.0, 100.0, 1e5))
    assert fit.alpha == min(scores, key=scores.get)
    assert nrmse(fit.predict(xv), yv) == scores[fit.alpha]
    assert 1e-6 < fit.alpha < 1e5  # overfitting and underfitting both lose on validation


def test_direct_encoding():
    x = np.arange(6.0).reshape(3, 2)
    f = DirectEncoding(gain=2.0, offset=-1.0)(x)
    assert f.shape == (1, 3, 2) and f.dtype == torch.float32
    np.testing.assert_array_equal(f[0].numpy(), 2 * x - 1)


def test_hrsnn_ridge_beats_persistence_on_lorenz():
    task = make_prediction_task(lorenz(SeriesSettings(n_samples=3000, dt=0.02, seed=0)), horizon=1)
    model = HRSNN(3, 200, 3, tau_shape=2.0, tau_mean=5.0, recurrent_density=0.1, input_gain=2.0, bias_std=0.5,
                  readout_leak=0.2, seed=0)
    result = train_readout(model, task, ReadoutSettings(progress=False))
    print(f"lorenz one-step NRMSE: test {result.scores['test']:.4f}, persistence {result.baseline['test']:.4f}, alpha {result.readout.alpha:g}")
    assert result.baseline["test"] > 0.1  # the sampling step makes persistence a real baseline
    assert result.scores["test"] < 0.6 * result.baseline["test"]
    # the scores are the model's own streaming readout: the same as the ridge fit on the states, up to rounding
    with torch.no_grad():
        run = model(DirectEncoding()(task.inputs))
        states = model.readout.traces(run.spikes)[0, 2:].double().numpy()
    rows = task.rows["test"]
    assert nrmse(result.readout.predict(states[rows]), task.targets[rows]) == pytest.approx(result.scores["test"], rel=1e-4)


def test_sequential_tasks_are_image_rows():
    rng = np.random.default_rng(0)
    images = rng.random((40, 1, 28, 28)).astype(np.float32)
    labels = np.repeat(np.arange(4), 10)
    task = sequence_task(Dataset("mnist", images[:30], labels[:30], images[30:], labels[30:]), 0.25, seed=0)
    assert task.x_train.shape[1:] == (28, 28) and task.timesteps == 28 and task.n_in == 28
    i = int(np.flatnonzero((images[:30, 0] == task.x_val[0]).all(axis=(1, 2)))[0])  # a validation sequence is an image
    np.testing.assert_array_equal(task.x_val[0][5], images[i, 0, 5])  # step 5 = row 5
    assert len(task.x_train) + len(task.x_val) == 30


@pytest.fixture(scope="module")
def digits_task():
    return sequential_digits(seed=0)


def test_sequential_digits_shapes(digits_task):
    t = digits_task
    assert t.x_train.shape[1:] == (8, 8) and t.x_test.shape[1:] == (8, 8) and t.n_classes == 10
    assert t.x_train.dtype == np.float32 and 0 <= t.x_train.min() and t.x_train.max() <= 1
    assert len(t.x_train) + len(t.x_val) + len(t.x_test) == 1797


def digits_model() -> HRSNN:
    return HRSNN(8, 128, 10, 2.0, 4.0, recurrent_density=0.2, input_gain=2.0, bias_std=0.3, seed=0)


def test_ridge_readout_on_sequential_digits(digits_task):
    result = train_readout(digits_model(), digits_task, ReadoutSettings(progress=False))
    print(f"digits ridge readout: {result.scores}")
    assert result.scores["test"] > 0.6


def test_end_to_end_training_on_sequential_digits(digits_task):
    settings = EndToEndSettings(lr=1e-2, seed=0, progress=False)
    a, b = digits_model(), digits_model()
    with torch.no_grad():
        before = (a.logits(torch.as_tensor(digits_task.x_test)).argmax(1).numpy() == digits_task.y_test).mean()
    ra = train_end_to_end(a, digits_task, 2, settings)
    print(f"digits end to end: before {before:.3f}, after {ra.scores}, losses {ra.losses}")
    assert before < 0.25 and ra.scores["test"] > 0.4 and ra.losses[1] < ra.losses[0]
    rb = train_end_to_end(b, digits_task, 2, settings)
    assert ra.losses == rb.losses  # seeded and deterministic
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    h = a.hidden
    assert (h.leak > 0).all() and (h.leak <= 1).all() and (h.recurrent_weight[~h.recurrent_mask] == 0).all()


def test_end_to_end_training_on_a_series_runs():
    task = make_prediction_task(rossler(SeriesSettings(n_samples=600, dt=0.1, transient=100, seed=1)), horizon=1, washout=20)
    model = HRSNN(3, 40, 3, 2.0, 5.0, input_gain=2.0, bias_std=0.5, readout_leak=0.2, seed=0)
    r = train_end_to_end(model, task, 3, EndToEndSettings(lr=1e-2, window=40, window_washout=10, batch_size=8, progress=False))
    assert r.metric == "nrmse" and len(r.losses) == 3 and r.losses[-1] < r.losses[0]
    assert np.isfinite(list(r.scores.values())).all()


def test_task_and_model_sizes_must_agree(digits_task):
    with pytest.raises(NeurocompileError, match="needs 8 to 10"):
        train_readout(HRSNN(3, 10, 10, 2.0, 4.0), digits_task, ReadoutSettings(progress=False))
