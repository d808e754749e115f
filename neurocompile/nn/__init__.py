"""Recurrent heterogeneous spiking models (HRSNN, CHRSNN) in the chip's arithmetic, trainable in torch."""
from __future__ import annotations

from .arrays import LNPArrays, PopulationArrays, ProjectionArrays, RSNNArrays
from .config import CHRSNNConfig, HRSNNConfig, RSNNConfig
from .layers import LeakyReadout, LIFRun, RecurrentLIF
from .models import CHRSNN, HRSNN, RecurrentSNN, RSNNOutput
from .serialize import load_rsnn, save_rsnn
from .timescales import GammaTau, fraction_per_step

__all__ = [
    "CHRSNN", "CHRSNNConfig", "GammaTau", "HRSNN", "HRSNNConfig", "LIFRun", "LNPArrays", "LeakyReadout",
    "PopulationArrays", "ProjectionArrays", "RSNNArrays", "RSNNConfig", "RSNNOutput", "RecurrentLIF", "RecurrentSNN",
    "fraction_per_step", "load_rsnn", "save_rsnn",
]
