"""The whole Lyapunov Noise Pruning pipeline, and the two baselines it is compared against.

``lnp_prune`` runs Chakraborty et al.'s (ICLR 2024) steps 1-4 on an untrained recurrent network
(step 5, the τ search, picks the τ *before* pruning: see :mod:`.tau_search`). ``random_prune``
and ``activity_prune`` are the paper's baselines at equal sparsity, through the same interface
and the same before/after statistics, so the three are compared like for like.

Sparsity conventions (the paper reports ~57 % neuron and ~50 % synapse sparsity, which cannot
both be fractions of the original counts -- removing 57 % of the neurons alone removes ~81 % of
the synapses): neuron sparsity = fraction of neurons removed; synapse sparsity = fraction of the
synapses *among the surviving neurons* that are removed, i.e. 1 - nnz(new W) / nnz(W restricted
to the kept neurons) -- how much sparser the surviving network's connectivity became.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

from neurocompile.errors import NeurocompileError

from .centrality import DEFAULT_MAX_RELAXATIONS, prune_by_centrality
from .checks import check_fraction, check_gain, check_network, rng_from
from .covariance import stability_shift, stationary_covariance
from .delocalize import delocalize
from .linear import linearize, local_lyapunov_exponents, lyapunov_matrix
from .objective import SimulationSettings, largest_lyapunov_exponent
from .spectral import lyapunov_modulation, noise_scores, sparsify
from .spectrum import Eigen, eigendecompose, eigenvalues, mean_leading_ipr, spectral_abscissa, spectral_radius
from .spiking_lyapunov import LIFNeurons, SpikingLyapunovSettings, largest_spiking_lyapunov_exponent

Method = Literal["lnp", "random", "activity"]


@dataclass(frozen=True)
class AnalysisSettings:
    """How a network state is measured (shared by every method, so before/after are comparable)."""

    #: response gain at the operating point, scalar or per neuron (see :func:`.linear.linearize`)
    gain: float | np.ndarray = 1.0
    #: how many slowest eigenvectors of A the mean IPR averages over
    n_leading: int = 10
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    #: the spiking network's own neurons (one entry per neuron of the *unpruned* W), for its largest
    #: Lyapunov exponent; None: LIF neurons with the given τ and unit threshold (LIFNeurons.from_tau)
    neurons: LIFNeurons | None = None
    spiking: SpikingLyapunovSettings = field(default_factory=SpikingLyapunovSettings)


@dataclass(frozen=True)
class LnpSettings:
    """The open parameters of LNP; the defaults are the choices documented in each step's module."""

    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    #: σ of the probing noise; it scales C only, so it does not change which synapses are kept
    noise_std: float = 1.0
    #: horizon of the local exponents in time steps; None = the median τ (one membrane time constant)
    horizon: float | None = None
    #: β of :func:`.spectral.lyapunov_modulation`; 0 = plain Moore–Chaudhuri scores. β = 1 (synapses
    #: between neurons with larger local exponents pruned more) beat β = 0 and β = -1 (the opposite
    #: sign) on Lorenz (200 neurons, 5 seeds: NRMSE / dense 1.46 vs 1.68 and 1.71; Rössler: a tie,
    #: 1.44 / 1.46 / 1.43). At 500 neurons (5 seeds, "top"), β = 0 / 0.5 / 1 / 2 scored Lorenz
    #: 1.48 / 1.31 / 1.34 / 1.38 and Rössler 1.50 / 1.56 / 1.55 / 1.52 (random pruning 1.38 / 1.52):
    #: no β wins on both tasks, because β mostly decides the τ of the kept neurons (see
    #: :func:`.spectral.lyapunov_modulation`), and the two tasks prefer different τ
    lyapunov_strength: float = 1.0
    #: abscissa the covariance probe is shifted to if A is unstable; None = 0.1 × median(1/τ)
    stability_margin: float | None = None
    #: "top" (deterministic: the highest keep scores, no rescaling), "priority" (Moore–Chaudhuri's
    #: random rule with an exact count) or "sample" (the rule as published: expected count); see
    #: :func:`.spectral.sparsify`. Why "top" by default: in bench/lnp.py (500 neurons, 5 seeds, 60 %
    #: neurons / 90 % synapses among survivors, equal synapse counts) it beat "sample" on both tasks
    #: (NRMSE / dense, Lorenz 1.34 vs 1.58, Rössler 1.54 vs 1.62, though "sample" kept 1.5× the
    #: synapses: the count bug described in :func:`lnp_prune`) and kept ρ(W) below the dense
    #: network's (0.41 vs 1.05), where the 1/p-rescaled modes raised it to 3.3-3.9; "priority"
    #: was between (1.45 / 1.44). None of them beat random pruning on both tasks.
    sampling: Literal["sample", "priority", "top"] = "top"
    #: random modes only: survivors become w / p (Moore–Chaudhuri's unbiased rescaling); without it
    #: "priority" scored 1.33 / 1.60 in the study above (with: 1.45 / 1.44)
    rescale: bool = True
    #: scale the returned W so that ρ(gW) equals the dense network's. Off: with "priority" it made
    #: no consistent difference (1.37 / 1.57 against 1.45 / 1.44 in the study above)
    match_radius: bool = False
    #: length of a synapse in the betweenness graph: "inverse" (1/|w|: strong synapses are short,
    #: see :func:`.centrality.synapse_graph`), "hops" (1 each) or "weight" (|w|, networkx's plain
    #: reading of a weight as a distance, which makes strong synapses long). "inverse" beat both on
    #: both tasks (200 neurons, 5 seeds, "top": 1.46 / 1.44 against 1.50 / 1.50 and 1.50 / 1.56)
    centrality_distance: Literal["inverse", "hops", "weight"] = "inverse"
    max_relaxations: int = DEFAULT_MAX_RELAXATIONS
    #: at most this many synapses are added by the delocalisation step (0 = skip it). They come out
    #: of the synapse budget: the sparsifier keeps that many fewer, so the requested synapse
    #: sparsity still holds. 0 and 10 scored the same (200 neurons, 5 seeds: 1.46 / 1.45 vs 1.46 / 1.44)
    delocalize_edges: int = 10
    #: magnitude of an added synapse as a fraction of the median |w|
    delocalize_weight: float = 0.5


