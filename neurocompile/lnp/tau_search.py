"""Step 5 of LNP: Bayesian optimisation of the gamma distribution of the membrane time constants.

HRSNN draws each neuron's τ from a gamma distribution; Chakraborty et al. (ICLR 2024) tune its
parameters by Bayesian optimisation of a task-agnostic objective (:func:`.objective.tau_objective`).
We parametrise the gamma by (shape, mean) rather than (shape, scale): the mean is the timescale
a user thinks in, and the two are far less correlated in the objective than shape and scale.
The sampler is optuna's TPE, seeded, so the search is reproducible.

Where it runs: :func:`.prune.lnp_prune` does not call it (it prunes the network with the τ it is
given); ``bench/lnp.py --tau-search`` applies it after pruning, to every method's pruned network
alike (20 trials). Measured there (500 neurons, 5 seeds, 60 % / 90 %): it picked short means
(≈ 2-4.5 steps against the dense network's 5) and lowered NRMSE / dense for LNP on Lorenz
(1.34 → 1.28) but as much for random pruning (1.39 → 1.30); on Rössler neither moved (1.55 / 1.52
→ 1.54 / 1.55). It is not a lever that favours LNP over the baselines on this study.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import optuna

from neurocompile.errors import NeurocompileError

from .checks import Seed, check_positive, check_weights, rng_from
from .objective import ObjectiveSettings, tau_objective


@dataclass(frozen=True)
class TauSearchSettings:
    """The search space and budget."""

    n_trials: int = 30
    shape_range: tuple[float, float] = (0.5, 20.0)
    mean_range: tuple[float, float] = (2.0, 100.0)
    #: Loihi cannot decay faster than once per step, so sampled τ below this are raised to it
    tau_min: float = 1.0
    objective: ObjectiveSettings = field(default_factory=ObjectiveSettings)


@dataclass(frozen=True)
class TauSearchResult:
    """Best (shape, mean), its objective, and one row per trial (in trial order)."""

    shape: float
    mean: float
    value: float
    trials: list[dict[str, float]]

    def sample(self, n: int, *, seed: Seed = 0, tau_min: float = 1.0) -> np.ndarray:
        """Draw n time constants from the best distribution."""
        return sample_tau(n, self.shape, self.mean, seed=seed, tau_min=tau_min)


def sample_tau(n: int, shape: float, mean: float, *, seed: Seed = 0, tau_min: float = 1.0) -> np.ndarray:
    """n time constants (time steps) from Gamma(shape, scale = mean / shape), floored at ``tau_min``."""
    k = check_positive(shape, "shape")
    mu = check_positive(mean, "mean")
    return np.maximum(rng_from(seed).gamma(k, mu / k, size=int(n)), tau_min)


def search_tau(W: object, *, settings: TauSearchSettings = TauSearchSettings(), seed: int = 0) -> TauSearchResult:
    """TPE search over (shape, mean) (both log-uniform) maximising the objective on the network W.

    Every trial draws τ with the same seed and evaluates with the same simulation seed (common
    random numbers), so trials differ only in the distribution's parameters. Optuna's logging is
    silenced for the duration of the search and restored afterwards.
    """
    M = check_weights(W)
    lo_k, hi_k = settings.shape_range
    lo_m, hi_m = settings.mean_range
    if not (0 < lo_k < hi_k and 0 < lo_m < hi_m) or settings.n_trials < 1:
        raise NeurocompileError("tau search needs 0 < low < high for shape_range and mean_range and n_trials ≥ 1")
    trials: list[dict[str, float]] = []

    def objective(trial: optuna.Trial) -> float:
        shape = trial.suggest_float("shape", lo_k, hi_k, log=True)
        mean = trial.suggest_float("mean", lo_m, hi_m, log=True)
        tau = sample_tau(M.shape[0], shape, mean, seed=seed, tau_min=settings.tau_min)
        value, mc, lam = tau_objective(M, tau, settings=settings.objective, seed=seed)
        trials.append({"shape": shape, "mean": mean, "value": value, "memory_capacity": mc, "lyapunov": lam})
        return value

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=settings.n_trials)
    finally:
        optuna.logging.set_verbosity(verbosity)
    best = study.best_trial
    return TauSearchResult(shape=best.params["shape"], mean=best.params["mean"], value=best.value, trials=trials)
