"""The linear-algebra steps of LNP against independent computations (simulation, closed forms, networkx)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

from neurocompile.errors import NeurocompileError
from neurocompile.lnp import (
    eigendecompose, harmonic_mean_exponent, inverse_participation_ratio, ipr_sensitivity, linearize,
    local_lyapunov_exponents, lyapunov_matrix, mean_leading_ipr, noise_scores, solve_k, sparsify,
    spectral_abscissa, spectral_radius, stability_shift, stationary_covariance,
)


def random_network(n: int, density: float, radius: float, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    tau = np.maximum(rng.gamma(3.0, 20.0 / 3.0, n), 1.0)
    W = sp.random(n, n, density=density, random_state=seed, data_rvs=rng.standard_normal, format="csr")
    return W * (radius * np.median(1 / tau) / np.sqrt(n * density)), tau


def test_linearize_is_leak_plus_gain_scaled_rows():
    W = np.array([[0.0, 2.0], [-1.0, 0.5]])
    A = linearize(W, [2.0, 4.0], gain=[0.5, 2.0])
    np.testing.assert_allclose(A, [[-0.5, 1.0], [-2.0, -0.25 + 1.0]])


def test_covariance_matches_euler_maruyama_simulation():
    # a non-normal, stable 3-neuron system; 20,000 independent trajectories, sampled at stationarity
    A = np.array([[-1.0, 0.8, 0.0], [-0.3, -0.5, 0.6], [0.4, 0.0, -0.8]])
    sigma, dt, steps, N = 0.7, 0.005, 3000, 20_000
    rng = np.random.default_rng(0)
    x = np.zeros((N, 3))
    for _ in range(steps):  # dx = A x dt + σ √2 dB  (⟨ξξᵀ⟩ = 2δ, the convention of the LNP description)
        x += dt * x @ A.T + sigma * np.sqrt(2 * dt) * rng.standard_normal((N, 3))
    empirical = np.cov(x.T)
    C = stationary_covariance(A, noise_std=sigma)
    # sampling error ~ √(2/N) ≈ 1 % of the scale, Euler bias O(dt) ≈ 0.5 %; halving or doubling
    # σ² (the usual convention slip) would be off by 50-100 %
    assert np.max(np.abs(C - empirical)) < 0.05 * np.max(np.abs(C))
    np.testing.assert_allclose(C, sla.solve_continuous_lyapunov(A, -2 * sigma**2 * np.eye(3)), rtol=1e-10, atol=1e-12)


def test_eigenbasis_covariance_agrees_with_bartels_stewart_and_shift_makes_it_psd():
    W, tau = random_network(60, 0.2, 1.5, seed=3)
    A = linearize(W, tau)
    eig = eigendecompose(A)
    assert spectral_abscissa(eig.values) > 0  # unstable: needs the shifted probe
    with pytest.raises(NeurocompileError):
        stationary_covariance(A, eig=eig)
    s = stability_shift(eig, 0.01)
    assert spectral_abscissa(eig.values) - s == pytest.approx(-0.01)
    C = stationary_covariance(A, eig=eig, shift=s)
    ref = sla.solve_continuous_lyapunov(A - s * np.eye(60), -2 * np.eye(60))
    np.testing.assert_allclose(C, ref, rtol=1e-6, atol=1e-9 * np.abs(ref).max())
    assert np.linalg.eigvalsh(C).min() > 0


def test_local_exponents_limits_and_diagonal_case():
    rng = np.random.default_rng(1)
    A = -np.diag([0.1, 0.5, 2.0])
    np.testing.assert_allclose(local_lyapunov_exponents(A, horizon=3.0), [-0.1, -0.5, -2.0])  # exact: e^{-aT}
    A = -np.eye(5) + 0.3 * rng.standard_normal((5, 5))
    np.testing.assert_allclose(local_lyapunov_exponents(A, horizon=1e-6), np.diag(A), atol=1e-5)  # T → 0
    long = local_lyapunov_exponents(A, horizon=400.0)  # T → ∞: every neuron sees the slowest mode
    np.testing.assert_allclose(long, spectral_abscissa(np.linalg.eigvals(A)), atol=0.02)


def test_harmonic_mean_signs():
    a = np.array([-1.0, -3.0, 2.0, -1.0, 0.0, 1.0])
    b = np.array([-1.0, -1.0, 2.0, 1.0, -2.0, 3.0])
    np.testing.assert_allclose(harmonic_mean_exponent(a, b), [-1.0, -1.5, 2.0, 0.0, 0.0, 1.5])


def test_lyapunov_matrix_on_the_synapse_pattern():
    W = sp.csr_matrix(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -2.0], [3.0, 0.0, 0.0]]))
    L = lyapunov_matrix(W, np.array([-1.0, -3.0, 2.0]))
    np.testing.assert_array_equal(L.indptr, W.indptr)
    np.testing.assert_array_equal(L.indices, W.indices)
    np.testing.assert_allclose(L.toarray(), [[0.0, -1.5, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


def test_spectrum_measures():
    M = np.array([[0.0, 2.0], [-2.0, 0.0]])  # eigenvalues ±2i
    assert spectral_radius(np.linalg.eigvals(M)) == pytest.approx(2.0)
    assert spectral_abscissa(np.linalg.eigvals(M - np.eye(2))) == pytest.approx(-1.0)
    V = np.stack([np.eye(4)[0], np.full(4, 0.5), np.array([1.0, 1.0, 0.0, 0.0]) * 3j], axis=1)
    np.testing.assert_allclose(inverse_participation_ratio(V), [1.0, 0.25, 0.5])


def test_ipr_sensitivity_matches_finite_differences():
    W, tau = random_network(30, 0.3, 1.5, seed=5)
    A = linearize(W, tau)
    eig = eigendecompose(A)
    S = ipr_sensitivity(eig, 4)
    base = mean_leading_ipr(eig, 4)
    rng = np.random.default_rng(0)
    pairs = [tuple(rng.integers(30, size=2)) for _ in range(6)] + [np.unravel_index(np.argmax(np.abs(S)), S.shape)]
    eps = 1e-7
    for i, j in pairs:
        B = A.copy()
        B[i, j] += eps
        fd = (mean_leading_ipr(eigendecompose(B), 4) - base) / eps
        assert fd == pytest.approx(S[i, j], rel=1e-3, abs=1e-4 * np.abs(S).max())


def test_noise_scores_are_difference_variances():
    C = np.array([[2.0, 0.5], [0.5, 1.0]])
    W = sp.csr_matrix(np.array([[0.0, 3.0], [-2.0, 0.0]]))
    # W[0,1]=3 (excitatory): 3·Var(x0 - x1) = 3·(2 + 1 - 1); W[1,0]=-2: 2·Var(x1 + x0) = 2·(3 + 1)
    np.testing.assert_allclose(noise_scores(W, C), [6.0, 8.0])


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_solve_k_hits_the_expected_fraction(keep):
    scores = np.random.default_rng(0).lognormal(0, 2, 5000)
    k = solve_k(scores, keep)
    assert np.minimum(1, k * scores).mean() == pytest.approx(keep, rel=1e-9)


def test_sparsify_rescales_survivors_by_inverse_probability():
    W, _ = random_network(80, 0.2, 1.0, seed=2)
    scores = np.abs(np.random.default_rng(1).standard_normal(W.nnz)) + 0.1
    u = np.random.default_rng(2).random(W.nnz)
    out = sparsify(W, scores, sparsity=0.6, uniforms=u)
    kept = u < out.probabilities
    np.testing.assert_array_equal(out.kept, kept)
    assert out.weights.nnz == kept.sum()
    survivors = sp.csr_matrix((W.data / out.probabilities, W.indices, W.indptr), shape=W.shape).multiply(
        sp.csr_matrix((kept.astype(float), W.indices, W.indptr), shape=W.shape))
    np.testing.assert_allclose(out.weights.toarray(), survivors.toarray())
    assert out.probabilities.mean() == pytest.approx(0.4, rel=1e-9)
    top = sparsify(W, scores, sparsity=0.6, mode="top")
    assert top.weights.nnz == W.nnz - round(0.6 * W.nnz)
    assert set(np.abs(top.weights.data)) <= set(np.abs(W.data))  # no rescaling in top mode
