"""Step 4 of LNP: add a few weak synapses so the leading eigenvectors stay delocalised.

Chakraborty et al. (ICLR 2024) add edges that raise degree heterogeneity within local
neighbourhoods, so that after pruning the leading eigenvectors do not localise on a few neurons
(a localised slow mode means the network's memory lives in a handful of cells). The exact
edge rule is not published. We target the measured quantity directly instead of the degree
proxy: greedily add the synapses whose first-order effect most lowers the mean inverse
participation ratio (IPR) of the leading eigenvectors of A = -D + diag(g) W, and keep an
addition only if recomputing the eigenvectors confirms the drop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .checks import check_gain, check_network, check_positive, deterministic_blas
from .linear import linearize
from .spectrum import Eigen, eigendecompose, inverse_participation_ratio, mean_leading_ipr

#: eigenvalue gaps below this (relative to the spectrum's scale) are treated as degenerate
_GAP_TOL = 1e-10


@dataclass(frozen=True)
class Delocalized:
    """The network after adding synapses, the synapses added, and the IPR they were judged by."""

    weights: sp.csr_matrix
    #: (e, 2) int array of (target i, source j) for each added synapse, in W's indices
    edges: np.ndarray
    edge_weights: np.ndarray
    ipr_before: float
    ipr_after: float


def ipr_sensitivity(eig: Eigen, n_leading: int) -> np.ndarray:
    """S[i, j] = ∂(mean leading IPR) / ∂A_ij, by first-order eigenvector perturbation.

    For A → A + ε e_i e_jᵀ the k-th right eigenvector moves by
    δv_k = ε v_k[j] Σ_{l≠k} v_l u_l[i] / (λ_k - λ_l) (u_l: left eigenvectors, rows of V⁻¹), and for a
    unit vector dIPR_k = Re Σ_m q_m δv_k[m] with q = 4 conj(v)(|v|² - IPR_k). All n² candidates
    come out of three (m × n) by (n × n) products -- O(m n²), against O(n³) for one exact
    recomputation -- which is what makes scoring every absent synapse affordable.
    """
    idx = eig.leading(n_leading)
    lam, V, U = eig.values, eig.vectors, eig.left
    Vk = V[:, idx].T  # (m, n): rows are the leading unit eigenvectors
    ipr = inverse_participation_ratio(Vk.T)
    Q = 4 * Vk.conj() * (np.abs(Vk) ** 2 - ipr[:, None])
    gaps = lam[idx][:, None] - lam[None, :]
    scale = max(1.0, float(np.max(np.abs(lam))))
    inv_gaps = np.divide(1.0, gaps, out=np.zeros_like(gaps), where=np.abs(gaps) > _GAP_TOL * scale)
    with deterministic_blas():  # these products decide which edges are added: bit-reproducible whatever the thread count
        H = ((Q @ V) * inv_gaps) @ U  # (m, n): H[k, i] = q_kᵀ R_k e_i
        return (H.T @ Vk).real / len(idx)


def delocalize(W: object, tau: object, *, gain: float | np.ndarray = 1.0, max_edges: int = 10,
               per_round: int = 5, weight_scale: float = 0.5, n_leading: int = 10) -> Delocalized:
    """Add at most ``max_edges`` synapses of magnitude ``weight_scale`` × median |w| that lower the IPR.

    Each round scores every absent synapse (no self-connections: an autapse would just change
    that neuron's effective τ) by :func:`ipr_sensitivity`, takes the ``per_round`` best with the
    sign that lowers the IPR, and recomputes the spectrum. The batch is kept only if the mean
    leading IPR really fell; otherwise the single best candidate is tried alone, and a candidate
    that fails alone is excluded. Three failures in a row end the search. Why small weights:
    the new synapses should reshape the leading modes, not add a new strong pathway that
    changes the stability the sparsifier preserved (and first-order scoring is only accurate for
    small perturbations).
    """
    M, t = check_network(W, tau)
    g = check_gain(gain, M.shape[0])
    eps = check_positive(weight_scale, "weight_scale") * (float(np.median(np.abs(M.data))) if M.nnz else 1.0)
    A = linearize(M, t, gain=g)
    eig = eigendecompose(A)
    ipr0 = current = mean_leading_ipr(eig, n_leading)
    blocked = M.toarray() != 0
    np.fill_diagonal(blocked, True)
    added: list[tuple[int, int, float]] = []
    failures = 0
    while len(added) < max_edges and failures < 3:
        S = ipr_sensitivity(eig, n_leading) * g[:, None]  # chain rule: A_ij = g_i W_ij
        gain_if_added = np.where(blocked, 0.0, np.abs(S))
        flat = np.argsort(-gain_if_added, axis=None)[: min(per_round, max_edges - len(added))]
        flat = flat[gain_if_added.flat[flat] > 0]
        if flat.size == 0:
            break
        for batch in (flat, flat[:1]) if flat.size > 1 else (flat,):
            rows, cols = np.unravel_index(batch, S.shape)
            w = -np.sign(S[rows, cols]) * eps
            trial = A.copy()
            trial[rows, cols] += g[rows] * w
            trial_eig = eigendecompose(trial)
            trial_ipr = mean_leading_ipr(trial_eig, n_leading)
            if trial_ipr < current:
                A, eig, current = trial, trial_eig, trial_ipr
                blocked[rows, cols] = True
                added.extend(zip(rows.tolist(), cols.tolist(), w.tolist()))
                failures = 0
                break
        else:
            blocked.flat[flat[0]] = True
            failures += 1
    edges = np.array([(i, j) for i, j, _ in added], dtype=np.int64).reshape(-1, 2)
    weights = np.array([w for _, _, w in added], dtype=np.float64)
    out = (M + sp.csr_matrix((weights, (edges[:, 0], edges[:, 1])), shape=M.shape)).tocsr()
    return Delocalized(weights=out, edges=edges, edge_weights=weights, ipr_before=ipr0, ipr_after=current)
