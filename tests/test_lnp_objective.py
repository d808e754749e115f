"""The τ objective (Lyapunov exponent, memory capacity) against closed forms, and the seeded τ search."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from neurocompile.errors import NeurocompileError
from neurocompile.lnp import (
    MemorySettings, ObjectiveSettings, SimulationSettings, TauSearchSettings, largest_lyapunov_exponent,
    memory_capacity, sample_tau, search_tau,
)

FAST = ObjectiveSettings(simulation=SimulationSettings(warmup=100, steps=400),
                         memory=MemorySettings(max_delay=10, washout=100, steps=800))


def test_uncoupled_network_exponent_is_the_slowest_leak():
    tau = np.array([2.0, 5.0, 40.0, 10.0])
    lam = largest_lyapunov_exponent(sp.csr_matrix((4, 4)), tau, settings=SimulationSettings(warmup=300, steps=500))
    assert lam == pytest.approx(-1 / 40.0, rel=1e-6)  # a tangent vector ends up on the slowest neuron


def test_strong_coupling_is_chaotic_and_weak_is_stable():
    rng = np.random.default_rng(0)
    n = 200
    J = rng.standard_normal((n, n)) / np.sqrt(n)
    tau = np.full(n, 10.0)
    leak = 1 - np.exp(-0.1)  # per-step leak: the tanh network is chaotic above gain ≈ leak (Sompolinsky et al.)
    assert largest_lyapunov_exponent(J * 0.5 * leak, tau) < 0
    assert largest_lyapunov_exponent(J * 3.0 * leak, tau) > 0


def test_memory_capacity_of_memoryless_and_leaky_networks():
    n = 50
    memoryless = memory_capacity(sp.csr_matrix((n, n)), np.full(n, 0.01), settings=FAST.memory)
    assert memoryless == pytest.approx(1.0, abs=0.1)  # each state sees only the last input
    rng = np.random.default_rng(1)
    leaky = memory_capacity(sp.csr_matrix((n, n)), rng.uniform(1, 20, n), settings=FAST.memory)
    assert 2.0 < leaky <= FAST.memory.max_delay  # a bank of leaky integrators remembers several steps


def test_tau_search_is_seeded_and_reports_every_trial():
    rng = np.random.default_rng(2)
    n = 40
    W = sp.random(n, n, density=0.2, random_state=2, data_rvs=rng.standard_normal, format="csr") * 0.05
    settings = TauSearchSettings(n_trials=6, objective=FAST)
    a, b = search_tau(W, settings=settings, seed=3), search_tau(W, settings=settings, seed=3)
    assert a == b and len(a.trials) == 6
    best = max(a.trials, key=lambda t: t["value"])
    assert (a.shape, a.mean, a.value) == (best["shape"], best["mean"], best["value"])
    assert all(0.5 <= t["shape"] <= 20 and 2 <= t["mean"] <= 100 for t in a.trials)
    tau = a.sample(10_000, seed=0)
    assert tau.min() >= 1.0 and np.mean(tau) == pytest.approx(a.mean, rel=0.1 if a.shape > 1 else 0.2)


def test_tau_inputs_are_checked():
    with pytest.raises(NeurocompileError, match="shape"):
        sample_tau(5, -1.0, 10.0)
    with pytest.raises(NeurocompileError, match="tau"):
        largest_lyapunov_exponent(np.eye(2), [1.0, 0.0])
