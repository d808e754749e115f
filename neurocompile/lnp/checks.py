"""Input checks shared by the LNP steps: one place that turns bad input into a one-line fix.

Every public LNP function accepts the recurrent weights as a dense ``(n, n)`` array or any
``scipy.sparse`` matrix, with ``W[i, j]`` the synapse from neuron ``j`` to neuron ``i`` (row =
target, as in the project's IR). The checks return canonical copies (CSR float64 weights with
explicit zeros dropped, float64 time constants) so the steps never mutate the caller's arrays.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from neurocompile.errors import NeurocompileError

Seed = int | np.random.Generator | None


@contextmanager
def deterministic_blas() -> Iterator[None]:
    """Run the enclosed dense linear algebra on one BLAS/LAPACK thread, so its result is bitwise reproducible.

    Why: numpy's and scipy's OpenBLAS split blocked LAPACK routines (``geev``'s Hessenberg
    reduction, ``getrf``) across threads, and the floating-point summation order -- hence the
    last bits of the eigenvalues, their *order*, and the covariance -- depends on the thread
    count (measured: eigenvalues of a 500-neuron HRSNN's Jacobian came back in a different
    order, and the covariance differed by 5e-14 relative, between 1 and 2 threads). LNP turns
    those bits into sampling decisions and into a chaotic simulation's exponent, so every LNP
    step that calls dense BLAS/LAPACK runs inside this context. Cost: the eigendecomposition loses
    its (small) multi-thread speed-up; LAPACK ``geev`` is mostly level-2 and barely scales anyway.
    Nested use is fine (the previous limits are restored on exit); only the "blas" API is
    limited, so torch's OpenMP pool is untouched.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def check_weights(W: object) -> sp.csr_matrix:
    """The weights as a square CSR float64 matrix without stored zeros."""
    if sp.issparse(W):
        M = sp.csr_matrix(W, dtype=np.float64, copy=True)
    else:
        try:
            arr = np.asarray(W, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise NeurocompileError(f"W must be a numeric (n, n) array or scipy.sparse matrix ({e})") from None
        if arr.ndim != 2:
            raise NeurocompileError(f"W must be a square (n, n) matrix, got {arr.ndim} dimension(s)")
        M = sp.csr_matrix(arr)
    if M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise NeurocompileError(f"W must be a non-empty square (n, n) matrix, got shape {M.shape}")
    if not np.all(np.isfinite(M.data)):
        raise NeurocompileError("W contains NaN or infinite weights; pass finite weights")
    M.eliminate_zeros()
    M.sort_indices()
    return M


def check_tau(tau: object, n: int) -> np.ndarray:
    """Per-neuron time constants (time steps) as a float64 vector of length ``n``, all > 0."""
    try:
        t = np.asarray(tau, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise NeurocompileError(f"tau must be a numeric vector of {n} time constants ({e})") from None
    if t.shape != (n,):
        raise NeurocompileError(f"tau must have shape ({n},) to match W, got {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise NeurocompileError("tau must be finite and > 0 (time constants in time steps)")
    return t.copy()


def check_network(W: object, tau: object) -> tuple[sp.csr_matrix, np.ndarray]:
    """Checked weights and time constants of one recurrent network."""
    M = check_weights(W)
    return M, check_tau(tau, M.shape[0])


def check_fraction(value: float, name: str) -> float:
    """A sparsity (fraction removed) in [0, 1): removing everything leaves no network."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NeurocompileError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= v < 1.0:
        raise NeurocompileError(f"{name} must be in [0, 1) (the fraction removed), got {v}")
    return v


def check_positive(value: float, name: str) -> float:
    """A strictly positive finite number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise NeurocompileError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise NeurocompileError(f"{name} must be a positive finite number, got {v}")
    return v


def check_gain(gain: float | np.ndarray, n: int) -> np.ndarray:
    """The per-neuron response gain as a vector of length ``n`` (a scalar is broadcast)."""
    g = np.asarray(gain, dtype=np.float64)
    if g.ndim == 0:
        g = np.full(n, float(g))
    if g.shape != (n,) or not np.all(np.isfinite(g)) or np.any(g < 0):
        raise NeurocompileError(f"gain must be a non-negative scalar or a vector of {n} values")
    return g


def rng_from(seed: Seed) -> np.random.Generator:
    """A generator from a seed or a generator (passed through, so callers can chain draws)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise NeurocompileError(f"seed must be an int or numpy.random.Generator, got {type(seed).__name__}")
    return np.random.default_rng(seed)
