"""The stationary covariance of the noise-driven linear network (input to the spectral sparsifier).

For dx/dt = A x + σ ξ (ξ white, unit intensity per neuron) the stationary covariance solves the
continuous Lyapunov equation A C + C Aᵀ = -σ² I (Moore & Chaudhuri, NeurIPS 2020; the
LNP description writes the noise term as 2σ² I, i.e. σ ξ with ⟨ξ ξᵀ⟩ = 2 δ(t) -- we follow
that convention: ``noise_std`` σ gives A C + C Aᵀ = -2σ² I). σ only scales C, and the
sparsifier's constant k absorbs any scale, so σ does not change which synapses are kept.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from neurocompile.errors import NeurocompileError

from .checks import check_positive, deterministic_blas
from .spectrum import Eigen, eigendecompose, spectral_abscissa

#: relative residual above which the eigenbasis solution is replaced by Bartels–Stewart
_RESIDUAL_TOL = 1e-8


def stability_shift(eig: Eigen, margin: float) -> float:
    """The extra leak s ≥ 0 that makes A - s I stable with abscissa ≤ -margin.

    Why: an untrained random network can be linearly unstable (abscissa ≥ 0), and then no
    stationary covariance exists -- the Lyapunov equation still has a solution, but it is not
    positive semidefinite and the keep probabilities would be meaningless. Probing the network
    with extra uniform leak keeps every eigenvector and shifts every eigenvalue by the same -s, so
    the sparsifier still preserves the spectrum of W (which is what the shifted and the original
    A share); physically it is the covariance the noise produces within a window of ~1/margin
    steps, before the unstable modes run away.
    """
    return max(0.0, spectral_abscissa(eig.values) + check_positive(margin, "margin"))


def stationary_covariance(A: np.ndarray, *, noise_std: float = 1.0, eig: Eigen | None = None,
                          shift: float = 0.0) -> np.ndarray:
    """C with (A - sI) C + C (A - sI)ᵀ = -2σ² I, for a stable A - sI.

    Method: in the eigenbasis A = V Λ V⁻¹ the equation decouples, X_kl = -2σ² (V⁻¹V⁻ᴴ)_kl /
    (λ_k + conj λ_l - 2s), C = V X Vᴴ. Why not only ``scipy.linalg.solve_continuous_lyapunov``:
    its Bartels–Stewart back-substitution (LAPACK ``trsyl``) is unblocked and took 61 s at
    n = 2,000 on 2 cores, while the eigenbasis route is a handful of BLAS-3 products (~3 s) and
    reuses the eigendecomposition LNP needs anyway. The eigenbasis is ill-conditioned for
    near-defective A, so the residual is checked and the exact Bartels–Stewart solver is used
    whenever it is not small. All products run on one BLAS thread (:func:`.checks.deterministic_blas`),
    so C is bitwise reproducible.
    """
    with deterministic_blas():
        return _stationary_covariance(A, noise_std, eig, shift)


def _stationary_covariance(A: np.ndarray, noise_std: float, eig: Eigen | None, shift: float) -> np.ndarray:
    A = np.asarray(A, dtype=np.float64)
    sigma2 = check_positive(noise_std, "noise_std") ** 2
    n = A.shape[0]
    eig = eig if eig is not None else eigendecompose(A)
    lam = eig.values - shift
    if np.max(lam.real) >= 0:
        raise NeurocompileError("the linearised network is unstable; pass a shift from stability_shift()")
    V, U = eig.vectors, eig.left
    X = -2 * sigma2 * (U @ U.conj().T) / (lam[:, None] + lam.conj()[None, :])
    C = (V @ X @ V.conj().T).real
    C = (C + C.T) / 2
    As = A - shift * np.eye(n)
    residual = np.linalg.norm(As @ C + C @ As.T + 2 * sigma2 * np.eye(n))
    if not np.isfinite(residual) or residual > _RESIDUAL_TOL * max(1.0, np.linalg.norm(As) * np.linalg.norm(C)):
        C = sla.solve_continuous_lyapunov(As, -2 * sigma2 * np.eye(n))
        C = (C + C.T) / 2
    return C