@dataclass(frozen=True)
class PruneStats:
    """One network state: size, stability and eigenvector localisation."""

    neurons: int
    synapses: int
    #: max |λ(g W)|
    spectral_radius: float
    #: max Re λ(A), A = -D + gW (< 0: linearly stable)
    spectral_abscissa: float
    #: per time step, of the noise-driven tanh rate network (:func:`.objective.largest_lyapunov_exponent`)
    lyapunov_exponent: float
    #: mean IPR of the ``n_leading`` slowest eigenvectors of A
    mean_ipr: float
    #: per time step, of the spiking LIF network itself: finite-size perturbation growth
    #: (:func:`.spiking_lyapunov.spiking_lyapunov`)
    spiking_lyapunov_exponent: float = float("nan")


@dataclass(frozen=True)
class PruneResult:
    """A pruned network: new weights over the kept neurons, and how it compares to the original."""

    method: str
    #: (m, m) CSR weights between the kept neurons (row = target), rescaled/added synapses included
    weights: sp.csr_matrix
    #: sorted indices of the kept neurons in the original network (new neuron r = old kept[r])
    kept: np.ndarray
    #: (e, 2) (target, source) of synapses added by delocalisation, in the *new* indices
    added_edges: np.ndarray
    added_weights: np.ndarray
    before: PruneStats
    after: PruneStats
    #: wall-clock seconds of each step, in the order they ran
    timings: dict[str, float]

    @property
    def neuron_sparsity(self) -> float:
        return 1.0 - self.after.neurons / self.before.neurons


#: the name the LNP entry point's result goes by
LnpResult = PruneResult


