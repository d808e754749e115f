"""Iterative time-step reduction: fine-tune at larger T first, then at the target T from that network.

Why: a network converted for T = 1 is silent -- threshold balancing sets the
thresholds for firing *rates*, which one step cannot reach -- so the surrogate
gradient is zero everywhere and fine-tuning cannot start (MNIST CNN: 10 % after
6 epochs). Starting T = 1 from the network fine-tuned at T = 2 (the reduction
Chowdhury, Rathi & Roy use to reach one time step, "One Timestep is All You
Need", 2021) trains: 97.75 % bit-exact at T = 1 (ANN 98.40 %; bench/latency_accuracy.py
--progressive). Each stage is an ordinary :func:`~.loop.finetune` call with its
own checkpoint folder, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ...errors import NeurocompileError
from ...ir import Network
from .loop import FinetuneResult, finetune
from .settings import FinetuneSettings


def warm_start_timesteps(timesteps: int) -> tuple[int, ...]:
    """The larger T to fine-tune at first by default: (2,) for T = 1 (a converted network is silent there), else none."""
    return (2,) if timesteps == 1 else ()


def check_via(via: tuple[int, ...], timesteps: int) -> tuple[int, ...]:
    """``via`` as distinct T, largest first, each above the target ``timesteps``, or a one-line error."""
    if not isinstance(via, (tuple, list)):
        raise NeurocompileError(f"fine-tuning warm-start steps are a list of whole numbers above T={timesteps}, e.g. (4, 2) (got {via!r})")
    if any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t <= timesteps for t in via):
        raise NeurocompileError(f"fine-tuning warm-start steps must be whole numbers above the target T={timesteps} (got {list(via)})")
    return tuple(sorted({int(t) for t in via}, reverse=True))


def finetune_progressively(net: Network, train_data, val_data, settings: FinetuneSettings, *, via: tuple[int, ...],
                           checkpoint_dir: str | Path | None = None, progress: bool = True) -> FinetuneResult:
    """Fine-tune at each T of ``via`` (largest first, ``settings.epochs`` each, no quantisation-aware epochs:
    only the last stage's network is quantised), then at ``settings.timesteps`` from the previous stage's network.

    ``via`` empty: plain :func:`~.loop.finetune` with ``checkpoint_dir`` as is; otherwise each
    stage checkpoints in ``checkpoint_dir/T<n>``. Returns the last stage's result.
    """
    via = check_via(via, settings.timesteps)
    if not via:
        return finetune(net, train_data, val_data, settings, checkpoint_dir=checkpoint_dir, progress=progress)
    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    for T in via:
        warm = dataclasses.replace(settings, timesteps=T, quant_aware_epochs=0)
        net = finetune(net, train_data, val_data, warm, checkpoint_dir=None if folder is None else folder / f"T{T}",
                       progress=progress).network
    return finetune(net, train_data, val_data, settings, progress=progress,
                    checkpoint_dir=None if folder is None else folder / f"T{settings.timesteps}")
