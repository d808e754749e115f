"""Lyapunov Noise Pruning speed on a 2,000-neuron, 10 %-dense recurrent network with gamma τ.

    python bench/lnp_speed.py [--neurons N] [--density D] [--neuron-sparsity S] [--synapse-sparsity S]
                              [--radius R] [--seed SEED] [--baselines]

Target: the whole LNP pipeline (linearisation, covariance, local exponents, sparsification,
betweenness neuron pruning, delocalisation, and the before/after statistics) in under
2 minutes on 2 cores. The network: τ ~ Gamma(shape 3, mean 20 steps) floored at 1 step,
Gaussian weights scaled so the recurrence is ``--radius`` × the median leak 1/τ (1.5: just past
the edge of chaos of the linearisation, as an untrained reservoir). Prints the time of each
step and the before/after statistics (and, with ``--baselines``, random and activity pruning at
equal sparsity, activity = mean |tanh| rate of a noise-driven run of the dense network).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp

from neurocompile.lnp import PruneResult, activity_prune, lnp_prune, random_prune, sample_tau


def network(n: int, density: float, radius: float, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    tau = sample_tau(n, 3.0, 20.0, seed=rng)
    W = sp.random(n, n, density=density, random_state=seed, data_rvs=rng.standard_normal, format="csr")
    return W * (radius * np.median(1 / tau) / np.sqrt(n * density)), tau


def noise_rates(W: sp.csr_matrix, tau: np.ndarray, seed: int, steps: int = 500) -> np.ndarray:
    """Mean |tanh(x)| of each neuron in a noise-driven run: the 'activity' the baseline prunes by."""
    rng = np.random.default_rng(seed)
    a, x, acc = np.exp(-1 / tau), np.zeros(W.shape[0]), np.zeros(W.shape[0])
    for _ in range(steps):
        r = np.tanh(x)
        acc += np.abs(r)
        x = a * x + W @ r + 0.1 * rng.standard_normal(W.shape[0])
    return acc / steps


def show(result: PruneResult, wall: float) -> None:
    print(f"\n[{result.method}] total {wall:.1f} s")
    for step, t in result.timings.items():
        print(f"  {step:<20s} {t:7.2f} s")
    b, a = result.before, result.after
    print(f"  {'':<20s} {'before':>12s} {'after':>12s}")
    for field in ("neurons", "synapses", "spectral_radius", "spectral_abscissa", "lyapunov_exponent", "mean_ipr"):
        fmt = "{:12d}" if field in ("neurons", "synapses") else "{:12.5f}"
        print(f"  {field:<20s} {fmt.format(getattr(b, field))} {fmt.format(getattr(a, field))}")
    if len(result.added_edges):
        print(f"  added synapses       {len(result.added_edges)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--neurons", type=int, default=2000)
    p.add_argument("--density", type=float, default=0.1)
    p.add_argument("--neuron-sparsity", type=float, default=0.57)
    p.add_argument("--synapse-sparsity", type=float, default=0.5)
    p.add_argument("--radius", type=float, default=1.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baselines", action="store_true")
    args = p.parse_args()
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs")
    W, tau = network(args.neurons, args.density, args.radius, args.seed)
    print(f"network: {W.shape[0]} neurons, {W.nnz} synapses, tau mean {tau.mean():.1f} steps")
    kw = dict(neuron_sparsity=args.neuron_sparsity, synapse_sparsity=args.synapse_sparsity, seed=args.seed)
    start = time.perf_counter()
    r = lnp_prune(W, tau, **kw)
    wall = time.perf_counter() - start
    show(r, wall)
    print(f"  LNP under 2 minutes: {'yes' if wall < 120 else 'NO'} ({wall:.1f} s)")
    if args.baselines:
        start = time.perf_counter()
        show(random_prune(W, tau, **kw), time.perf_counter() - start)
        start = time.perf_counter()
        show(activity_prune(W, tau, noise_rates(W, tau, args.seed), **kw), time.perf_counter() - start)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
