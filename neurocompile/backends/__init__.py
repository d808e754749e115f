"""Execution backends, found through the ``neurocompile.backends`` entry point group.

The built-in ``reference`` backend (:mod:`neurocompile.backends.reference`) is
registered exactly the way a third party's would be (see ``pyproject.toml``),
so nothing here special-cases it. Backends sit above the simulators: they
adapt a simulator (or a foreign runtime) to the :class:`Backend` protocol,
and nothing below imports them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Optional, Protocol, runtime_checkable

import numpy as np

from ..errors import NeurocompileError
from ..ir import Network

GROUP = "neurocompile.backends"


@dataclass
class RunResult:
    """What one backend run of a quantised network produced.

    ``readout``: (samples, n_out) integers (int32 or int64, exact), the readout population's ``v`` at the
    last step of each sample's period (before the decoder adds ``T * bias``).
    ``spike_counts``: per spiking population, (samples, neurons) integer spike counts.
    ``spike_trains``: only when asked for (``record=True``): per spiking
    population, (samples, period, neurons) bool. ``final_state``: where the
    backend can report it, every population's (u, v) after the run's last step.
    """

    readout: np.ndarray
    spike_counts: dict[str, np.ndarray]
    wall_s: float
    steps: int
    platform: str
    spike_trains: dict[str, np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)
    final_state: dict[str, np.ndarray] | None = None  # per population, (2, neurons): u and v after the last step


@runtime_checkable
class Backend(Protocol):
    name: str

    def available(self) -> tuple[bool, str]:
        """(usable here?, a one-line reason/description)."""

    def run(self, net: Network, frames: np.ndarray, *, record: bool = False, timeout_s: float | None = None) -> RunResult:
        """Run ``net`` (quantised) on ``frames``: (samples, period, n_in) int payloads.

        Frame ``t`` of a sample is what the input population emits on step
        ``t + 1`` of that sample's period (see ``neurocompile.ir``).
        """

    def describe(self, net: Network, frames: Optional[np.ndarray] = None) -> list[dict] | None:
        """What ``net`` becomes on this backend, one dict per process class, or None when there is nothing to say.

        Each dict has ``process``, ``module``, ``count``, ``stock_loihi2`` (would
        it run on an unmodified Loihi 2) and a one-paragraph ``note``; the report
        shows them under the cross-check stage. ``frames`` (as for :meth:`run`)
        may decide details such as binary vs graded input.
        """


def available_backends() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def get_backend(name: str) -> Backend:
    eps = available_backends()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        hint = " (install it with `pip install -e backends/lava` and requirements-lava.txt)" if name == "lava" else ""
        raise NeurocompileError(f"unknown backend {name!r}{hint}; installed backends: {known}")
    try:
        cls = eps[name].load()
    except ImportError as e:
        raise NeurocompileError(f"backend {name!r} is installed but cannot be imported: {e}") from None
    return cls()
