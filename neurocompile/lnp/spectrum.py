"""Eigen-analysis of the linearised network: spectral radius, spectral abscissa, eigenvector IPR.

One dense eigendecomposition serves every spectral quantity LNP needs (the stationary
covariance, the stability measures, the IPR and its perturbation in :mod:`.delocalize`), so it
is computed once per network state and passed around as an :class:`Eigen`. Dense LAPACK
``geev`` is used rather than ARPACK because random recurrent matrices have their eigenvalues
spread over a disc (Girko's circular law): many eigenvalues sit near the edge, where Krylov
methods converge slowly or not at all, while ``geev`` takes ~3 s at n = 2,000 on 2 cores.
Every LAPACK call here runs on one thread (:func:`.checks.deterministic_blas`), so the values,
their order and the vectors are bitwise the same in every run and process.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from .checks import deterministic_blas


@dataclass(frozen=True)
class Eigen:
    """Eigenvalues and right eigenvectors (columns, unit 2-norm) of a square real matrix."""

    values: np.ndarray
    vectors: np.ndarray

    @cached_property
    def left(self) -> np.ndarray:
        """``V^{-1}``: its rows are the left eigenvectors dual to ``vectors`` (``u_k^T v_l = δ_kl``)."""
        with deterministic_blas():
            return np.linalg.inv(self.vectors)

    def leading(self, count: int) -> np.ndarray:
        """Indices of the ``count`` eigenvalues with the largest real part (slowest/least stable modes)."""
        count = max(1, min(int(count), self.values.size))
        return np.argsort(-self.values.real, kind="stable")[:count]


def eigendecompose(M: np.ndarray | sp.spmatrix) -> Eigen:
    """Full eigendecomposition of a square matrix (dense LAPACK)."""
    dense = M.toarray() if sp.issparse(M) else np.asarray(M, dtype=np.float64)
    with deterministic_blas():
        values, vectors = np.linalg.eig(dense)
    return Eigen(values=values, vectors=vectors)


def eigenvalues(M: np.ndarray | sp.spmatrix) -> np.ndarray:
    """The eigenvalues only (about half the cost of :func:`eigendecompose`)."""
    dense = M.toarray() if sp.issparse(M) else np.asarray(M, dtype=np.float64)
    with deterministic_blas():
        return np.linalg.eigvals(dense)


def spectral_radius(values: np.ndarray) -> float:
    """max |λ|: for the weight matrix W it is the reservoir-computing "gain" of the recurrence."""
    return float(np.max(np.abs(values))) if values.size else 0.0


def spectral_abscissa(values: np.ndarray) -> float:
    """max Re λ: for A = -D + W it is the asymptotic growth rate of the linear system (< 0: stable)."""
    return float(np.max(values.real)) if values.size else float("-inf")


def inverse_participation_ratio(vectors: np.ndarray) -> np.ndarray:
    """IPR of each column: Σ|v_i|⁴ / (Σ|v_i|²)², from 1/n (spread evenly) to 1 (on one neuron).

    Scale- and phase-invariant, so it does not matter how the eigensolver normalised a vector.
    """
    p = np.abs(np.atleast_2d(vectors.T).T) ** 2
    return np.sum(p**2, axis=0) / np.sum(p, axis=0) ** 2


def mean_leading_ipr(eig: Eigen, n_leading: int) -> float:
    """Mean IPR of the ``n_leading`` eigenvectors of A with the largest real part.

    Why these: the slowest modes of A = -D + W carry the network's memory and decide its
    stability; with heterogeneous τ they tend to localise on the few slowest neurons, which is
    the failure mode LNP's delocalisation step is meant to counter.
    """
    idx = eig.leading(n_leading)
    return float(np.mean(inverse_participation_ratio(eig.vectors[:, idx])))