def network_stats(W: sp.csr_matrix, tau: np.ndarray, gain: np.ndarray, *, settings: AnalysisSettings, seed: int,
                  eig: Eigen | None = None, kept: np.ndarray | None = None) -> PruneStats:
    """Measure one network state; ``gain`` and ``tau`` are per neuron of *this* W (``settings.gain`` is not read,
    so a pruned network is measured with its kept neurons' gains); ``kept``: which neurons of
    ``settings.neurons`` this W's are (None: all); ``eig``, if given, must be that of the linearisation."""
    A = linearize(W, tau, gain=gain)
    eig = eig if eig is not None else eigendecompose(A)
    radius = spectral_radius(eigenvalues(sp.diags(gain) @ W)) if W.nnz else 0.0
    return PruneStats(
        neurons=W.shape[0], synapses=int(W.nnz), spectral_radius=radius,
        spectral_abscissa=spectral_abscissa(eig.values),
        lyapunov_exponent=largest_lyapunov_exponent(W, tau, gain=gain, settings=settings.simulation, seed=seed),
        mean_ipr=mean_leading_ipr(eig, settings.n_leading),
        spiking_lyapunov_exponent=largest_spiking_lyapunov_exponent(W, _neurons_of(settings, tau, kept), settings=settings.spiking,
                                                                    seed=seed))


def _neurons_of(settings: AnalysisSettings, tau: np.ndarray, kept: np.ndarray | None) -> LIFNeurons:
    """The LIF neurons of a (pruned) W: ``settings.neurons`` restricted to ``kept``, or unit-threshold neurons of time constants ``tau``."""
    nrn = settings.neurons
    if nrn is None:
        return LIFNeurons.from_tau(tau)
    sizes = {int(np.size(getattr(nrn, f))) for f in ("leak", "current_decay", "threshold", "bias")} - {1}
    if kept is None or not sizes:  # all of them, or one value each: the same for any subset
        return nrn
    leak, current_decay, threshold, bias = nrn.arrays(max(sizes))
    return LIFNeurons(leak=leak[kept], current_decay=current_decay[kept], threshold=threshold[kept], bias=bias[kept],
                      reset=nrn.reset)


