"""Turn a :class:`~neurocompile_lava.plan.LoweringPlan` into connected Lava processes.

All decisions (validation, Dense vs Sparse, message bits, neuron parameters)
are made in :mod:`neurocompile_lava.plan`; this module only instantiates and
wires, so it is the one place that needs Lava. Several projections into one
population are all connected to its ``a_in``: Lava's ``PyInPortVectorDense.recv``
sums the messages of every connected port.

Conv processes take (X, Y, C) arrays: their connections go through Lava's
virtual ports (reshape + transpose in, transpose + flatten out), which it
resolves when compiling.

The returned processes can be compiled and run exactly once (Lava 0.10).
Which processes a build uses and whether each runs on stock Loihi 2 is said
by the Lava-free :mod:`neurocompile_lava.describe`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

from neurocompile_lava import compat

compat.install()

from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.proc.conv.process import Conv  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.sink import Read  # noqa: E402
from lava.proc.io.source import RingBuffer  # noqa: E402
from lava.proc.lif.process import LIFReset  # noqa: E402
from lava.proc.sparse.process import Sparse  # noqa: E402

from neurocompile_lava.plan import READOUT_VTH, LoweringPlan, NeuronPlan, Precision, SynapsePlan  # noqa: E402
from neurocompile_lava.procs.periodic_lif.process import PeriodicLIF  # noqa: E402
from neurocompile_lava.procs.spike_recorder.process import SpikeRecorder  # noqa: E402
from neurocompile_lava.records import write_record  # noqa: E402

Connection = Union[Dense, Sparse, Conv]
Neuron = Union[PeriodicLIF, LIFReset]

# Lava's Conv works on (X, Y, C) = (W, H, C) arrays; the IR flattens (C, H, W) in C order
WHC = [2, 1, 0]


@dataclass
class LavaNetwork:
    plan: LoweringPlan
    source: RingBuffer
    neurons: dict[str, Neuron] = field(default_factory=dict)  # population name -> process
    connections: dict[str, Connection] = field(default_factory=dict)  # projection name -> process
    # pipelined (stock) lowering: host-side probes, since LIFReset keeps no records
    recorders: dict[str, SpikeRecorder] = field(default_factory=dict)  # spiking population -> its spike probe
    reader: Read | None = None  # the readout's v at the last step of each of its windows
    reads_skipped: int = 0  # reads before the first window's end

    @property
    def anchor(self) -> AbstractProcess:
        """Any process of the (connected) network: compiling it compiles them all."""
        return self.source


def source_data(frames: np.ndarray, precision: Precision) -> np.ndarray:
    """(samples, P, n_in) frames → RingBuffer data (n_in, samples·P): column t is emitted on step t+1."""
    s, p, n = frames.shape
    dtype = np.int32 if precision == "fixed_pt" else np.float64
    return np.ascontiguousarray(frames.reshape(s * p, n).T, dtype=dtype)


def _neuron(plan: LoweringPlan, n: NeuronPlan, precision: Precision, record_dir: str, record_trains: bool) -> Neuron:
    if precision == "fixed_pt":
        params = {"du": n.du, "dv": n.dv, "vth": n.vth, "bias_mant": n.bias_mant, "bias_exp": np.full(n.size, n.bias_exp)}
    else:
        params = n.float_params()
    if plan.schedule == "pipelined":
        return _stock_neuron(plan, n, params)
    return PeriodicLIF(
        shape=(n.size,),
        period=plan.period,
        num_periods=plan.samples,
        reset_mode=n.reset,
        readout=n.readout,
        record_v=n.record_v,
        record_dir=record_dir,
        label=n.label,
        record_trains=record_trains,
        name=f"lif:{n.population}",
        **params,
    )


def _stock_neuron(plan: LoweringPlan, n: NeuronPlan, params: dict) -> LIFReset:
    """Lava's stock LIFReset for the pipelined schedule: it resets u and v at its window's first step, then integrates.

    Lava's time_step ``g`` is step ``g - 1`` of the run; the window of sample k
    starts at step ``k·P + window``, so the reset comes when ``g % P == (window + 1) % P``.
    A readout gets the largest threshold (plan.check_stock proved it never reaches it).
    """
    if n.readout:
        params = {**params, "vth": READOUT_VTH}
    return LIFReset(shape=(n.size,), reset_interval=plan.period, reset_offset=(n.window + 1) % plan.period,
                    name=f"lif:{n.population}", **params)


def _probe(plan: LoweringPlan, net: "LavaNetwork", n: NeuronPlan, record_dir: str, record_trains: bool) -> None:
    """Pipelined: a spike recorder on a spiking population, or a Read of the readout's v at each window's end."""
    lif = net.neurons[n.population]
    if not n.readout:
        rec = SpikeRecorder(shape=(n.size,), period=plan.period, num_periods=plan.samples, window=n.window,
                            record_dir=record_dir, label=n.label, record_trains=record_trains, name=f"spikes:{n.population}")
        lif.s_out.connect(rec.a_in)
        net.recorders[n.population] = rec
    elif n.record_v:
        offset = (n.window + plan.period - 1) % plan.period  # Read fires when (g - 1) % P == offset
        reads = len(range(offset, plan.steps, plan.period))
        net.reader = Read(buffer=reads, interval=plan.period, offset=offset)
        net.reader.connect_var(lif.v)
        net.reads_skipped = (n.window + plan.period - 1 - offset) // plan.period


def save_probe_records(net: "LavaNetwork", record_dir: str) -> None:
    """After a pipelined run (before ``stop()``): the readout's ``v`` record from its Read probe, as PeriodicLIF writes it."""
    if net.reader is None:
        return
    out = next(n for n in net.plan.neurons if n.record_v)
    k = net.reads_skipped
    write_record(record_dir, out.label, "v", np.asarray(net.reader.data.get())[:, k : k + net.plan.samples].T.copy())


