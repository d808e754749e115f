"""ProcessModels of :class:`PeriodicLIF` (fixed point, bit-accurate; floating point).

Both derive from Lava's abstract LIF models so that the sub-threshold update is
Lava's own ``subthr_dynamics`` (not a re-implementation): the fixed-point
model therefore keeps Loihi's 24-bit ``u`` wrap, ``v`` saturation, round-toward-
zero decays and ``a_in << 6`` alignment bit for bit. Lava refuses to subclass
a model that already ``@implements`` a Process, so ``s_out`` and ``vth`` are
re-declared here as in ``PyLifModelBitAcc`` / ``PyLifModelFloat``.

What is added (period reset, readout, subtractive reset, records) lives in
:class:`_PeriodicBehaviour`, shared by both precisions; each model only says
how it integrates, what its threshold is, and how it resets.
"""
from __future__ import annotations

import numpy as np

from neurocompile_lava import compat

compat.install()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.ports import PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.lif.models import AbstractPyLifModelFixed, AbstractPyLifModelFloat  # noqa: E402

from neurocompile_lava.procs.periodic_lif.process import PeriodicLIF  # noqa: E402
from neurocompile_lava.records import Records  # noqa: E402


class _PeriodicBehaviour:
    """Period reset, readout, spike counting and records around a LIF update.

    Subclasses provide ``_integrate(a_in)``, ``_threshold()`` and
    ``_spike_dtype``; ``reset_voltage`` honours ``reset_mode``.
    """

    _spike_dtype: type
    _v_dtype: type

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        self.period: int = p["period"]
        self.num_periods: int = p["num_periods"]
        self.readout: bool = p["readout"]
        self.subtract: bool = p["reset_mode"] == "subtract"
        self._records: Records | None = None
        self._silence: np.ndarray | None = None

    def _integrate(self, a_in: np.ndarray) -> None:
        raise NotImplementedError

    def _threshold(self):
        raise NotImplementedError

    def reset_voltage(self, spike_vector: np.ndarray) -> None:
        if self.subtract:
            th = self._threshold()
            # one threshold per neuron (heterogeneous populations): each spiking neuron loses its own
            self.v[spike_vector] -= th[spike_vector] if np.size(th) > 1 else th
        else:
            self.v[spike_vector] = 0

    def run_spk(self) -> None:
        step = self.time_step
        if self._records is None:
            p = self.proc_params
            self._records = Records(
                self.v.size,
                self.period,
                self.num_periods,
                counts=not self.readout,
                v=p["record_v"],
                trains=p["record_trains"] and not self.readout,
                v_dtype=self._v_dtype,
            )
            self._silence = np.zeros(self.v.shape, self._spike_dtype)
        a_in = self.a_in.recv()  # always drained, even when discarded
        if (step - 1) % self.period == 0:  # reset step: new sample, drop in-flight input
            self.u[:] = 0
            self.v[:] = 0
            spikes = self._silence
        else:
            self._integrate(a_in)
            if self.readout:
                spikes = self._silence
            else:
                fired = self.v > self._threshold()
                self.reset_voltage(fired)
                spikes = fired
        self.s_out.send(spikes)
        self._records.note(step, spikes, self.v)
        if step == self._records.total_steps and self.proc_params["record_dir"]:
            self._records.save(self.proc_params["record_dir"], self.proc_params["label"], np.stack([self.u, self.v]))


@implements(proc=PeriodicLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyPeriodicLifModelFixed(_PeriodicBehaviour, AbstractPyLifModelFixed):
    """Bit-accurate: Lava's fixed-point LIF update, ``v > vth << 6`` spikes."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    _spike_dtype = np.int32
    _v_dtype = np.int32

    def scale_threshold(self) -> None:
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def _integrate(self, a_in: np.ndarray) -> None:
        # Same order as AbstractPyLifModelFixed.run_spk; bias and threshold
        # are constant here, so they are scaled once instead of every step.
        if not self.isbiasscaled:
            self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.subthr_dynamics(activation_in=a_in)

    def _threshold(self):
        return self.effective_vth


@implements(proc=PeriodicLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyPeriodicLifModelFloat(_PeriodicBehaviour, AbstractPyLifModelFloat):
    """Lava's float LIF conventions: ``u = u(1-du) + a_in``, ``v = v(1-dv) + u + bias_mant``, spike if ``v > vth``."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: float = LavaPyType(float, float)
    _spike_dtype = float
    _v_dtype = np.float64

    def _integrate(self, a_in: np.ndarray) -> None:
        self.subthr_dynamics(activation_in=a_in)

    def _threshold(self):
        return self.vth
