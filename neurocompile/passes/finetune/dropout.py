"""Dropout for spiking networks: one mask per sample and neuron, fixed over the whole period.

A fresh mask every step would average out over T steps and regularise
little; the authors (Rathi et al. 2020) draw one mask per sample and reuse it
on every step, so a dropped neuron is absent for the whole sample. The mask
scales what a spiking population *sends* (kept spikes by 1/(1 - p), as
inverted dropout does); its own membrane and reset are untouched, so a dropped
neuron keeps the dynamics it would have. Masks depend only on (seed, epoch,
sample index): the same whatever the batch, the process or the world size.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from ...sim.float_sim import FloatSimulator

__all__ = ["sample_masks", "dropout_applied"]


def sample_masks(sim: FloatSimulator, p: float, seed: int, epoch: int, indices: Sequence[int],
                 device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """Per spiking population, (B, n) masks in {0, 1/(1-p)} for the samples ``indices``."""
    pops = [q for q in sim.neurons if q.kind == "spiking"]
    total = sum(q.size for q in pops)
    rows = []
    for i in indices:
        g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 100_003 + int(i))
        rows.append(torch.rand(total, generator=g) >= p)
    keep = torch.stack(rows).to(sim.neurons[0].threshold.dtype) / (1 - p)
    keep = keep.to(device) if device is not None else keep
    return dict(zip((q.name for q in pops), keep.split([q.size for q in pops], dim=1)))


@contextmanager
def dropout_applied(sim: FloatSimulator, masks: dict[str, torch.Tensor]) -> Iterator[None]:
    """Inside: every projection out of a masked population delivers its source's spikes times the mask."""
    previous = sim.source_scale
    sim.source_scale = dict(masks)
    try:
        yield
    finally:
        sim.source_scale = previous
