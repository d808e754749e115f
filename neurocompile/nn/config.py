"""Settings of the recurrent spiking models, validated on construction.

A config holds everything needed to rebuild a model's *initial* state from its
seed, and is what a saved model's JSON header stores (``nn/serialize.py``).
Invalid values raise :class:`~neurocompile.errors.NeurocompileError` naming the field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import NeurocompileError
from ..ir import MAX_SEED
from .layers import RESETS

MAX_HIDDEN = 1 << 14
"""Hidden neurons at most: the recurrent matrix is kept dense (n² weights and mask entries)."""
MAX_IO = 1 << 20  # input or readout size at most


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise NeurocompileError(f"{name} {value!r} must be an integer in [{lo}, {hi}]")


def _check_real(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        bound = f"{'(' if lo_open else '['}{lo}, {hi}]"
        raise NeurocompileError(f"{name} {value!r} must be a finite number in {bound}")


def _check_optional_shape(name: str, value: Any) -> None:
    if value is not None:
        _check_real(name, value, 0.0, lo_open=True)


@dataclass(frozen=True, kw_only=True)
class RSNNConfig:
    """What HRSNN and CHRSNN share.

    Time constants are in steps. ``tau_syn_mean``/``tau_syn_shape``: the synaptic
    current's τ (gamma, or all equal when the shape is None; the default τ_syn = 1
    means no synaptic current: u is the step's input). Weights are drawn Gaussian:
    input ``N(0, input_gain² / n_in)``; recurrent ``N(0, recurrent_gain² / k)`` on the
    mask with k the mean in-degree, so ``recurrent_gain`` is about the spectral radius
    (in units of the threshold); readout ``N(0, 1 / n_hidden)``. ``bias_std``: per-neuron
    bias ``N(0, bias_std²)`` (diverse operating points). ``readout_leak``: fraction of the
    readout's ``v`` lost per step (0: a pure accumulator, as a classifier's readout).
    """

    n_in: int
    n_out: int
    tau_syn_mean: float = 1.0
    tau_syn_shape: float | None = None
    input_gain: float = 1.0
    recurrent_gain: float = 1.0
    threshold: float = 1.0
    bias_std: float = 0.0
    reset: str = "subtract"
    readout_leak: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("n_in", self.n_in, 1, MAX_IO)
        _check_int("n_out", self.n_out, 1, MAX_IO)
        _check_real("tau_syn_mean", self.tau_syn_mean, 0.0, lo_open=True)
        _check_optional_shape("tau_syn_shape", self.tau_syn_shape)
        _check_real("input_gain", self.input_gain, 0.0)
        _check_real("recurrent_gain", self.recurrent_gain, 0.0)
        _check_real("threshold", self.threshold, 0.0, lo_open=True)
        _check_real("bias_std", self.bias_std, 0.0)
        if self.reset not in RESETS:
            raise NeurocompileError(f"reset {self.reset!r} is unknown; accepted: {', '.join(RESETS)}")
        _check_real("readout_leak", self.readout_leak, 0.0, 1.0)
        _check_int("seed", self.seed, 0, MAX_SEED - 1)


@dataclass(frozen=True, kw_only=True)
class HRSNNConfig(RSNNConfig):
    """One recurrent population; membrane τ ~ gamma(``tau_shape``, mean ``tau_mean``); Erdős–Rényi recurrence."""

    n_hidden: int
    tau_shape: float | None
    tau_mean: float
    recurrent_density: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("n_hidden", self.n_hidden, 1, MAX_HIDDEN)
        _check_optional_shape("tau_shape", self.tau_shape)
        _check_real("tau_mean", self.tau_mean, 0.0, lo_open=True)
        _check_real("recurrent_density", self.recurrent_density, 0.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class CHRSNNConfig(RSNNConfig):
    """Clusters, each with its own membrane-τ gamma (``tau_shapes[i]``, ``tau_means[i]``).

    Within a cluster, synapses with probability ``intra_density``; between clusters, the
    cross-cluster edges of a Watts–Strogatz graph of degree ``ring_degree`` and rewiring
    probability ``rewire`` (``nn/connectivity.clustered_small_world_mask``).
    """

    cluster_sizes: tuple[int, ...]
    tau_shapes: tuple[float | None, ...]
    tau_means: tuple[float, ...]
    intra_density: float = 0.3
    ring_degree: int = 4
    rewire: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("cluster_sizes", "tau_shapes", "tau_means"):
            if not isinstance(getattr(self, name), tuple) or not getattr(self, name):
                raise NeurocompileError(f"{name} must be a non-empty tuple (one entry per cluster)")
        k = len(self.cluster_sizes)
        if len(self.tau_shapes) != k or len(self.tau_means) != k:
            raise NeurocompileError(f"{k} clusters need {k} tau_shapes and {k} tau_means, got {len(self.tau_shapes)} and {len(self.tau_means)}")
        for i, (size, shape, mean) in enumerate(zip(self.cluster_sizes, self.tau_shapes, self.tau_means)):
            _check_int(f"cluster_sizes[{i}]", size, 0, MAX_HIDDEN)  # 0: every neuron of the cluster pruned
            _check_optional_shape(f"tau_shapes[{i}]", shape)
            _check_real(f"tau_means[{i}]", mean, 0.0, lo_open=True)
        _check_int("total hidden size", sum(self.cluster_sizes), 1, MAX_HIDDEN)
        _check_real("intra_density", self.intra_density, 0.0, 1.0)
        _check_int("ring_degree", self.ring_degree, 0, sum(self.cluster_sizes) - 1)
        _check_real("rewire", self.rewire, 0.0, 1.0)

    @property
    def n_hidden(self) -> int:
        return int(sum(self.cluster_sizes))
