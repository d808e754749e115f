"""ProcessModels of :class:`SpikeRecorder` (fixed and floating point differ only in the port's type)."""
from __future__ import annotations

import numpy as np

from neurocompile_lava import compat

compat.install()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

from neurocompile_lava.procs.spike_recorder.process import SpikeRecorder  # noqa: E402
from neurocompile_lava.records import Records  # noqa: E402


class _Recording(PyLoihiProcessModel):
    """Step ``t`` (Lava's ``time_step``) is step ``t - window`` of the population's windows; the rest is ignored."""

    a_in = None

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = self.proc_params
        self.window: int = p["window"]
        self._records = Records(int(np.prod(p["shape"])), p["period"], p["num_periods"], counts=True, v=False,
                                trains=p["record_trains"], v_dtype=np.int32)

    def run_spk(self) -> None:
        spikes = self.a_in.recv()
        step = self.time_step - self.window
        if 1 <= step <= self._records.total_steps:
            self._records.note(step, spikes.astype(bool), spikes)
        if step == self._records.total_steps:
            self._records.save(self.proc_params["record_dir"], self.proc_params["label"])


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PySpikeRecorderFixed(_Recording):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeRecorderFloat(_Recording):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
