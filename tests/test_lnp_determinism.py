"""LNP is bitwise reproducible: the same network and seed give the same pruned weights in every run and process.

The run-to-run differences (~1e-13 in the pruned weights) came from the dense linear algebra:
``scipy.linalg.expm`` returned one of two results on the same input, and OpenBLAS's
multi-threaded ``geev`` / products depend on the thread count. ``neurocompile.lnp`` now uses
its own Padé expm and runs dense BLAS/LAPACK on one thread (``checks.deterministic_blas``).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from neurocompile.lnp import lnp_prune
from neurocompile.lnp.linear import expm

#: the network and the digest of an LNP result, shared by this process and the subprocesses
_SCRIPT = textwrap.dedent('''
    import hashlib
    import numpy as np
    import scipy.sparse as sp
    from neurocompile.lnp import lnp_prune

    def network(n=160, density=0.15, radius=1.5, seed=0):
        rng = np.random.default_rng(seed)
        tau = np.maximum(rng.gamma(2.0, 2.5, n), 1.0)
        W = sp.random(n, n, density=density, random_state=seed, data_rvs=rng.standard_normal, format="csr")
        return W * (radius * np.median(1 / tau) / np.sqrt(n * density)), tau

    def digest(r):
        w = sp.csr_matrix(r.weights)
        w.sort_indices()
        parts = [w.data, w.indices, w.indptr, np.asarray(r.kept), r.added_edges, r.added_weights]
        # every statistic but the spectral radius, whose eigvals call is prune.py's (not under one thread)
        for s in (r.before, r.after):
            parts.append(np.array([s.neurons, s.synapses, s.spectral_abscissa, s.lyapunov_exponent, s.mean_ipr]))
        return hashlib.sha256(b"".join(np.ascontiguousarray(p).tobytes() for p in parts)).hexdigest()

    def run():
        W, tau = network()
        return lnp_prune(W, tau, neuron_sparsity=0.5, synapse_sparsity=0.8, seed=3)
''')
_NS: dict = {}
exec(_SCRIPT, _NS)  # noqa: S102 -- the same code the subprocesses run


def test_two_runs_in_one_process_are_bitwise_identical():
    a, b = _NS["run"](), _NS["run"]()
    for x, y in ((a.weights.data, b.weights.data), (a.weights.indices, b.weights.indices), (a.kept, b.kept),
                 (a.added_edges, b.added_edges), (a.added_weights, b.added_weights)):
        assert np.array_equal(x, y)
    assert a.before == b.before and a.after == b.after  # every statistic, bit for bit
    assert a.after.synapses > 0 and a.after.neurons == 80


def test_blas_thread_count_does_not_change_the_result():
    with threadpool_limits(limits=2, user_api="blas"):
        two = _NS["digest"](_NS["run"]())
    with threadpool_limits(limits=1, user_api="blas"):
        one = _NS["digest"](_NS["run"]())
    assert one == two


def test_two_processes_with_different_thread_counts_agree():
    here = _NS["digest"](_NS["run"]())
    code = _SCRIPT + "\nprint(digest(run()))\n"
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == here, f"{threads} thread(s)"


def test_expm_matches_scipy_and_is_reproducible():
    rng = np.random.default_rng(0)
    n = 300
    A = rng.standard_normal((n, n)) * 0.3 / np.sqrt(n) - np.diag(rng.uniform(0.05, 1.0, n))
    for M in (A * 8.0, A * 0.1, np.zeros((4, 4)), np.array([[0.0, 30.0], [-30.0, 0.0]])):
        E = expm(M)
        ref = sla.expm(M)
        assert np.max(np.abs(E - ref)) <= 1e-12 * max(1.0, np.max(np.abs(ref)))
    runs = set()
    for i in range(4):
        _ = [np.empty(7 * j + 1) for j in range(i)]  # move the allocator's next addresses
        runs.add(hashlib.sha256(expm(A * 8.0).tobytes()).hexdigest())
    assert len(runs) == 1
