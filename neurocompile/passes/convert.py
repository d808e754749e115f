"""ANN → SNN conversion: threshold balancing, reset by subtraction (Rathi et al., ICLR 2020).

A spike of population l stands for activation λ_l (its threshold), so every
projection's weights are multiplied by its source's λ and each spiking
population gets threshold λ_l; rates then approximate ANN activations / λ.
λ_l comes from the ANN's activations on calibration data: their maximum, or
the more robust 99.9th percentile (Rueckauer et al. 2017, SNN Toolbox), which
is the default because it measured better here (see README, bench/).
The input population emits values in [0, 1] (direct) or Bernoulli spikes
with that probability (rate), so its λ is 1.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import torch

from ..errors import NeurocompileError
from ..ir import ConversionRecord, Network
from ..sim.ann import ann_forward
from ..sim.encoding import ENCODINGS
from .base import IS_ANN, network_pass

ThresholdMethod = Literal["percentile", "max"]
METHODS = ("percentile", "max")


def activation_scales(net: Network, x_calib: np.ndarray, method: str = "percentile", percentile: float = 99.9) -> dict[str, float]:
    """λ per spiking population from ANN activations on calibration samples."""
    if method not in METHODS:
        raise NeurocompileError(f"unknown threshold method {method!r}; accepted: {', '.join(METHODS)}")
    acts = ann_forward(net, torch.as_tensor(np.asarray(x_calib)))
    lam = {net.input: 1.0}
    for pop in net.neurons:
        if pop.kind != "spiking":
            continue
        a = acts[pop.name].flatten()
        a = a[a > 0]
        if a.numel() == 0:
            lam[pop.name] = 1.0  # a dead layer: any threshold keeps it silent
            continue
        value = a.max() if method == "max" else torch.quantile(a[torch.randperm(a.numel(), generator=torch.Generator().manual_seed(0))[:1_000_000]], percentile / 100)
        lam[pop.name] = float(value)
    return lam


@network_pass(IS_ANN)
def convert(
    net: Network,
    x_calib: np.ndarray,
    *,
    timesteps: int,
    encoding: str = "direct",
    method: str = "percentile",
    percentile: float = 99.9,
    threshold_scale: float = 1.0,
) -> Network:
    """The IR with thresholds set and weights rescaled for integrate-and-fire neurons."""
    if encoding not in ENCODINGS:
        raise NeurocompileError(f"unknown input encoding {encoding!r}; accepted: {', '.join(ENCODINGS)}")
    if timesteps < 1:
        raise NeurocompileError(f"--timesteps must be ≥ 1 (got {timesteps})")
    lam = activation_scales(net, x_calib, method, percentile)
    projections = tuple(dataclasses.replace(pr, weight=pr.weight * lam[pr.source]) for pr in net.projections)
    populations = tuple(
        dataclasses.replace(p, threshold=lam[p.name] * threshold_scale, reset="subtract") if p.kind == "spiking" else p
        for p in net.populations
    )
    record = ConversionRecord(
        threshold_method=method if method == "max" else f"percentile {percentile:g}",
        threshold_scale=float(threshold_scale),
        activation_scales={k: float(v) for k, v in lam.items()},
    )
    return net.replace(populations=populations, projections=projections, conversion=record, fixed=None,
                       settings=dataclasses.replace(net.settings, timesteps=int(timesteps), encoding=encoding))
