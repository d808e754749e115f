"""Surrogate gradients for fine-tuning converted networks (Rathi et al., ICLR 2020).

Both are :class:`~neurocompile.sim.float_sim.SurrogateSpike` subclasses: Heaviside
forward, so what is trained fires exactly as the chip will, and a pseudo-derivative
backward. With ``normalize`` (the default) ``z = v / V_th - 1``, the authors'
``mem_thr``, so one surrogate suits layers whose thresholds differ by orders of
magnitude; the gradient reaching ``v`` is ``derivative(z) / V_th``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ...errors import NeurocompileError
from ...sim.float_sim import SurrogateSpike

__all__ = ["StdbSurrogate", "LinearSurrogate", "SURROGATES", "make_surrogate"]


@dataclass(frozen=True)
class StdbSurrogate(SurrogateSpike):
    """Spike-timing-dependent backprop: ``ds/dz = alpha · exp(-beta · Δt)``.

    ``Δt`` is each neuron's steps since its last spike in the current period
    (the simulator's ``since_spike``), so one that fired recently gets the most.
    A neuron that has not fired yet in this period counts as having fired
    ``never`` steps ago: the authors start every last-spike time 1000 steps in
    the past, which gives it ``alpha · e^-10`` ≈ 0 — but not zero, and Adam
    scales gradients per parameter, so silent layers still learn (with exactly
    zero they never start firing at small T). ``never=inf`` gives exactly zero.
    The paper's defaults are alpha = 0.3, beta = 0.01 (ResNets: 0.5, 0.035).
    """

    alpha: float = 0.3
    beta: float = 0.01
    never: float = 1000.0
    uses_spike_time: ClassVar[bool] = True

    def derivative(self, z: torch.Tensor, since_spike: torch.Tensor | None) -> torch.Tensor:
        if since_spike is None:  # only a caller bypassing the simulator gets here
            raise NeurocompileError("the STDB surrogate needs each neuron's time since its last spike")
        dt = since_spike.clamp(max=self.never)  # inf (never fired) → ``never``
        if self.beta == 0:  # no decay with time; 0 · inf would be NaN where never = inf
            return torch.isfinite(dt).to(z.dtype).mul_(self.alpha)
        return torch.exp(dt * -self.beta).mul_(self.alpha).to(z.dtype)

    def surrogate_grad(self, grad: torch.Tensor, x: torch.Tensor, width: torch.Tensor,
                       since_spike: torch.Tensor | None) -> torch.Tensor:
        # independent of the membrane: skip the x / width pass of the generic form
        return self.derivative(x, since_spike).mul_(grad).div_(width)


@dataclass(frozen=True)
class LinearSurrogate(SurrogateSpike):
    """The triangle ``ds/dz = gamma · max(0, 1 - |z|)`` of the authors' code, with ``z = v / V_th - 1``.

    Offered because STDB can be unstable (the authors' warning): this one is
    zero for neurons far from threshold rather than for neurons that are silent.
    """

    gamma: float = 0.3

    def derivative(self, z: torch.Tensor, since_spike: torch.Tensor | None) -> torch.Tensor:
        return (1 - z.abs()).clamp_(min=0).mul_(self.gamma)


SURROGATES: dict[str, type[SurrogateSpike]] = {"stdb": StdbSurrogate, "linear": LinearSurrogate}


def make_surrogate(name: str, **params: float) -> SurrogateSpike:
    """The surrogate called ``name`` (a key of :data:`SURROGATES`) with its parameters."""
    try:
        cls = SURROGATES[name]
    except KeyError:
        raise NeurocompileError(f"unknown surrogate {name!r}; accepted: {', '.join(SURROGATES)}") from None
    return cls(**params)
