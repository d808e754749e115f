"""The fine-tuning pass: STDB fine-tuning (Rathi et al., ICLR 2020) of a converted network on the chip's schedule.

``finetune(net, (x, y), val, FinetuneSettings(...))`` trains a converted
network through the float simulator and returns the trained network and its
history (accuracy before and per epoch, for a report); :func:`finetune_network`
is the same as a pure pass (IR in, IR out, the input untouched). The modules
here: the surrogates (:mod:`.surrogates`), the loop (:mod:`.loop`) with its
checkpoints, distributed data parallelism, per-sample dropout masks, the
quantisation-aware forward and the threshold units it trains in, and
:mod:`.progressive` (fine-tuning at larger T first: how T = 1 trains at all).
"""
from __future__ import annotations

from pathlib import Path

from ...data import Dataset
from ...ir import Network
from ..base import IS_CONVERTED, NOT_QUANTIZED, network_pass
from .loop import EpochRecord, FinetuneResult, finetune
from .progressive import finetune_progressively, warm_start_timesteps
from .settings import FinetuneSettings
from .surrogates import LinearSurrogate, StdbSurrogate, make_surrogate

__all__ = ["EpochRecord", "FinetuneResult", "FinetuneSettings", "LinearSurrogate", "StdbSurrogate", "finetune",
           "finetune_network", "finetune_progressively", "make_surrogate", "warm_start_timesteps"]


@network_pass(IS_CONVERTED, NOT_QUANTIZED)
def finetune_network(net: Network, *, data: Dataset, settings: FinetuneSettings | None = None,
                     checkpoint_dir: str | Path | None = None, progress: bool = False,
                     validation_fraction: float = 0.1) -> Network:
    """``net`` fine-tuned on ``data``'s training split at ``settings.timesteps``.

    The last ``validation_fraction`` of the training split is held out and
    measured after each epoch; the test split is never seen.
    """
    settings = FinetuneSettings() if settings is None else settings
    (x, y), val = split_validation(data.x_train, data.y_train, validation_fraction)
    return finetune(net, (x, y), val, settings, checkpoint_dir=checkpoint_dir, progress=progress).network


def split_validation(x, y, fraction: float):
    """(train, validation) with the last ``fraction`` of the samples held out (None for 0)."""
    n_val = int(round(len(x) * fraction))
    if n_val == 0:
        return (x, y), None
    return (x[:-n_val], y[:-n_val]), (x[-n_val:], y[-n_val:])
