"""Ridge regression readouts, closed form, with the penalty chosen on a validation split.

One SVD of the centred training features serves every penalty of the sweep:
``W = V diag(s / (s² + α)) Uᵀ Y``; the intercept is not penalised (features and
targets are centred first), so it maps to the readout's decoder bias.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import NeurocompileError

DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-4, 3, 8))


@dataclass(frozen=True, eq=False)
class RidgeReadout:
    """``prediction = X @ weight.T + bias``; ``weight`` (d_out, n_features)."""

    weight: np.ndarray
    bias: np.ndarray
    alpha: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.weight.T + self.bias


class _CentredSVD:
    """The training data's SVD, kept for solving at many penalties."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) < 2:
            raise NeurocompileError(f"ridge needs features (N, n) and targets (N, d) with N >= 2, got {x.shape} and {y.shape}")
        self.x_mean, self.y_mean = x.mean(0), y.mean(0)
        self.u, self.s, vt = np.linalg.svd(x - self.x_mean, full_matrices=False)
        self.v = vt.T
        self.uty = self.u.T @ (y - self.y_mean)

    def solve(self, alpha: float) -> RidgeReadout:
        if not (np.isfinite(alpha) and alpha >= 0):
            raise NeurocompileError(f"ridge penalty {alpha!r} must be a non-negative finite number")
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(self.s > 0, self.s / (self.s**2 + alpha), 0.0)
        w = (self.v * d) @ self.uty  # (n, d_out)
        return RidgeReadout(weight=w.T.copy(), bias=self.y_mean - self.x_mean @ w, alpha=float(alpha))


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> RidgeReadout:
    """Minimise ``|x W^T + b - y|² + alpha |W|²`` over W and b (b unpenalised)."""
    return _CentredSVD(x, y).solve(alpha)


def select_ridge(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 loss: Callable[[np.ndarray, np.ndarray], float], alphas: Sequence[float] = DEFAULT_ALPHAS,
                 ) -> tuple[RidgeReadout, dict[float, float]]:
    """The fit on the training rows whose ``loss(prediction, y_val)`` (lower is better) is least.

    Returns it with every penalty's validation loss; ties go to the larger penalty (the smoother fit).
    """
    if not alphas:
        raise NeurocompileError("give at least one ridge penalty")
    svd = _CentredSVD(x_train, y_train)
    fits = {float(a): svd.solve(float(a)) for a in alphas}
    scores = {a: float(loss(r.predict(x_val), y_val)) for a, r in fits.items()}
    best = min(sorted(scores, reverse=True), key=lambda a: scores[a])
    return fits[best], scores
