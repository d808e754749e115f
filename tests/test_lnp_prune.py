"""LNP neuron pruning, delocalisation and the whole pipeline with its baselines."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from neurocompile.errors import NeurocompileError
from neurocompile.lnp import (
    LnpSettings, activity_prune, betweenness, delocalize, lnp_prune, prune, prune_by_centrality, random_prune,
)
from neurocompile.lnp.prune import restrict

NO_EDGES = LnpSettings(delocalize_edges=0)
SAMPLED = LnpSettings(sampling="sample", delocalize_edges=0)


def random_network(n: int, density: float, radius: float, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """A random recurrent network whose recurrence is `radius` × the median leak (edge of chaos near 1)."""
    rng = np.random.default_rng(seed)
    tau = np.maximum(rng.gamma(3.0, 20.0 / 3.0, n), 1.0)
    W = sp.random(n, n, density=density, random_state=seed, data_rvs=rng.standard_normal, format="csr")
    return W * (radius * np.median(1 / tau) / np.sqrt(n * density)), tau


@pytest.fixture(scope="module")
def net():
    return random_network(100, 0.2, 1.5, seed=0)


def test_star_keeps_the_hub():
    n = 6  # hub 0 ↔ leaves 1..5: every leaf-to-leaf shortest path runs through the hub
    W = np.zeros((n, n))
    W[0, 1:] = W[1:, 0] = 1.0
    bc, sources = betweenness(W)
    assert sources == n and bc[0] == pytest.approx(1.0) and np.all(bc[1:] == 0)
    np.testing.assert_array_equal(prune_by_centrality(W, neuron_sparsity=0.8).kept, [0])


def test_path_keeps_the_middle_and_strong_weights_shorten_paths():
    n = 5  # bidirectional path 0-1-2-3-4: betweenness 0, 3, 4, 3, 0 pairs (×2 directions)
    W = np.zeros((n, n))
    for i in range(n - 1):
        W[i, i + 1] = W[i + 1, i] = 1.0
    np.testing.assert_array_equal(prune_by_centrality(W, neuron_sparsity=0.4).kept, [1, 2, 3])
    np.testing.assert_array_equal(prune_by_centrality(W, neuron_sparsity=0.8).kept, [2])
    # a strong 0 → 2 shortcut (distance 1/|w| = 0.1) now carries 0's traffic past neuron 1
    W[2, 0] = 10.0
    bc, _ = betweenness(W)
    assert bc[1] < bc[3]


def test_sampled_betweenness_ranks_like_exact():
    W, _ = random_network(150, 0.1, 1.0, seed=1)
    exact, k_exact = betweenness(W)
    approx, k = betweenness(W, seed=0, max_relaxations=60 * W.nnz)
    assert k_exact == 150 and k == 60
    low_exact = set(np.argsort(exact)[:50])
    low_approx = set(np.argsort(approx)[:50])
    assert len(low_exact & low_approx) >= 38  # the pruned tail agrees on ≥ 3/4


def test_delocalize_lowers_the_leading_ipr():
    W, tau = random_network(60, 0.15, 1.5, seed=4)
    d = delocalize(W, tau, max_edges=6)
    assert 1 <= len(d.edges) <= 6
    assert d.weights.nnz == W.nnz + len(d.edges)
    assert np.all(W.toarray()[d.edges[:, 0], d.edges[:, 1]] == 0) and np.all(d.edges[:, 0] != d.edges[:, 1])

    def ipr(M):  # independent recomputation with numpy
        A = M.toarray() - np.diag(1 / tau)
        lam, V = np.linalg.eig(A)
        lead = V[:, np.argsort(-lam.real)[:10]]
        return np.mean(np.sum(np.abs(lead) ** 4, axis=0))

    assert ipr(d.weights) < ipr(W)
    assert d.ipr_after == pytest.approx(ipr(d.weights)) and d.ipr_before == pytest.approx(ipr(W))
    assert np.all(np.abs(d.edge_weights) == pytest.approx(0.5 * np.median(np.abs(W.data))))


@pytest.mark.parametrize("ns,ss", [(0.0, 0.3), (0.3, 0.2), (0.57, 0.5), (0.5, 0.8)])
def test_every_method_hits_the_requested_sparsity(net, ns, ss):
    W, tau = net
    activity = np.random.default_rng(9).random(100)
    for result in (lnp_prune(W, tau, neuron_sparsity=ns, synapse_sparsity=ss, seed=1, settings=SAMPLED),
                   lnp_prune(W, tau, neuron_sparsity=ns, synapse_sparsity=ss, seed=1, settings=NO_EDGES),
                   lnp_prune(W, tau, neuron_sparsity=ns, synapse_sparsity=ss, seed=1,
                             settings=LnpSettings(sampling="priority", delocalize_edges=0)),
                   random_prune(W, tau, neuron_sparsity=ns, synapse_sparsity=ss, seed=1),
                   activity_prune(W, tau, activity, neuron_sparsity=ns, synapse_sparsity=ss)):
        assert result.after.neurons == len(result.kept) == 100 - round(100 * ns)
        assert result.neuron_sparsity == pytest.approx(ns, abs=0.005)
        possible = restrict(W.tocsr(), result.kept)[0].nnz
        realised = 1 - result.weights.nnz / possible
        # "sample" hits it in expectation (binomial sd ≈ 1.5 % here); "top", "priority" and the baselines exactly
        sampled = result.method == "lnp" and result.weights.nnz != possible - round(ss * possible)
        assert realised == pytest.approx(ss, abs=0.06 if sampled else 0.5 / possible)


def test_delocalisation_edges_come_out_of_the_synapse_budget(net):
    W, tau = net
    r = lnp_prune(W, tau, neuron_sparsity=0.5, synapse_sparsity=0.8, seed=1, settings=LnpSettings(delocalize_edges=6))
    possible = restrict(W.tocsr(), r.kept)[0].nnz
    assert 1 <= len(r.added_edges) <= 6
    assert r.weights.nnz == possible - round(0.8 * possible) - 6 + len(r.added_edges)


def test_lnp_survivors_are_rescaled_originals_on_kept_neurons(net):
    W, tau = net
    for mode in ("sample", "priority"):
        r = lnp_prune(W, tau, neuron_sparsity=0.4, synapse_sparsity=0.5, seed=3,
                      settings=LnpSettings(sampling=mode, delocalize_edges=0))
        sub = restrict(W.tocsr(), r.kept)[0].toarray()
        new = r.weights.toarray()
        assert np.all(sub[new != 0] != 0)  # no synapse appears from nowhere
        ratio = new[new != 0] / sub[new != 0]
        assert np.all(ratio >= 1 - 1e-12)  # w / p with p ≤ 1, sign kept
        assert np.any(ratio > 1.01) and np.any(np.isclose(ratio, 1.0))  # some sampled, some certain (p = 1)
    # the default ("top") and rescale=False keep the surviving weights as they are
    for settings in (NO_EDGES, LnpSettings(sampling="priority", rescale=False, delocalize_edges=0)):
        r = lnp_prune(W, tau, neuron_sparsity=0.4, synapse_sparsity=0.5, seed=3, settings=settings)
        sub = restrict(W.tocsr(), r.kept)[0].toarray()
        new = r.weights.toarray()
        np.testing.assert_array_equal(new[new != 0], sub[new != 0])


def test_priority_sampling_keeps_an_exact_count_and_is_unbiased():
    from neurocompile.lnp.spectral import priority_sample
    rng = np.random.default_rng(0)
    scores = rng.lognormal(0, 1, 40)
    w = rng.standard_normal(40)
    estimates = []
    for _ in range(4000):
        kept, p, k = priority_sample(scores, rng.random(40), 12)
        assert kept.sum() == 12 and np.all(p[kept] > 0) and np.all(p <= 1)
        estimates.append(np.sum(np.where(kept, w / p, 0.0)))
    # Duffield-Lund-Thorup: w / p summed over the sample is unbiased for Σ w (Monte-Carlo se ≈ 0.1 here)
    assert np.mean(estimates) == pytest.approx(w.sum(), abs=4 * np.std(estimates) / np.sqrt(4000))


def test_match_radius_and_centrality_distances(net):
    W, tau = net
    r = lnp_prune(W, tau, neuron_sparsity=0.5, synapse_sparsity=0.8, seed=1,
                  settings=LnpSettings(match_radius=True, delocalize_edges=0))
    assert r.after.spectral_radius == pytest.approx(r.before.spectral_radius, rel=1e-9)
    kept = {d: lnp_prune(W, tau, neuron_sparsity=0.5, synapse_sparsity=0.5, seed=1,
                         settings=LnpSettings(centrality_distance=d, delocalize_edges=0)).kept
            for d in ("inverse", "hops", "weight")}
    assert len({tuple(k) for k in kept.values()}) > 1  # the length convention changes which neurons stay


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lnp_does_not_destabilise(seed):
    W, tau = random_network(150, 0.2, 1.5, seed=seed)
    r = lnp_prune(W, tau, neuron_sparsity=0.5, synapse_sparsity=0.5, seed=seed)
    assert r.after.lyapunov_exponent <= r.before.lyapunov_exponent
    assert r.after.lyapunov_exponent < 0  # stable (noise-driven perturbations decay)
    top = lnp_prune(W, tau, neuron_sparsity=0.5, synapse_sparsity=0.5, seed=seed,
                    settings=LnpSettings(sampling="top", lyapunov_strength=2.0))
    assert top.after.spectral_radius < top.before.spectral_radius
    assert top.after.spectral_abscissa < top.before.spectral_abscissa
    assert top.after.lyapunov_exponent < top.before.lyapunov_exponent


def test_seeded_runs_are_reproducible(net):
    W, tau = net
    sampled = LnpSettings(sampling="priority")  # "top" (the default) uses no random numbers here: exact betweenness
    a, b, c = (lnp_prune(W, tau, neuron_sparsity=0.5, synapse_sparsity=0.5, seed=s, settings=sampled) for s in (7, 7, 8))
    assert (a.weights != b.weights).nnz == 0 and np.array_equal(a.kept, b.kept)
    assert np.array_equal(a.added_edges, b.added_edges) and a.after == b.after
    assert (a.weights.shape != c.weights.shape) or (a.weights != c.weights).nnz > 0
    r1, r2 = (random_prune(W, tau, neuron_sparsity=0.5, synapse_sparsity=0.5, seed=7) for _ in range(2))
    assert np.array_equal(r1.kept, r2.kept) and (r1.weights != r2.weights).nnz == 0


def test_prune_dispatches(net):
    W, tau = net
    act = np.arange(100.0)
    assert prune("random", W, tau, neuron_sparsity=0.5, synapse_sparsity=0.5).method == "random"
    r = prune("activity", W, tau, neuron_sparsity=0.5, synapse_sparsity=0.5, activity=act)
    np.testing.assert_array_equal(r.kept, np.arange(50, 100))  # the 50 most active
    with pytest.raises(NeurocompileError, match="activity"):
        prune("activity", W, tau, neuron_sparsity=0.5, synapse_sparsity=0.5)
    with pytest.raises(NeurocompileError, match="method"):
        prune("magnitude", W, tau, neuron_sparsity=0.5, synapse_sparsity=0.5)


@pytest.mark.parametrize("W,tau,ns,ss,match", [
    (np.zeros((3, 4)), np.ones(3), 0.5, 0.5, "square"),
    (np.zeros((3, 3, 1)), np.ones(3), 0.5, 0.5, "square"),
    (np.eye(3), np.array([1.0, -2.0, 1.0]), 0.5, 0.5, "tau"),
    (np.eye(3), np.ones(4), 0.5, 0.5, "tau"),
    (np.eye(3), np.ones(3), 1.0, 0.5, "neuron_sparsity"),
    (np.eye(3), np.ones(3), -0.1, 0.5, "neuron_sparsity"),
    (np.eye(3), np.ones(3), 0.5, 1.0, "synapse_sparsity"),
    (np.eye(3) * np.nan, np.ones(3), 0.5, 0.5, "NaN"),
])
def test_bad_input_is_a_neurocompile_error(W, tau, ns, ss, match):
    for method in ("lnp", "random", "activity"):
        with pytest.raises(NeurocompileError, match=match):
            prune(method, W, tau, neuron_sparsity=ns, synapse_sparsity=ss, activity=np.ones(3))
