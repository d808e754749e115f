"""Step 2 of LNP: noise-driven spectral sparsification of the synapses, modulated by the Lyapunov matrix.

Moore & Chaudhuri (NeurIPS 2020, "Using noise to probe recurrent neural network structure and
prune synapses") keep synapse ij with probability

    p_ij = min(1, k · |w_ij| · (C_ii + C_jj - 2 sgn(w_ij) C_ij))

and rescale survivors to w_ij / p_ij, so the pruned matrix equals W in expectation; for
symmetric W this is Spielman–Srivastava sampling by effective resistance, which preserves the
spectrum. The bracket is Var(x_i - x_j) for an excitatory and Var(x_i + x_j) for an inhibitory
synapse, so it is ≥ 0 for any covariance C. Chakraborty et al. (ICLR 2024) modulate the rate
with the Lyapunov matrix; the form is not published -- ours is :func:`lyapunov_modulation`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from neurocompile.errors import NeurocompileError

from .checks import check_fraction, check_weights

#: keep scores are floored at this fraction of the largest one, so every synapse can be kept
_SCORE_FLOOR = 1e-12


def noise_scores(W: sp.csr_matrix, C: np.ndarray) -> np.ndarray:
    """Moore–Chaudhuri importance |w_ij| (C_ii + C_jj - 2 sgn(w_ij) C_ij), aligned with ``W.data``."""
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    cols = W.indices
    d = np.diag(C)
    return np.abs(W.data) * np.maximum(d[rows] + d[cols] - 2 * np.sign(W.data) * C[rows, cols], 0.0)


def lyapunov_modulation(L_data: np.ndarray, *, strength: float) -> np.ndarray:
    """Multiplier m_ij = 2 / (1 + exp(β z_ij)) of the keep score, z the robust z-score of L_ij.

    Why this form: synapses between neurons whose (harmonic-mean) local exponent is larger --
    closer to, or beyond, instability -- should be pruned more, since removing them lowers the
    network's largest Lyapunov exponent, while synapses between strongly contracting neurons are
    kept preferentially. The multiplier is
    * monotone decreasing in L_ij, equal to 1 at the median (the median synapse keeps its
      Moore–Chaudhuri score);
    * bounded in (0, 2): the Lyapunov term can re-rank synapses but never overrides the noise
      score by more than a factor of two either way, so the spectral-preservation argument still
      roughly holds (k is re-solved afterwards, so only the relative factor matters);
    * scale-free: z = (L - median L) / MAD(L), so β does not depend on the units of τ.
    β = 0 recovers plain Moore–Chaudhuri sparsification.

    Measured caveat: with the unbiased 1/p rescaling (``mode="sample"``) E[W'] = W whatever the
    modulation, so it can only move *variance* between synapses: a survivor of a low-p pair
    becomes w/p, large. On six random 150-neuron networks (radius 1.5 × leak, 50 %/50 %) β = 1
    still lowered the largest Lyapunov exponent on all six but left the spectral radius of W
    ×1.16 (β = 0: ×0.97); with ``mode="top"`` (no rescaling) the modulation works as intended:
    β = 0 / 1 / 2 gave radius ×0.79 / 0.78 / 0.73 and abscissa -0.019 / -0.025 / -0.034.

    Measured side effect on which *neurons* survive (the betweenness step runs on the sparsified
    graph, so a neuron whose synapses score high is kept): on the HRSNN of bench/lnp.py (500
    neurons, τ ~ gamma(2, mean 5)) the kept neurons' median τ was 3.7 / 2.4 with β = 1 (seeds 0 / 1)
    against 4.6 / 4.2 for all neurons, and 5.8 / 5.4 with β = 0 (the covariance term alone favours
    slow, high-variance neurons). A local exponent of a leaky neuron is ≈ -1/τ plus its recurrent
    drive, so β > 0 keeps the fast neurons -- which happens to suit one-step Lorenz prediction
    (the 200 fastest neurons: NRMSE / dense 1.34, 200 random ones 1.45) but not Rössler (1.52 vs 1.53).
    """
    L = np.asarray(L_data, dtype=np.float64)
    if strength == 0 or L.size == 0:
        return np.ones_like(L)
    med = np.median(L)
    mad = np.median(np.abs(L - med))
    if mad == 0:
        return np.ones_like(L)
    z = np.clip(strength * (L - med) / mad, -50.0, 50.0)
    return 2.0 / (1.0 + np.exp(z))


def keep_probabilities(scores: np.ndarray, k: float) -> np.ndarray:
    """p = min(1, k · score)."""
    return np.minimum(1.0, k * scores)


def solve_k(scores: np.ndarray, keep_fraction: float, *, iterations: int = 200) -> float:
    """The k with mean(min(1, k · score)) = keep_fraction, by bisection on log k.

    The expected kept fraction is continuous and non-decreasing in k, from 0 to 1 (scores are
    floored to be > 0), so bisection always converges; on a log scale because k spans many
    decades with the covariance's units.
    """
    s = _floored(scores)
    if keep_fraction >= 1.0:
        return float(1.0 / s.min())
    lo, hi = 1e-300, 1.0 / s.min()  # hi keeps every synapse
    lo = max(lo, keep_fraction / s.max() * 1e-3)
    for _ in range(iterations):
        mid = np.sqrt(lo * hi)
        if keep_probabilities(s, mid).mean() < keep_fraction:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-12:
            break
    return float(hi)


def priority_sample(scores: np.ndarray, uniforms: np.ndarray, n_keep: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Keep exactly ``n_keep`` synapses by priority sampling (Duffield, Lund & Thorup, J. ACM 2007).

    Priorities q = score / u; the ``n_keep`` highest are kept, and with θ the next-highest
    priority, p = min(1, score / θ), i.e. Moore–Chaudhuri's p with k = 1 / θ: a synapse survives
    iff u < p, the same event as u < k · score. Priority sampling's estimator w / p is unbiased
    for any sum of weights (the DLT theorem), so the 1/p rescaling keeps E[W'] = W as in
    Moore & Chaudhuri, while the sample size is exact instead of binomial. Returns (kept, p, k);
    k = inf when every synapse is kept (θ = 0).
    """
    n = scores.size
    n_keep = int(min(max(n_keep, 0), n))
    if n_keep >= n:
        return np.ones(n, dtype=bool), np.ones(n), float("inf")
    with np.errstate(divide="ignore"):
        q = np.where(uniforms > 0, scores / np.maximum(uniforms, 0.0), np.inf)
    order = np.argsort(-q, kind="stable")
    kept = np.zeros(n, dtype=bool)
    kept[order[:n_keep]] = True
    theta = float(q[order[n_keep]])
    k = 1.0 / theta if theta > 0 else float("inf")
    p = np.minimum(1.0, scores * k) if np.isfinite(k) else np.ones(n)
    return kept, p, k


@dataclass(frozen=True)
class Sparsified:
    """A sparsified weight matrix and the keep probabilities it was sampled with."""

    weights: sp.csr_matrix
    #: keep probability of each synapse of the input, aligned with its CSR ``data``
    probabilities: np.ndarray
    #: which synapses of the input were kept, aligned with its CSR ``data``
    kept: np.ndarray
    k: float


def sparsify(W: object, scores: np.ndarray, *, sparsity: float, uniforms: np.ndarray | None = None,
             mode: str = "sample", rescale: bool = True) -> Sparsified:
    """Remove the fraction ``sparsity`` of W's synapses according to their keep ``scores``.

    ``mode="sample"`` (the Moore–Chaudhuri rule): synapse ij survives iff u_ij < p_ij, with k
    chosen so that the *expected* kept fraction is 1 - sparsity, and survivors become w_ij / p_ij
    (``rescale=False``: they keep w_ij). ``mode="priority"``: the same rule with k chosen so that
    *exactly* round((1 - sparsity) · nnz) synapses survive (:func:`priority_sample`). Why the exact
    count matters: the baselines keep exact counts, and a caller that re-samples a sub-network
    with the same uniforms (:func:`.prune.lnp_prune`) selects synapses whose u was small, so the
    expected-count k kept ~2× the requested synapses at 90 % sparsity (measured: 129-139 instead
    of 64 on the 200-neuron study network, seed 0). The uniforms u are passed in rather than
    drawn here so a caller can re-sample a sub-network with the same random numbers (coupled draws).
    ``mode="top"``: deterministic, keeps exactly the round((1 - sparsity) · nnz) highest scores and
    does not rescale -- the rescaling only makes sense for an unbiased random estimator.
    ``scores`` (and ``uniforms``) are aligned with the canonical CSR of W: sorted indices, no stored
    zeros (:func:`.checks.check_weights`), which is what :func:`noise_scores` on that CSR returns.
    """
    M = check_weights(W)
    s = check_fraction(sparsity, "synapse_sparsity")
    sc = np.asarray(scores, dtype=np.float64)
    if sc.shape != M.data.shape:
        raise NeurocompileError(f"scores must have one value per synapse ({M.nnz}), got {sc.shape}")
    if mode == "top":
        n_keep = M.nnz - int(round(s * M.nnz))
        kept = np.zeros(M.nnz, dtype=bool)
        kept[np.argsort(-sc, kind="stable")[:n_keep]] = True
        p = kept.astype(np.float64)
        k = float("nan")
        data = M.data.copy()
    elif mode in ("sample", "priority"):
        if uniforms is None or np.shape(uniforms) != M.data.shape:
            raise NeurocompileError(f"mode={mode!r} needs one uniform random number per synapse ({M.nnz})")
        if mode == "priority":
            n_keep = M.nnz - int(round(s * M.nnz))
            kept, p, k = priority_sample(_floored(sc), np.asarray(uniforms, dtype=np.float64), n_keep)
        else:
            k = solve_k(sc, 1.0 - s) if M.nnz else 1.0
            p = keep_probabilities(_floored(sc), k)
            kept = np.asarray(uniforms) < p
        data = M.data / np.where(kept, p, 1.0) if rescale else M.data.copy()
    else:
        raise NeurocompileError(f"mode must be 'sample', 'priority' or 'top', got {mode!r}")
    out = M.copy()
    out.data = np.where(kept, data, 0.0)
    out.eliminate_zeros()
    return Sparsified(weights=out, probabilities=p, kept=kept, k=k)


def _floored(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s
    top = s.max()
    return np.maximum(s, _SCORE_FLOOR * top if top > 0 else 1.0)
