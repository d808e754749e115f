"""Chaotic time series generated on the spot (no download): Lorenz and Rössler.

Each series is integrated with ``scipy.integrate.solve_ivp`` (DOP853, tight
tolerances) and sampled every ``dt`` time units; a seeded random initial
condition near the attractor is run for ``transient`` samples first, which are
dropped, so every seed gives a different stretch of the same attractor.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from ..errors import NeurocompileError

Field = Callable[[float, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SeriesSettings:
    """Sampling of a generated series: ``n_samples`` kept every ``dt`` after ``transient`` dropped ones."""

    n_samples: int = 4000
    dt: float = 0.02
    transient: int = 500
    seed: int = 0
    rtol: float = 1e-10
    atol: float = 1e-10

    def __post_init__(self) -> None:
        if not (isinstance(self.n_samples, int) and self.n_samples >= 2):
            raise NeurocompileError(f"n_samples {self.n_samples!r} must be an integer of at least 2")
        if not (isinstance(self.transient, int) and self.transient >= 0):
            raise NeurocompileError(f"transient {self.transient!r} must be a non-negative integer")
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise NeurocompileError(f"dt {self.dt!r} must be a positive finite number")


@dataclass(frozen=True, eq=False)
class Series:
    """A sampled trajectory (n_samples, 3), raw units, with what made it: ``x0`` at time 0, first kept sample at ``transient · dt``."""

    name: str
    values: np.ndarray
    x0: np.ndarray
    settings: SeriesSettings


def lorenz_field(sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0) -> Field:
    """dx/dt of the Lorenz system (classic chaotic parameters by default)."""

    def f(t: float, s: np.ndarray) -> np.ndarray:
        x, y, z = s
        return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])

    return f


def rossler_field(a: float = 0.2, b: float = 0.2, c: float = 5.7) -> Field:
    """dx/dt of the Rössler system (classic chaotic parameters by default)."""

    def f(t: float, s: np.ndarray) -> np.ndarray:
        x, y, z = s
        return np.array([-y - z, x + a * y, b + z * (x - c)])

    return f


def integrate(field: Field, x0: np.ndarray, n_samples: int, dt: float, rtol: float = 1e-10, atol: float = 1e-10) -> np.ndarray:
    """``n_samples`` states (n_samples, dim) at times ``0, dt, 2 dt, ...`` starting from ``x0``."""
    t = np.arange(n_samples) * dt
    sol = solve_ivp(field, (0.0, t[-1]), np.asarray(x0, dtype=np.float64), method="DOP853", t_eval=t, rtol=rtol, atol=atol)
    if not sol.success:  # pragma: no cover - DOP853 on these smooth fields does not fail
        raise NeurocompileError(f"integration failed: {sol.message}")
    return sol.y.T


def _generate(name: str, field: Field, centre: np.ndarray, settings: SeriesSettings) -> Series:
    rng = np.random.default_rng(settings.seed)
    x0 = centre + rng.normal(0.0, 1.0, 3)
    s = settings
    values = integrate(field, x0, s.transient + s.n_samples, s.dt, s.rtol, s.atol)[s.transient:]
    return Series(name, values, x0, settings)


def lorenz(settings: SeriesSettings = SeriesSettings()) -> Series:
    """The Lorenz system sampled as ``settings`` say; x0 ~ (0, 1, 25) + N(0, 1) per component (seeded)."""
    return _generate("lorenz", lorenz_field(), np.array([0.0, 1.0, 25.0]), settings)


def rossler(settings: SeriesSettings = SeriesSettings(dt=0.1)) -> Series:
    """The Rössler system (slower: default ``dt = 0.1``); x0 ~ (1, 1, 0) + N(0, 1) per component (seeded)."""
    return _generate("rossler", rossler_field(), np.array([1.0, 1.0, 0.0]), settings)
