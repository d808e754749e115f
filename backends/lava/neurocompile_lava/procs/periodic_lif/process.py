"""PeriodicLIF: the neuron process of a lowered neurocompile population.

Stock Lava LIF cannot express the IR's semantics (``neurocompile.ir``):
it only resets ``v`` to 0 after a spike, has no per-sample reset, and reading
its state back through ``Var.get()`` costs ~40 µs per value. PeriodicLIF keeps
LIF's variables, units and sub-threshold arithmetic (its models derive from
Lava's abstract LIF models) and adds:

* a period ``P``: on the first step of every period (``(t - 1) % P == 0``)
  ``u`` and ``v`` are zeroed, the synaptic input is received but discarded, and
  no spike is sent -- one sample per period, all samples in one run;
* ``reset_mode`` ``"subtract"`` (``v -= vth << 6`` after a spike) or ``"zero"``;
* ``readout=True``: the neuron never fires;
* records written with ``np.save`` into ``record_dir`` at the last step
  (``t == P * num_periods``): per-period spike counts, ``v`` at the last step
  of every period when ``record_v`` (the network's output) and, when
  ``record_trains``, the full spike train.

Static configuration travels in ``proc_params`` (not Vars): it never changes
during a run, and scalar Vars cannot be safely ``set()`` in Lava 0.10 anyway.
"""
from __future__ import annotations

import typing as ty

import numpy as np

from neurocompile_lava import compat

compat.install()

from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402

ResetMode = ty.Literal["subtract", "zero"]


def _param_shape(value, shape: tuple[int, ...]) -> tuple[int, ...]:
    """(1,) for one value shared by all neurons (Lava LIF's own shape), ``shape`` for one per neuron."""
    if np.ndim(value) == 0 or np.size(value) == 1:
        return (1,)
    if np.shape(value) != tuple(shape):
        raise ValueError(f"a per-neuron parameter has shape {np.shape(value)}, the process {tuple(shape)}")
    return tuple(shape)


class PeriodicLIF(AbstractProcess):
    """LIF neurons that reset per sample period, count their spikes and save records.

    Parameters use Lava LIF's units: in the fixed-point model ``du``, ``dv``
    are 12-bit decays, the threshold is ``vth << 6`` and the bias is
    ``bias_mant << bias_exp``; in the floating-point model ``du``, ``dv`` are
    fractions, ``vth`` is the threshold and ``bias_mant`` the bias
    (``bias_exp`` ignored), exactly as for ``lava.proc.lif.process.LIF``.
    """

    def __init__(
        self,
        *,
        shape: tuple[int, ...],
        du: float | np.ndarray,
        dv: float | np.ndarray,
        bias_mant: np.ndarray | float,
        bias_exp: np.ndarray | float,
        vth: float | np.ndarray,
        period: int,
        num_periods: int,
        reset_mode: ResetMode = "subtract",
        readout: bool = False,
        record_v: bool = False,
        record_dir: str | None = None,
        label: str = "lif",
        record_trains: bool = False,
        name: str | None = None,
    ) -> None:
        if period < 1 or num_periods < 1:
            raise ValueError("period and num_periods must be >= 1")
        if reset_mode not in ("subtract", "zero"):
            raise ValueError(f"reset_mode must be 'subtract' or 'zero', not {reset_mode!r}")
        super().__init__(
            shape=shape,
            period=int(period),
            num_periods=int(num_periods),
            reset_mode=reset_mode,
            readout=bool(readout),
            record_v=bool(record_v),
            record_dir=record_dir,
            label=label,
            record_trains=bool(record_trains),
            name=name,
        )
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        # du, dv and vth: one value, or one per neuron (heterogeneous time constants and thresholds)
        self.du = Var(shape=_param_shape(du, shape), init=du)
        self.dv = Var(shape=_param_shape(dv, shape), init=dv)
        self.bias_mant = Var(shape=shape, init=bias_mant)
        self.bias_exp = Var(shape=shape, init=bias_exp)
        self.vth = Var(shape=_param_shape(vth, shape), init=vth)
