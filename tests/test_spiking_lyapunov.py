"""The spiking network's largest Lyapunov exponent (finite-size perturbation growth on the LIF map) on known systems."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from neurocompile.errors import NeurocompileError
from neurocompile.lnp.spiking_lyapunov import (
    LIFNeurons, SpikingLyapunovSettings, largest_spiking_lyapunov_exponent, spiking_lyapunov, tangent_limit,
)

SHORT = SpikingLyapunovSettings(warmup=100, steps=1000)


def _random_recurrence(n: int = 200, density: float = 0.1, seed: int = 1) -> np.ndarray:
    """Mixed-sign Gaussian weights on a random mask, scaled so the spectral radius is about 1 (gain 1)."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n, n)) < density
    np.fill_diagonal(mask, False)
    return rng.standard_normal((n, n)) * mask / np.sqrt(density * n)


def test_zero_recurrence_gives_the_slowest_membrane_decay():
    # firing, uncoupled neurons: between spike flips the map contracts v by (1 - leak) per step, and
    # a tiny δ0 makes flips (probability O(δ0)) negligible, so the exponent is ln(1 - min leak)
    leak = np.linspace(0.2, 0.5, 50)
    leak[7] = 0.05
    cells = LIFNeurons(leak=leak, bias=np.linspace(0.05, 0.3, 50))
    r = spiking_lyapunov(np.zeros((50, 50)), cells, settings=SpikingLyapunovSettings(perturbation=1e-8))
    assert r.rate > 0.05  # the neurons do fire: the resets are crossed, not avoided
    assert r.exponent == pytest.approx(np.log(0.95), abs=1e-6)
    assert r.tangent_limit == pytest.approx(np.log(0.95), rel=1e-12)
    assert r.flips == 0.0


def test_slow_synaptic_current_sets_the_limit_when_it_decays_slower():
    cells = LIFNeurons(leak=np.full(20, 0.5), current_decay=np.full(20, 0.2), bias=0.3)
    r = spiking_lyapunov(sp.csr_matrix((20, 20)), cells, settings=SpikingLyapunovSettings(perturbation=1e-8))
    assert r.exponent == pytest.approx(np.log(0.8), abs=1e-3)
    assert tangent_limit(cells, 20) == pytest.approx(np.log(0.8), rel=1e-12)


def test_silent_network_ignores_the_recurrence():
    # nobody reaches threshold, so W never acts: the exponent is the closed form for any W
    W = 5.0 * _random_recurrence()
    leak = np.linspace(0.2, 0.4, 200)
    leak[50] = 0.1
    cells = LIFNeurons(leak=leak, bias=-0.5)
    r = spiking_lyapunov(W, cells, settings=SpikingLyapunovSettings(noise_std=0.0, warmup=100, steps=500))
    assert r.rate == 0.0 and r.flips == 0.0
    assert r.exponent == pytest.approx(np.log(0.9), abs=1e-6)


def test_contracting_versus_excitatory_recurrence():
    J = _random_recurrence()
    slow = LIFNeurons(leak=np.full(200, 0.1), bias=0.12)
    fast = LIFNeurons(leak=np.full(200, 0.5), bias=0.6)
    contracting = largest_spiking_lyapunov_exponent(0.1 * J, fast, settings=SHORT)
    lam = {g: largest_spiking_lyapunov_exponent(g * J, slow, settings=SHORT) for g in (0.0, 0.3, 1.0)}
    assert contracting < -0.3  # fast leak, weak coupling: perturbations die out
    assert lam[1.0] > 0.05  # strong random recurrence: flipped spikes cascade
    assert lam[0.0] < lam[0.3] < lam[1.0]  # more recurrence, faster divergence
    assert lam[0.0] < 0


def test_same_seed_is_bitwise_identical_and_seeds_differ():
    W = sp.csr_matrix(_random_recurrence(120))
    cells = LIFNeurons(leak=np.random.default_rng(2).uniform(0.05, 0.5, 120), bias=0.1)
    s = SpikingLyapunovSettings(warmup=50, steps=400)
    a = spiking_lyapunov(W, cells, settings=s, seed=3)
    b = spiking_lyapunov(W, cells, settings=s, seed=3)
    assert a.exponent == b.exponent and np.array_equal(a.per_trial, b.per_trial)
    assert spiking_lyapunov(W, cells, settings=s, seed=4).exponent != a.exponent
    # a dense array and its CSR are the same network
    assert spiking_lyapunov(W.toarray(), cells, settings=s, seed=3).exponent == a.exponent


def test_time_constants_alone_and_zero_reset():
    tau = np.array([2.0, 10.0, 4.0])
    assert tangent_limit(LIFNeurons.from_tau(tau), 3) == pytest.approx(np.log(0.9))
    r = spiking_lyapunov(np.zeros((3, 3)), tau, settings=SpikingLyapunovSettings(perturbation=1e-8, warmup=50,
                                                                                  steps=300))
    assert r.exponent == pytest.approx(np.log(0.9), abs=1e-6)
    zero = LIFNeurons.from_tau(tau, bias=0.5, reset="zero")
    rz = spiking_lyapunov(np.zeros((3, 3)), zero, settings=SpikingLyapunovSettings(perturbation=1e-8, warmup=50,
                                                                                   steps=300))
    assert rz.exponent <= tangent_limit(zero, 3) + 1e-9  # a zero reset also erases the firing neuron's perturbation
    # τ = 1 step and a one-step synaptic current: the whole state is forgotten every step
    assert spiking_lyapunov(np.zeros((3, 3)), np.ones(3), settings=SpikingLyapunovSettings(warmup=10, steps=50)).exponent \
        == float("-inf")


def test_bad_input_is_a_one_line_error():
    with pytest.raises(NeurocompileError, match="leak"):
        spiking_lyapunov(np.zeros((3, 3)), LIFNeurons(leak=np.array([0.1, 1.5, 0.2])))
    with pytest.raises(NeurocompileError, match="threshold"):
        spiking_lyapunov(np.zeros((2, 2)), LIFNeurons(leak=0.1, threshold=np.ones(3)))
    with pytest.raises(NeurocompileError, match="reset"):
        spiking_lyapunov(np.zeros((2, 2)), LIFNeurons(leak=0.1, reset="hard"))  # type: ignore[arg-type]
    with pytest.raises(NeurocompileError, match="renormalise_every"):
        spiking_lyapunov(np.zeros((2, 2)), np.ones(2), settings=SpikingLyapunovSettings(renormalise_every=0))
    with pytest.raises(NeurocompileError, match="tau"):
        spiking_lyapunov(np.zeros((2, 2)), np.array([1.0, -1.0]))
