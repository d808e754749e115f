"""Sequential image classification: an image fed one row per step.

sklearn digits (8×8 → 8 steps of 8 inputs) and MNIST (28 steps of 28), from
``neurocompile.data`` (fixed, stratified, seeded splits); a validation split is
carved from the training part the same way. Pixels stay floats in [0, 1] and go
in as direct (graded) input: the network must integrate the rows over time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from ..data import Dataset, load_dataset
from ..errors import NeurocompileError


@dataclass(frozen=True, eq=False)
class ClassificationTask:
    """Sequences (N, T, n_in) float32 in [0, 1] and labels (N,) int64 per split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in ("train", "val", "test"):
            raise NeurocompileError(f"unknown split {name!r}; accepted: train, val, test")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    @property
    def n_in(self) -> int:
        return self.x_train.shape[2]

    @property
    def timesteps(self) -> int:
        return self.x_train.shape[1]


def rows_as_steps(images: np.ndarray) -> np.ndarray:
    """(N, 1, H, W) images → (N, H, W) sequences: row r is the input at step r."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise NeurocompileError(f"expected single-channel images (N, 1, H, W), got {images.shape}")
    return np.ascontiguousarray(images[:, 0], dtype=np.float32)


def sequence_task(data: Dataset, val_fraction: float = 0.2, seed: int = 0) -> ClassificationTask:
    """A row-per-step task from a data set; ``val_fraction`` of its training part (stratified) becomes validation."""
    if not 0 < val_fraction < 1:
        raise NeurocompileError(f"validation fraction {val_fraction!r} must be in (0, 1)")
    x_tr, x_val, y_tr, y_val = train_test_split(rows_as_steps(data.x_train), data.y_train, test_size=val_fraction,
                                                random_state=seed, stratify=data.y_train)
    return ClassificationTask(f"sequential-{data.name}", x_tr, y_tr, x_val, y_val, rows_as_steps(data.x_test),
                              data.y_test, data.num_classes)


def sequential_digits(seed: int = 0, val_fraction: float = 0.2) -> ClassificationTask:
    """sklearn digits as 8 steps of 8 pixels."""
    return sequence_task(load_dataset("digits", seed=seed), val_fraction, seed)


def sequential_mnist(seed: int = 0, val_fraction: float = 0.2) -> ClassificationTask:
    """The 10,000 MNIST digits of ``neurocompile.data`` as 28 steps of 28 pixels (fetched once, then cached)."""
    return sequence_task(load_dataset("mnist", seed=seed), val_fraction, seed)
