"""Generated tasks for recurrent SNNs: chaotic series prediction and sequential image classification."""
from __future__ import annotations

from .encoding import DirectEncoding
from .metrics import accuracy, nrmse
from .prediction import PredictionTask, make_prediction_task
from .ridge import RidgeReadout, fit_ridge, select_ridge
from .sequences import ClassificationTask, sequential_digits, sequential_mnist
from .systems import Series, SeriesSettings, integrate, lorenz, rossler
from .training import EndToEndSettings, ReadoutSettings, TrainingResult, train_end_to_end, train_readout

__all__ = [
    "ClassificationTask", "DirectEncoding", "EndToEndSettings", "PredictionTask", "ReadoutSettings", "RidgeReadout",
    "Series", "SeriesSettings", "TrainingResult", "accuracy", "fit_ridge", "integrate", "lorenz", "make_prediction_task",
    "nrmse", "rossler", "select_ridge", "sequential_digits", "sequential_mnist", "train_end_to_end", "train_readout",
]
