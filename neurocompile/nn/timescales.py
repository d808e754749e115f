"""Heterogeneous time constants: τ per neuron drawn from a gamma distribution.

HRSNN (Chakraborty et al., ICLR 2024) draws each neuron's membrane time constant
from a gamma distribution so that the population spans several timescales at
once (memory of both fast and slow features). The chip's LIF does not take τ but
the *fraction lost per step*: ``leak = 1/τ_m`` and ``current_decay = 1/τ_syn``
(``ir.Population``). τ is in steps; τ ≤ 1 means "everything lost every step", so
the fraction is clipped to (0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import NeurocompileError


@dataclass(frozen=True)
class GammaTau:
    """A gamma distribution of time constants (in steps), given by its ``shape`` k and its ``mean``.

    Mean and shape rather than numpy's (shape, scale): the mean is the timescale a user thinks in,
    the shape how spread it is (coefficient of variation ``1/sqrt(k)``); ``scale = mean / shape``.
    ``shape=None`` makes every τ equal to ``mean`` (a homogeneous population).
    """

    mean: float
    shape: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.mean, (int, float)) and np.isfinite(self.mean) and self.mean > 0):
            raise NeurocompileError(f"time-constant mean {self.mean!r} must be a positive finite number of steps")
        if self.shape is not None and not (isinstance(self.shape, (int, float)) and np.isfinite(self.shape) and self.shape > 0):
            raise NeurocompileError(f"time-constant gamma shape {self.shape!r} must be a positive finite number (or None: all equal)")

    @property
    def scale(self) -> float | None:
        return None if self.shape is None else self.mean / self.shape

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` time constants (float64, steps)."""
        if self.shape is None:
            return np.full(n, float(self.mean))
        return rng.gamma(self.shape, self.scale, size=n)


def fraction_per_step(tau: np.ndarray) -> np.ndarray:
    """``1/τ`` clipped to (0, 1]: the state fraction a neuron loses each step (``leak`` or ``current_decay``)."""
    tau = np.asarray(tau, dtype=np.float64)
    with np.errstate(divide="ignore"):
        frac = 1.0 / tau
    return np.clip(frac, np.finfo(np.float64).tiny, 1.0)
