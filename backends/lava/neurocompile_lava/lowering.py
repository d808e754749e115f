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
from lava.proc.io.source import RingBuffer  # noqa: E402
from lava.proc.sparse.process import Sparse  # noqa: E402

from neurocompile_lava.plan import LoweringPlan, NeuronPlan, Precision, SynapsePlan  # noqa: E402
from neurocompile_lava.procs.periodic_lif.process import PeriodicLIF  # noqa: E402

Connection = Union[Dense, Sparse, Conv]

# Lava's Conv works on (X, Y, C) = (W, H, C) arrays; the IR flattens (C, H, W) in C order
WHC = [2, 1, 0]


@dataclass
class LavaNetwork:
    plan: LoweringPlan
    source: RingBuffer
    neurons: dict[str, PeriodicLIF] = field(default_factory=dict)  # population name -> process
    connections: dict[str, Connection] = field(default_factory=dict)  # projection name -> process

    @property
    def anchor(self) -> AbstractProcess:
        """Any process of the (connected) network: compiling it compiles them all."""
        return self.source


def source_data(frames: np.ndarray, precision: Precision) -> np.ndarray:
    """(samples, P, n_in) frames → RingBuffer data (n_in, samples·P): column t is emitted on step t+1."""
    s, p, n = frames.shape
    dtype = np.int32 if precision == "fixed_pt" else np.float64
    return np.ascontiguousarray(frames.reshape(s * p, n).T, dtype=dtype)


def _neuron(plan: LoweringPlan, n: NeuronPlan, precision: Precision, record_dir: str, record_trains: bool) -> PeriodicLIF:
    if precision == "fixed_pt":
        params = {"du": n.du, "dv": n.dv, "vth": n.vth, "bias_mant": n.bias_mant, "bias_exp": np.full(n.size, n.bias_exp)}
    else:
        params = n.float_params()
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
