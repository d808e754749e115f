"""SpikeRecorder: the spike probe of a stock-lowered (pipelined) population.

A stock ``LIFReset`` keeps no records, and Lava's own sink
(``lava.proc.io.sink.RingBuffer``) is read back with ``Var.get()``, ~26 k
values per second: minutes for the spike trains of a convolutional layer. This
process takes the population's ``s_out`` like that sink does, counts spikes per
sample *window* (the population's steps ``window + n·P .. window + (n+1)·P - 1``,
``neurocompile.ir`` pipelined schedule) and writes the records with ``np.save``
at the last step, in the format PeriodicLIF writes (``neurocompile_lava.records``).
It is a host process (Python model only): on a chip it stands where a spike
probe would, and the neurons it listens to stay stock.
"""
from __future__ import annotations

from neurocompile_lava import compat

compat.install()

from lava.magma.core.process.ports.ports import InPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402


class SpikeRecorder(AbstractProcess):
    """Counts (and optionally keeps) the spikes of ``shape`` neurons per window of ``period`` steps starting at ``window``."""

    def __init__(self, *, shape: tuple[int, ...], period: int, num_periods: int, window: int, record_dir: str,
                 label: str, record_trains: bool = False, name: str | None = None) -> None:
        if period < 1 or num_periods < 1 or window < 0:
            raise ValueError("period and num_periods must be >= 1 and window >= 0")
        super().__init__(shape=shape, period=int(period), num_periods=int(num_periods), window=int(window),
                         record_dir=record_dir, label=label, record_trains=bool(record_trains), name=name)
        self.a_in = InPort(shape=shape)
