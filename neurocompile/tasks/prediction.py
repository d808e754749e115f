"""k-step-ahead prediction of a generated series, split in time.

The network reads the whole normalised series as one stream (frame ``t`` is
sample ``t``) and, at each step, predicts sample ``t + horizon`` from samples
``0..t``. Rows ``t < washout`` are never scored (the network's state is still
forgetting its zero start); the remaining rows are split chronologically into
train, validation and test, so no test target lies before a training one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import NeurocompileError
from .systems import Series

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class PredictionTask:
    """``inputs`` (L, d_in) normalised stream; ``targets[t]`` = the normalised components to predict at ``t + horizon``.

    ``rows[split]``: the indices t scored in each split. ``mean``/``std``: the
    normalisation of every component (from the training rows), to undo it.
    """

    name: str
    inputs: np.ndarray
    targets: np.ndarray
    horizon: int
    rows: dict[str, np.ndarray]
    mean: np.ndarray
    std: np.ndarray
    target_components: tuple[int, ...]

    @property
    def n_in(self) -> int:
        return self.inputs.shape[1]

    @property
    def n_out(self) -> int:
        return self.targets.shape[1]

    def persistence(self, split: Split) -> np.ndarray:
        """The trivial forecast "nothing changes": sample t's target components as the prediction for t + horizon."""
        return self.inputs[self.rows[split]][:, list(self.target_components)]  # inputs hold every component

    def windows(self, split: Split, length: int, washout: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Overlapping-free windows for training through time: inputs (N, length, d_in), targets (N, length, d_out).

        Each window starts ``washout`` samples before its first scored row, so the
        third value is the number of leading steps of every window not to score.
        """
        rows = self.rows[split]
        if length <= washout:
            raise NeurocompileError(f"window length {length} must exceed its washout {washout}")
        step = length - washout
        starts = np.arange(rows[0] - washout, rows[-1] - length + 2, step)
        starts = starts[starts >= 0]
        if len(starts) == 0:
            raise NeurocompileError(f"the {split} split ({len(rows)} rows) is shorter than one window of {length}")
        idx = starts[:, None] + np.arange(length)
        return self.inputs[idx], self.targets[idx], washout


def make_prediction_task(series: Series, horizon: int = 1, washout: int = 100,
                         fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
                         target_components: tuple[int, ...] = (0, 1, 2)) -> PredictionTask:
    """Predict ``target_components`` of ``series`` ``horizon`` samples ahead from all its components so far.

    Every component is z-scored with the mean and standard deviation of the training rows.
    """
    values = series.values
    L, d = values.shape
    if not (isinstance(horizon, int) and 1 <= horizon < L):
        raise NeurocompileError(f"horizon {horizon!r} must be an integer in [1, {L})")
    if not all(isinstance(c, int) and 0 <= c < d for c in target_components) or not target_components:
        raise NeurocompileError(f"target components {target_components!r} must be indices in [0, {d})")
    if len(fractions) != 3 or min(fractions) <= 0 or not np.isclose(sum(fractions), 1.0):
        raise NeurocompileError(f"split fractions {fractions!r} must be three positive numbers summing to 1")
    scored = np.arange(washout, L - horizon)
    if len(scored) < 10:
        raise NeurocompileError(f"{L} samples leave {len(scored)} rows after the washout {washout} and horizon {horizon}")
    cut1 = int(round(fractions[0] * len(scored)))
    cut2 = cut1 + int(round(fractions[1] * len(scored)))
    rows = {"train": scored[:cut1], "val": scored[cut1:cut2], "test": scored[cut2:]}
    train_span = values[: rows["train"][-1] + horizon + 1]
    mean, std = train_span.mean(0), train_span.std(0)
    z = (values - mean) / std
    targets = np.full((L, len(target_components)), np.nan)
    targets[: L - horizon] = z[horizon:, list(target_components)]
    return PredictionTask(series.name, z, targets, horizon, rows, mean, std, tuple(target_components))
