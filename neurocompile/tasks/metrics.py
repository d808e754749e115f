"""Scores of the generated tasks."""
from __future__ import annotations

import numpy as np

from ..errors import NeurocompileError


def nrmse(prediction: np.ndarray, target: np.ndarray) -> float:
    """Normalised root-mean-square error: RMSE over every entry / the target's standard deviation.

    For (N, d) targets the deviation is pooled over components, each about its own mean:
    ``sqrt(mean_c var_c)`` (ddof 0), so NRMSE² is the total squared error over the total
    variance; a constant prediction at the target's mean scores 1, a perfect one 0.
    """
    p, y = np.asarray(prediction, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if p.shape != y.shape or y.size == 0:
        raise NeurocompileError(f"prediction {p.shape} and target {y.shape} must have the same non-empty shape")
    y2 = y.reshape(len(y), -1)
    spread = np.sqrt(np.mean(np.var(y2, axis=0)))
    if spread == 0:
        raise NeurocompileError("the target is constant: its NRMSE is undefined")
    return float(np.sqrt(np.mean((p - y) ** 2)) / spread)


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows of ``scores`` (N, classes) whose arg-max is the label."""
    return float(np.mean(np.argmax(np.asarray(scores), axis=1) == np.asarray(labels)))