def _conv(s: SynapsePlan, precision: Precision) -> Conv:
    """Lava's Conv for an IR conv projection: kernel flipped (Lava convolves, torch correlates) and in (out, X, Y, in) order."""
    c = s.conv
    kernel = s.weights if precision == "fixed_pt" else s.float_weights()  # plan: already the weights Lava would use
    common = dict(weight=np.ascontiguousarray(kernel[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)), input_shape=tuple(c.in_shape[i] for i in WHC),
                  padding=c.padding[::-1], stride=c.stride[::-1], groups=c.groups, num_message_bits=s.num_message_bits, name=f"conn:{s.projection}")
    if precision == "fixed_pt":  # weight_exp is 0 (plan.conv_is_exact): Lava's fixed-point Conv would ignore any other
        return Conv(weight_exp=s.weight_exp, num_weight_bits=8, **common)
    return Conv(**common)


def _connection(s: SynapsePlan, precision: Precision) -> Connection:
    if s.process == "Conv":
        return _conv(s, precision)
    cls = Dense if s.process == "Dense" else Sparse
    if precision == "fixed_pt":
        return cls(weights=s.weights, weight_exp=s.weight_exp, num_weight_bits=8, num_message_bits=s.num_message_bits, name=f"conn:{s.projection}")
    return cls(weights=s.float_weights(), num_message_bits=s.num_message_bits, name=f"conn:{s.projection}")


def build(
    plan: LoweringPlan,
    frames: np.ndarray,
    *,
    record_dir: str,
    record_trains: bool = False,
    precision: Precision = "fixed_pt",
) -> LavaNetwork:
    """Instantiate and connect one Lava process per population and projection of ``plan``.

    ``frames`` must be the array the plan was made from (see ``plan.check_frames``).
    """
    net = LavaNetwork(plan=plan, source=RingBuffer(data=source_data(frames, precision)))
    for n in plan.neurons:
        net.neurons[n.population] = _neuron(plan, n, precision, record_dir, record_trains)
        if plan.schedule == "pipelined":
            _probe(plan, net, n, record_dir, record_trains)
    for s in plan.synapses:
        conn = _connection(s, precision)
        src = net.source if s.source == plan.input_population else net.neurons[s.source]
        out_port, in_port = src.s_out, net.neurons[s.target].a_in
        if s.process == "Conv":  # flat (C, H, W) ⇄ Lava's (W, H, C) through virtual ports
            out_port = out_port.reshape(tuple(s.conv.in_shape)).transpose(WHC)
            conn.a_out.transpose(WHC).flatten().connect(in_port)
        else:
            conn.a_out.connect(in_port)
        out_port.connect(conn.s_in)
        net.connections[s.projection] = conn
    return net
