"""Task-agnostic quality of a recurrent network with given time constants: stability and memory.

Both measures simulate the same *leaky tanh rate network*, in discrete time steps like Loihi:

    x[t+1] = a ⊙ x[t] + g W tanh(x[t]) + input[t],   a_i = exp(-1/τ_i)

Why rates, not LIF spikes: the largest Lyapunov exponent is the growth rate of an infinitesimal
perturbation, which is ill-defined for a discontinuous spike map (a perturbation either flips a
spike or does nothing); the tanh network is the standard mean-field of a random spiking network
(Sompolinsky, Crisanti & Sommers 1988) and its Jacobian at rest is exactly the linearisation
A = -D + gW of :mod:`.linear` (exp(-1/τ) integrates the leak exactly, so τ < 1 step stays
stable). The per-step exponent ≈ the continuous-time one for the slow modes that matter.
The spiking network's own exponent (finite-size perturbation growth on the LIF map) is
:func:`.spiking_lyapunov.spiking_lyapunov`.

Both are bitwise reproducible for a fixed seed: the random numbers come from one generator in a
fixed order, and the dense linear algebra runs on one BLAS thread (:func:`.checks.deterministic_blas`)
-- which matters, because a positive exponent amplifies a difference in the last bit of the
weights to ~1e-2 in the finite-time estimate.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .checks import Seed, check_gain, check_network, deterministic_blas, rng_from


@dataclass(frozen=True)
class SimulationSettings:
    """How long and how hard to drive the rate network (steps are Loihi time steps)."""

    #: std of the iid Gaussian noise driving every neuron (the paper's noise-driven regime)
    noise_std: float = 0.1
    warmup: int = 200
    steps: int = 1000


@dataclass(frozen=True)
class MemorySettings:
    """Linear memory capacity: iid U(-1, 1) input, ridge readouts of the delays 1..max_delay."""

    max_delay: int = 20
    input_scale: float = 0.2
    washout: int = 200
    steps: int = 2000
    #: ridge penalty relative to the mean state variance (scale-free)
    ridge: float = 1e-4


@dataclass(frozen=True)
class ObjectiveSettings:
    """The combined objective: memory capacity minus a penalty on a positive largest exponent."""

    #: response gain of the rate units (see :func:`.linear.linearize`)
    gain: float = 1.0
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)
    #: a largest exponent of +0.01 / step costs ``0.01 * penalty`` delays of perfect memory
    lyapunov_penalty: float = 1000.0


def largest_lyapunov_exponent(W: object, tau: object, *, gain: float | np.ndarray = 1.0,
                              settings: SimulationSettings = SimulationSettings(), seed: Seed = 0) -> float:
    """Largest Lyapunov exponent (per time step) of the noise-driven rate network (Benettin's method).

    A tangent vector is propagated with the exact Jacobian, v ← a ⊙ v + g W (tanh'(x) ⊙ v), along
    the noise-driven trajectory and renormalised every step; the exponent is the mean log growth
    after ``warmup`` steps. The tangent map (instead of a second, perturbed trajectory) avoids
    choosing a perturbation size and is exact. < 0: perturbations die out (stable); > 0: chaos.
    """
    rng, n, a, gW = _rate_network(W, tau, gain, seed)
    with deterministic_blas():
        return _benettin(rng, n, a, gW, settings)


def _benettin(rng: np.random.Generator, n: int, a: np.ndarray, gW: sp.csr_matrix,
              settings: SimulationSettings) -> float:
    x = rng.standard_normal(n) * settings.noise_std
    v = rng.standard_normal(n)
    v /= np.linalg.norm(v)
    total = 0.0
    for step in range(settings.warmup + settings.steps):
        r = np.tanh(x)
        v = a * v + gW @ ((1.0 - r * r) * v)
        x = a * x + gW @ r + settings.noise_std * rng.standard_normal(n)
        norm = np.linalg.norm(v)
        if norm == 0:
            return float("-inf")
        if step >= settings.warmup:
            total += np.log(norm)
        v /= norm
    return total / settings.steps


def memory_capacity(W: object, tau: object, *, gain: float | np.ndarray = 1.0,
                    settings: MemorySettings = MemorySettings(), seed: Seed = 0) -> float:
    """Jaeger's linear memory capacity Σ_d corr²(ŷ_d, u[t-d]), d = 1..max_delay, on held-out steps.

    The network is driven by one iid U(-1, 1) input through random Gaussian input weights; a
    ridge readout of the states tanh(x) (plus a bias) is fitted for every delay on the first half
    of the post-washout steps and scored on the second half. Why held-out: with n ≳ steps an
    in-sample fit reaches corr² ≈ 1 for any network, so in-sample MC would reward size, not memory.
    Bounded by max_delay; ~n for a good linear reservoir when max_delay ≥ n.
    """
    rng, n, a, gW = _rate_network(W, tau, gain, seed)
    with deterministic_blas():
        return _memory_capacity(rng, n, a, gW, settings)


def _memory_capacity(rng: np.random.Generator, n: int, a: np.ndarray, gW: sp.csr_matrix,
                     settings: MemorySettings) -> float:
    w_in = rng.standard_normal(n) * settings.input_scale
    T = settings.washout + settings.steps
    u = rng.uniform(-1.0, 1.0, T)
    states = _drive(gW, a, np.outer(u, w_in))[settings.washout:]
    K = settings.max_delay
    X = np.hstack([states[K:], np.ones((states.shape[0] - K, 1))])
    Y = np.stack([u[settings.washout + K - d: T - d] for d in range(1, K + 1)], axis=1)
    half = X.shape[0] // 2
    Xtr, Xte, Ytr, Yte = X[:half], X[half:], Y[:half], Y[half:]
    G = Xtr.T @ Xtr
    lam = settings.ridge * np.trace(G) / G.shape[0]
    B = np.linalg.solve(G + lam * np.eye(G.shape[0]), Xtr.T @ Ytr)
    pred = Xte @ B
    return float(np.sum([_squared_corr(pred[:, d], Yte[:, d]) for d in range(K)]))


def tau_objective(W: object, tau: object, *, settings: ObjectiveSettings = ObjectiveSettings(),
                  seed: Seed = 0) -> tuple[float, float, float]:
    """(objective, memory capacity, largest exponent): objective = MC - penalty · max(0, λ_max).

    Why this combination: the paper's BO objective asks for stability (λ_max ≤ 0) and memory /
    activity. A hinge on λ_max leaves all stable networks to be ranked by memory alone (an
    overly contracting network already scores low memory), while any chaos is paid for in
    delays of memory lost. Both simulations share the seed, so two τ draws are compared on the
    same noise (common random numbers -- less noise in the BO's objective).
    """
    lam = largest_lyapunov_exponent(W, tau, gain=settings.gain, settings=settings.simulation, seed=seed)
    mc = memory_capacity(W, tau, gain=settings.gain, settings=settings.memory, seed=seed)
    return mc - settings.lyapunov_penalty * max(0.0, lam), mc, lam


def _rate_network(W: object, tau: object, gain: float | np.ndarray, seed: Seed) -> tuple[np.random.Generator, int, np.ndarray, sp.csr_matrix]:
    """The leaky tanh rate network both measures simulate: (its random stream, size, per-step retention e^(-1/τ), g·W)."""
    M, t = check_network(W, tau)
    return rng_from(seed), M.shape[0], np.exp(-1.0 / t), _scaled(M, gain)


def _scaled(M: sp.csr_matrix, gain: float | np.ndarray) -> sp.csr_matrix:
    """diag(g) W: the gain of each target neuron scales the synapses arriving at it."""
    return (sp.diags(check_gain(gain, M.shape[0])) @ M).tocsr()


def _drive(gW: sp.csr_matrix, a: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    x = np.zeros(gW.shape[0])
    out = np.empty_like(inputs)
    for t in range(inputs.shape[0]):
        r = np.tanh(x)
        out[t] = r
        x = a * x + gW @ r + inputs[t]
    return out


def _squared_corr(p: np.ndarray, y: np.ndarray) -> float:
    sp_, sy = p.std(), y.std()
    if sp_ == 0 or sy == 0:
        return 0.0
    return float(np.mean((p - p.mean()) * (y - y.mean())) / (sp_ * sy)) ** 2