def lnp_prune(W: object, tau: object, *, neuron_sparsity: float, synapse_sparsity: float, seed: int = 0,
              settings: LnpSettings = LnpSettings()) -> PruneResult:
    """Lyapunov Noise Pruning: spectral sparsification → betweenness neuron pruning → delocalisation.

    Order of operations, and why: the synapses are sparsified first on the whole network (the
    paper's order: centrality is measured on the *sparsified* graph, whose shortest paths are the
    ones that will exist), then the lowest-betweenness neurons go, then the surviving
    sub-network is re-sparsified with k re-solved on its own synapses, using the full network's
    covariance and the *same* uniform random numbers (the random modes; "top" needs none).
    Re-solving k is what makes the requested synapse sparsity hold for the network that is
    returned -- exactly for "top" and "priority", see below for "sample" (the kept neurons are the well-connected
    ones, whose synapses the first pass kept more often); the shared uniforms make the second
    draw a near-copy of the first, so the graph the centrality saw is the graph that is kept.
    Reusing the full network's covariance avoids a second O(n³) solve; the removed neurons are,
    by construction, the ones that route the least of it.

    Synapse counts: with ``sampling="top"`` or ``"priority"`` exactly round((1 - synapse_sparsity) ·
    nnz among the kept neurons) synapses survive, of which up to ``delocalize_edges`` (at most half)
    are reserved for the delocalisation step. With ``"sample"`` the count is only right in
    expectation over *independent* uniforms; the shared uniforms are not independent of the
    centrality step (the kept neurons are those whose synapses drew small u), so the second draw
    keeps ~2× the requested synapses at 90 % sparsity -- one reason "sample" is not the default.
    Optional: ``match_radius`` rescales the result to the dense network's ρ(gW).
    """
    M, t = check_network(W, tau)
    ns = check_fraction(neuron_sparsity, "neuron_sparsity")
    ss = check_fraction(synapse_sparsity, "synapse_sparsity")
    rng = rng_from(seed)
    a = settings.analysis
    g = check_gain(a.gain, M.shape[0])
    timings: dict[str, float] = {}
    clock = _Clock(timings)

    A = linearize(M, t, gain=g)
    eig = clock("eigendecomposition", eigendecompose, A)
    before = clock("stats before", network_stats, M, t, g, settings=a, seed=seed, eig=eig)
    horizon = settings.horizon if settings.horizon is not None else float(np.median(t))
    exponents = clock("local exponents", local_lyapunov_exponents, A, horizon=horizon)
    L = lyapunov_matrix(M, exponents)
    margin = settings.stability_margin if settings.stability_margin is not None else 0.1 * float(np.median(1 / t))
    C = clock("covariance", stationary_covariance, A, noise_std=settings.noise_std, eig=eig,
              shift=stability_shift(eig, margin))
    scores = noise_scores(M, C) * lyapunov_modulation(L.data, strength=settings.lyapunov_strength)
    uniforms = rng.random(M.nnz)
    first = clock("sparsify", sparsify, M, scores, sparsity=ss, uniforms=uniforms, mode=settings.sampling,
                  rescale=settings.rescale)
    kept = clock("centrality", prune_by_centrality, first.weights, neuron_sparsity=ns, seed=rng,
                 max_relaxations=settings.max_relaxations, distance=settings.centrality_distance).kept
    sub, pos = restrict(M, kept)
    budget = keep_count(sub.nnz, ss)
    reserved = min(settings.delocalize_edges, budget // 2) if settings.delocalize_edges > 0 else 0
    final = clock("re-sparsify", sparsify, sub, scores[pos], sparsity=1.0 - (budget - reserved) / sub.nnz if reserved else ss,
                  uniforms=uniforms[pos], mode=settings.sampling, rescale=settings.rescale)
    W_new, edges, edge_w = final.weights, np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    if settings.match_radius and W_new.nnz and before.spectral_radius > 0:
        rho = spectral_radius(eigenvalues(sp.diags(g[kept]) @ W_new))
        if rho > 0:
            W_new = (W_new * (before.spectral_radius / rho)).tocsr()
    if reserved > 0 and W_new.nnz:
        d = clock("delocalize", delocalize, W_new, t[kept], gain=g[kept], max_edges=reserved,
                  weight_scale=settings.delocalize_weight, n_leading=a.n_leading)
        W_new, edges, edge_w = d.weights, d.edges, d.edge_weights
    after = clock("stats after", network_stats, W_new, t[kept], g[kept], settings=a, seed=seed, kept=kept)
    return PruneResult("lnp", W_new, kept, edges, edge_w, before, after, timings)


def random_prune(W: object, tau: object, *, neuron_sparsity: float, synapse_sparsity: float, seed: int = 0,
                 settings: AnalysisSettings = AnalysisSettings()) -> PruneResult:
    """Baseline: uniformly random neurons, then uniformly random synapses among them; no rescaling.

    Exactly the same counts as the other methods (the sparsities are applied with the same
    rounding), so any difference is due to *which* neurons and synapses are kept.
    """
    M, t = check_network(W, tau)
    rng = rng_from(seed)
    n_keep = keep_count(M.shape[0], check_fraction(neuron_sparsity, "neuron_sparsity"), at_least=1)
    kept = np.sort(rng.choice(M.shape[0], size=n_keep, replace=False))
    sub, _ = restrict(M, kept)
    order = rng.permutation(sub.nnz)
    return _baseline("random", M, t, kept, sub, order, synapse_sparsity, settings, seed)


def activity_prune(W: object, tau: object, activity: object, *, neuron_sparsity: float, synapse_sparsity: float,
                   seed: int = 0, settings: AnalysisSettings = AnalysisSettings()) -> PruneResult:
    """Baseline: drop the least active neurons, then the smallest-|w| synapses among the rest.

    ``activity`` (one non-negative value per neuron, e.g. mean firing rate of the *trained*
    dense network on its task) comes from the caller, who trains the dense network; ties are
    broken by index, so the result is deterministic. No rescaling (magnitude pruning keeps the
    surviving weights as trained).
    """
    M, t = check_network(W, tau)
    act = np.asarray(activity, dtype=np.float64)
    if act.shape != (M.shape[0],) or not np.all(np.isfinite(act)) or np.any(act < 0):
        raise NeurocompileError(f"activity must be {M.shape[0]} finite non-negative values, one per neuron")
    n_keep = keep_count(M.shape[0], check_fraction(neuron_sparsity, "neuron_sparsity"), at_least=1)
    kept = np.sort(np.lexsort((np.arange(M.shape[0]), -act))[:n_keep])
    sub, _ = restrict(M, kept)
    order = np.lexsort((np.arange(sub.nnz), -np.abs(sub.data)))
    return _baseline("activity", M, t, kept, sub, order, synapse_sparsity, settings, seed)


def prune(method: Method, W: object, tau: object, *, neuron_sparsity: float, synapse_sparsity: float,
          seed: int = 0, activity: object | None = None, settings: LnpSettings = LnpSettings()) -> PruneResult:
    """One entry for the three methods (``activity`` is required for, and only used by, "activity")."""
    common = dict(neuron_sparsity=neuron_sparsity, synapse_sparsity=synapse_sparsity, seed=seed)
    if method == "lnp":
        return lnp_prune(W, tau, settings=settings, **common)
    if method == "random":
        return random_prune(W, tau, settings=settings.analysis, **common)
    if method == "activity":
        if activity is None:
            raise NeurocompileError("method 'activity' needs activity=: one value per neuron of the trained dense network")
        return activity_prune(W, tau, activity, settings=settings.analysis, **common)
    raise NeurocompileError(f"method must be 'lnp', 'random' or 'activity', got {method!r}")


def restrict(M: sp.csr_matrix, kept: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """W between the kept neurons, and for each of its synapses the position in ``M.data``."""
    where = M.copy()
    where.data = np.arange(1, M.nnz + 1, dtype=np.float64)  # +1: position 0 must not be a stored zero
    sub_where = where[kept][:, kept].tocsr()
    sub_where.sort_indices()
    pos = sub_where.data.astype(np.int64) - 1
    sub = sub_where.copy()
    sub.data = M.data[pos]
    return sub, pos


def keep_count(total: int, sparsity: float, *, at_least: int = 0) -> int:
    """How many of ``total`` items survive removing the fraction ``sparsity`` (rounded to nearest)."""
    return max(at_least, total - int(round(sparsity * total)))


def _baseline(method: str, M: sp.csr_matrix, t: np.ndarray, kept: np.ndarray, sub: sp.csr_matrix,
              order: np.ndarray, synapse_sparsity: float, settings: AnalysisSettings, seed: int) -> PruneResult:
    """Keep the first synapses of ``order`` (indices into ``sub.data``) and measure before/after."""
    timings: dict[str, float] = {}
    clock = _Clock(timings)
    n_syn = keep_count(sub.nnz, check_fraction(synapse_sparsity, "synapse_sparsity"))
    mask = np.zeros(sub.nnz, dtype=bool)
    mask[order[:n_syn]] = True
    W_new = sub.copy()
    W_new.data = np.where(mask, sub.data, 0.0)
    W_new.eliminate_zeros()
    g = check_gain(settings.gain, M.shape[0])
    before = clock("stats before", network_stats, M, t, g, settings=settings, seed=seed)
    after = clock("stats after", network_stats, W_new, t[kept], g[kept], settings=settings, seed=seed, kept=kept)
    return PruneResult(method, W_new, kept, np.zeros((0, 2), dtype=np.int64), np.zeros(0), before, after, timings)


class _Clock:
    """Calls a step and records its wall time under a name."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings

    def __call__(self, name, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
        return out
