"""The ``reference`` backend: the fixed-point engine (:mod:`neurocompile.sim.engine`), batched, no Lava needed.

It lives with the backends, not the simulators, because it adapts the
engine to the :class:`~neurocompile.backends.Backend` protocol: simulators
depend on the IR only and never see the registry.
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch

from ..ir import Network
from ..sim import native
from ..sim.engine import simulate
from . import RunResult


class ReferenceBackend:
    name = "reference"
    batch_size = 256

    def available(self) -> tuple[bool, str]:
        return True, f"bit-exact Lava fixed-point semantics in torch {torch.__version__} (CPU, batched; neurons: {native.status()})"

    def describe(self, net: Network, frames: Optional[np.ndarray] = None) -> list[dict] | None:
        """Nothing to describe: the engine runs the IR itself, with no processes to lower to."""
        return None

    def run(self, net: Network, frames: np.ndarray, *, record: bool = False, timeout_s: float | None = None) -> RunResult:
        t0 = time.perf_counter()
        frames = torch.as_tensor(np.asarray(frames))
        parts = [simulate(net, frames[i : i + self.batch_size], "fixed", record=record) for i in range(0, len(frames), self.batch_size)]
        cat = lambda key: {k: torch.cat([getattr(p, key)[k] for p in parts]).numpy() for k in getattr(parts[0], key)}
        return RunResult(
            readout=torch.cat([p.readout for p in parts]).numpy(),
            spike_counts=cat("spike_counts"),
            spike_trains=cat("spike_trains") if record else None,
            wall_s=time.perf_counter() - t0,
            steps=int(frames.shape[0] * frames.shape[1]),
            platform=self.available()[1],
            final_state={k: torch.stack([u[-1], v[-1]]).numpy() for k, (u, v) in parts[-1].state.items()},
        )
