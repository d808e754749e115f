"""Step 1 of LNP: linearise the network and derive local Lyapunov exponents and the Lyapunov matrix.

Chakraborty et al. (ICLR 2024, arXiv 2403.03409, Sec. 3) linearise the untrained, noise-driven
network as dx/dt = -D x + W x + σ ξ with D = diag(1/τ_i), compute per-neuron (local) Lyapunov
exponents and form a Lyapunov matrix whose entry for a connected pair is the harmonic mean of
the two neurons' exponents. The paper does not publish code; the open choices are documented
at each function.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from neurocompile.errors import NeurocompileError

from .checks import check_gain, check_network, check_positive, check_weights, deterministic_blas

#: Padé(13) coefficients b_0..b_13 and the largest 1-norm it serves unscaled (Higham, SIAM J. Matrix Anal. Appl. 2005)
_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0, 129060195264000.0,
           10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0, 40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152


def linearize(W: object, tau: object, *, gain: float | np.ndarray = 1.0) -> np.ndarray:
    """The Jacobian A = -D + diag(g) W (dense, units 1/time step) of the noise-driven network.

    Why this form: Loihi's CUBA neuron integrates synaptic input without a 1/τ factor
    (v[t] = (1 - 1/τ) v[t-1] + Σ_j w_ij s_j[t]), so the continuous limit is dv/dt = -v/τ + W s,
    exactly the paper's -D x + W x. The spiking network enters through ``gain``: around its
    noise-driven operating point neuron i's output rate responds to its input with slope
    g_i = dr_i/dI_i (the slope of its f-I curve at the operating rate; 1.0 for a tanh rate unit at
    rest). The gain multiplies row i, because it is the *target* neuron's response that scales
    every synapse arriving at it. Callers with measured rates pass the per-neuron slopes here.
    """
    M, t = check_network(W, tau)
    g = check_gain(gain, M.shape[0])
    A = (sp.diags(g) @ M).toarray()
    A[np.diag_indices_from(A)] -= 1.0 / t
    return A


def local_lyapunov_exponents(A: np.ndarray, *, horizon: float) -> np.ndarray:
    """Finite-time local exponent of each neuron: λ_i = ln ‖e^{A T} e_i‖₂ / T.

    Why this definition: it is the growth rate, over a horizon T, of a perturbation injected at
    neuron i alone, as it spreads through the linearised network -- the finite-time Lyapunov
    exponent of the linear flow restricted to a perturbation localised on that neuron. It
    interpolates between the two candidates the paper's description allows: for T → 0 it tends to
    A_ii (the real part of the Jacobian's diagonal, -1/τ_i + g_i w_ii: the neuron's own leak),
    and for T → ∞ every λ_i tends to the spectral abscissa (no longer local). A horizon of about
    one membrane time constant (``lnp_prune`` uses the median τ) keeps it local but lets a
    neuron's strong outgoing synapses count: a slow neuron feeding a strongly recurrent
    neighbourhood scores higher (less stable) than an equally slow isolated one.
    Cost: one dense matrix exponential (scaling and squaring, ~1.5 s at n = 2,000).
    Computed by :func:`expm` (not ``scipy.linalg.expm``, whose result changed in the last bits from
    call to call on the same input, single-threaded too), so the exponents are bitwise reproducible.
    """
    T = check_positive(horizon, "horizon")
    E = expm(np.asarray(A, dtype=np.float64) * T)
    with deterministic_blas():
        return np.log(np.linalg.norm(E, axis=0)) / T


def expm(M: np.ndarray) -> np.ndarray:
    """e^M of a dense real square matrix: Higham's (2005) scaling and squaring with the Padé(13) approximant.

    The same algorithm as ``scipy.linalg.expm`` for large norms (it always uses degree 13: a
    few extra products for small norms, one code path), written with numpy's BLAS products and
    LU solve on one thread (:func:`.checks.deterministic_blas`). Why not scipy's: on the
    Jacobian of a 500-neuron HRSNN, 8 calls of ``scipy.linalg.expm`` on the identical input
    returned two different results (differing in the last bits) even on one BLAS thread --
    its compiled helpers' scratch buffers are apparently alignment-sensitive -- and LNP's
    sampling and its chaotic simulation turn such bits into visible differences. numpy's
    ``matmul`` and ``solve`` gave bitwise-identical results for every input alignment tried.
    """
    A = np.asarray(M, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise NeurocompileError(f"expm needs a square matrix, got shape {A.shape}")
    n = A.shape[0]
    if n == 0:
        return A.copy()
    with deterministic_blas():
        norm = float(np.linalg.norm(A, 1))
        if not np.isfinite(norm):
            raise NeurocompileError("expm needs a finite matrix")
        s = max(0, int(np.ceil(np.log2(norm / _THETA13)))) if norm > 0 else 0
        A = A / 2.0**s
        b = _PADE13
        eye = np.eye(n)
        A2 = A @ A
        A4 = A2 @ A2
        A6 = A4 @ A2
        U = A @ (A6 @ (b[13] * A6 + b[11] * A4 + b[9] * A2) + b[7] * A6 + b[5] * A4 + b[3] * A2 + b[1] * eye)
        V = A6 @ (b[12] * A6 + b[10] * A4 + b[8] * A2) + b[6] * A6 + b[4] * A4 + b[2] * A2 + b[0] * eye
        E = np.linalg.solve(V - U, V + U)
        for _ in range(s):
            E = E @ E
    return E


def harmonic_mean_exponent(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Signed harmonic mean 2ab/(a+b) of two neurons' exponents, 0 where it is undefined.

    The harmonic mean is only meaningful for numbers of one sign: for a ≈ -b the formula
    diverges, and for mixed signs it has the "wrong" sign. So:
    * both < 0 (two contracting neurons): -(2|a||b|/(|a|+|b|)), dominated by the exponent closer
      to zero -- the pair is as stable as its less stable member;
    * both > 0: +(2ab/(a+b)), the pair counts as expanding at the rate its slower member allows;
    * mixed signs or a zero: 0 -- one neuron expands and the other contracts, so the pair is
      treated as marginal, neither rewarded nor penalised.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    same = np.sign(a) * np.sign(b) > 0
    out = np.zeros(np.broadcast(a, b).shape)
    aa, bb = np.broadcast_arrays(np.abs(a), np.abs(b))
    out[same] = (np.sign(np.broadcast_to(a, out.shape)[same]) * 2 * aa[same] * bb[same]
                 / (aa[same] + bb[same]))
    return out


def lyapunov_matrix(W: object, exponents: np.ndarray) -> sp.csr_matrix:
    """The Lyapunov matrix: on W's sparsity pattern, L_ij = H(λ_i, λ_j) (:func:`harmonic_mean_exponent`).

    Only connected pairs get an entry (the paper's definition); it is returned with exactly W's
    pattern (including entries that are 0 because the pair is marginal), so ``L.data`` lines up
    with ``W.data`` of the CSR returned by :func:`neurocompile.lnp.checks.check_weights`.
    """
    M = check_weights(W)
    lam = np.asarray(exponents, dtype=np.float64)
    if lam.shape != (M.shape[0],) or not np.all(np.isfinite(lam)):
        raise NeurocompileError(f"exponents must be {M.shape[0]} finite values, one per neuron of W")
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    L = M.copy()
    L.data = harmonic_mean_exponent(lam[rows], lam[M.indices])
    return L
