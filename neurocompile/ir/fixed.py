"""The fixed-point layer: what the quantize pass adds on top of the float graph.

Kept apart from the float parameters (NIR keeps one set of equations; a chip
runs integers) so that a pass that changes weights cannot leave stale integers
beside them: float passes drop this layer (``net.replace(fixed=None)``) or run
only before quantisation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import NeurocompileError



@dataclass(frozen=True)
class NeuronFixed:
    """Loihi-style fixed-point neuron parameters (Lava ``LIF`` names and units).

    ``v`` integrates ``u + bias_mant << bias_exp`` each step, where
    ``u = (u * (4096 - (du + 1))) >> 12 + (a_in << 6)``; a neuron fires when
    ``v > vth << 6``. ``vth``, ``du`` and ``dv`` are one integer for the whole
    population or an int64 vector with one per neuron.
    """

    vth: Any
    bias_mant: np.ndarray  # int64, one per neuron
    bias_exp: int
    du: Any = 4095  # 4095: u holds only this step's input (no synaptic current)
    dv: Any = 0  # 0: no membrane leak (integrate-and-fire)

    def uniform(self, name: str) -> bool:
        v = np.asarray(getattr(self, name))
        return v.ndim == 0 or v.size == 0 or bool(np.all(v == v.flat[0]))

    def scalar(self, name: str) -> int:
        """``name`` as one int; a NeurocompileError where it differs between neurons."""
        v = np.asarray(getattr(self, name))
        if not self.uniform(name):
            raise NeurocompileError(f"{name} differs between neurons; this step takes one value per population")
        return int(v.flat[0]) if v.size else 0


@dataclass(frozen=True)
class SynapseFixed:
    """One projection's integer weights: delivered current ``(weight @ s) << exp`` (``>>`` for negative exponents).

    ``weight`` has the projection's layout: (out, in) array, CSR matrix, or conv kernel.
    """

    weight: Any
    exp: int = 0


@dataclass(frozen=True)
class FixedPoint:
    """The integer parameters of every population and projection, and the format they were made for.

    ``format`` holds the target's widths (``neurocompile.target.FixedPointFormat``
    fields, as plain numbers so the IR need not know the target);
    ``v_units_per_float`` each population's scale σ (units of ``v`` per float unit).
    """

    neurons: dict[str, NeuronFixed]
    synapses: dict[str, SynapseFixed]
    format: dict[str, float] = field(default_factory=dict)
    v_units_per_float: dict[str, float] = field(default_factory=dict)

    def check_covers(self, populations: list[str], projections: list[str]) -> None:
        if set(self.neurons) != set(populations) or set(self.synapses) != set(projections):
            raise NeurocompileError("the fixed-point layer does not match the network's populations and projections; "
                                    "run `neurocompile quantize` again")
