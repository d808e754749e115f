"""How a real-valued series reaches the network: direct (graded) input.

The input population emits ``gain · x[t] + offset`` at step t, one input per
component: an analog current in float, a graded spike payload on Loihi 2 (as the
``direct`` encoding of ``sim/encoding.py`` for images). No rate or temporal code:
one step per sample keeps the network's timescales (τ in steps) tied to the
series' own, and the random-signed input weights turn each component into
excitatory and inhibitory drive alike, so negative values need no extra channel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class DirectEncoding:
    """Frame ``t`` = ``gain · x[t] + offset``, per component."""

    gain: float = 1.0
    offset: float = 0.0

    def __call__(self, x: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(T, d) or (B, T, d) values → (B, T, d) frames."""
        a = np.asarray(x, dtype=np.float64)
        if a.ndim == 2:
            a = a[None]
        return torch.as_tensor(self.gain * a + self.offset).to(dtype)
