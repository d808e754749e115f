"""Lyapunov Noise Pruning (Chakraborty, Kang, Kumar & Mukhopadhyay, ICLR 2024, arXiv 2403.03409).

Pure-math package on plain arrays: a recurrent weight matrix ``W`` (dense (n, n) or
scipy.sparse; ``W[i, j]`` = synapse from j to i, row = target, as in neurocompile's IR) and
per-neuron membrane time constants ``tau`` (n,) in time steps. No IR dependency: a pass wraps it.

Steps (one module each): :mod:`.linear` (linearisation, local exponents, Lyapunov matrix),
:mod:`.covariance` (stationary covariance), :mod:`.spectrum` (radius, abscissa, IPR),
:mod:`.spectral` (noise-driven sparsification, Moore & Chaudhuri NeurIPS 2020),
:mod:`.centrality` (betweenness neuron pruning), :mod:`.delocalize` (IPR-lowering edges),
:mod:`.objective` and :mod:`.tau_search` (τ distribution by Bayesian optimisation),
:mod:`.prune` (the pipeline and the random/activity baselines), :mod:`.spiking_lyapunov` (the
largest Lyapunov exponent of the spiking network itself, by finite-size perturbation growth).
"""
from .centrality import CentralityPruning, betweenness, prune_by_centrality, synapse_graph
from .covariance import stability_shift, stationary_covariance
from .delocalize import Delocalized, delocalize, ipr_sensitivity
from .linear import harmonic_mean_exponent, linearize, local_lyapunov_exponents, lyapunov_matrix
from .objective import (MemorySettings, ObjectiveSettings, SimulationSettings, largest_lyapunov_exponent,
                        memory_capacity, tau_objective)
from .prune import (AnalysisSettings, LnpResult, LnpSettings, PruneResult, PruneStats, activity_prune,
                    lnp_prune, network_stats, prune, random_prune)
from .spectral import Sparsified, keep_probabilities, lyapunov_modulation, noise_scores, solve_k, sparsify
from .spectrum import (Eigen, eigendecompose, eigenvalues, inverse_participation_ratio, mean_leading_ipr,
                       spectral_abscissa, spectral_radius)
from .spiking_lyapunov import (LIFNeurons, SpikingLyapunov, SpikingLyapunovSettings, largest_spiking_lyapunov_exponent,
                               spiking_lyapunov, tangent_limit)
from .tau_search import TauSearchResult, TauSearchSettings, sample_tau, search_tau

__all__ = [
    "AnalysisSettings", "CentralityPruning", "Delocalized", "Eigen", "LIFNeurons", "LnpResult", "LnpSettings",
    "SpikingLyapunov", "SpikingLyapunovSettings", "largest_spiking_lyapunov_exponent", "spiking_lyapunov", "tangent_limit",
    "MemorySettings", "ObjectiveSettings", "PruneResult", "PruneStats", "SimulationSettings", "Sparsified",
    "TauSearchResult", "TauSearchSettings", "activity_prune", "betweenness", "delocalize", "eigendecompose",
    "eigenvalues", "harmonic_mean_exponent", "inverse_participation_ratio", "ipr_sensitivity",
    "keep_probabilities", "largest_lyapunov_exponent", "linearize", "lnp_prune", "local_lyapunov_exponents",
    "lyapunov_matrix", "lyapunov_modulation", "mean_leading_ipr", "memory_capacity", "network_stats",
    "noise_scores", "prune", "prune_by_centrality", "random_prune", "sample_tau", "search_tau",
    "solve_k", "sparsify", "spectral_abscissa", "spectral_radius", "stability_shift", "stationary_covariance",
    "synapse_graph", "tau_objective",
]
