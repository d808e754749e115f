"""Input encodings: what the input population emits on each step of a period.

``direct``: the pixel value itself every step (an analog current in float; an
8-bit graded spike payload ``round(x · levels)`` in fixed point).
``rate``: a Bernoulli spike with probability x per step (Rathi et al. use
Poisson/Bernoulli input). Each sample's random stream is seeded from
``(seed, sample index)``, so any subset of samples, in any batch, on any
backend, sees the same spikes.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..errors import NeurocompileError

Encoding = Literal["direct", "rate"]
ENCODINGS = ("direct", "rate")
DIRECT_LEVELS = 255  # 8-bit graded payload for direct input in fixed point


def encode(x: np.ndarray | torch.Tensor, encoding: str, period: int, *, fixed: bool, seed: int = 0, first_index: int = 0) -> torch.Tensor:
    """(B, ...) samples in [0, 1] → (B, period, n_in) frames (int64 payloads when ``fixed``)."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64).reshape(len(x), -1).clamp(0, 1)
    B, n = x.shape
    if encoding == "direct":
        if fixed:
            return torch.round(x * DIRECT_LEVELS).to(torch.int64)[:, None, :].expand(B, period, n)
        return x.to(torch.float32)[:, None, :].expand(B, period, n)
    if encoding == "rate":
        frames = torch.empty(B, period, n, dtype=torch.int64 if fixed else torch.float32)
        for i in range(B):
            g = torch.Generator().manual_seed(seed * 1_000_003 + first_index + i)
            frames[i] = (torch.rand(period, n, generator=g, dtype=torch.float64) < x[i]).to(frames.dtype)
        return frames
    raise NeurocompileError(f"unknown input encoding {encoding!r}; accepted: {', '.join(ENCODINGS)}")


def input_scale(encoding: str, fixed: bool) -> float:
    """Float value represented by one unit of input payload."""
    return 1.0 / DIRECT_LEVELS if (encoding == "direct" and fixed) else 1.0
