"""Run Lava's *stock* LIF and Conv processes (fixed_pt) on given inputs; print what they computed.

    python tests/lava_stock_probe.py SPEC.json  →  one JSON line on stdout

Used by tests/test_lava_stock.py, which runs it in its own session and cleans
up after it (Lava forks an actor per process; see neurocompile_lava.runner).

* ``lif``: one RingBuffer source of graded payloads → per case a Dense that
  picks the case's rows (weights 0/1, 24-bit messages) → a stock ``LIF`` →
  a RingBuffer sink. The LIF therefore receives ``a_in = 0`` at step 1 and
  ``data[:, t - 2]`` at step t ≥ 2. Returns each case's spikes and final u, v.
* ``conv``: RingBuffer (X, Y, C) → stock ``Conv`` → RingBuffer sink; returns
  ``a_out`` per step (Conv sends its buffer first: step t carries input t - 1).
"""
from __future__ import annotations

import json
import sys

import numpy as np

from neurocompile_lava import compat

compat.install()

from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.conv.process import Conv  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.sink import RingBuffer as Sink  # noqa: E402
from lava.proc.io.source import RingBuffer as Source  # noqa: E402
from lava.proc.lif.process import LIF  # noqa: E402


def _run(anchor, steps: int, read):
    anchor.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    try:
        return read()
    finally:
        anchor.stop()


def lif(spec: dict) -> dict:
    data = np.asarray(spec["data"], dtype=np.int32)  # (n_total, steps)
    steps = data.shape[1]
    source = Source(data=data)
    lifs, sinks, start = [], [], 0
    for case in spec["cases"]:
        n = len(case["bias_mant"])
        pick = np.zeros((n, data.shape[0]), dtype=np.int32)
        pick[np.arange(n), start + np.arange(n)] = 1
        start += n
        dense = Dense(weights=pick, num_message_bits=24)
        neuron = LIF(shape=(n,), du=case["du"], dv=case["dv"], vth=case["vth"],
                     bias_mant=np.asarray(case["bias_mant"]), bias_exp=np.asarray(case["bias_exp"]))
        sink = Sink(shape=(n,), buffer=steps)
        source.s_out.connect(dense.s_in)
        dense.a_out.connect(neuron.a_in)
        neuron.s_out.connect(sink.a_in)
        lifs.append(neuron)
        sinks.append(sink)

    def read():
        return [{"spikes": s.data.get().T.astype(int).tolist(), "u": n.u.get().astype(int).tolist(),
                 "v": n.v.get().astype(int).tolist()} for n, s in zip(lifs, sinks)]

    return {"cases": _run(source, steps, read)}


def conv(spec: dict) -> dict:
    data = np.asarray(spec["data"], dtype=np.int32)  # (X, Y, C, steps)
    steps = data.shape[-1]
    source = Source(data=data)
    c = Conv(weight=np.asarray(spec["weight"], dtype=np.int32), input_shape=data.shape[:3], padding=spec["padding"],
             stride=spec["stride"], weight_exp=spec["weight_exp"], num_message_bits=spec["num_message_bits"])
    sink = Sink(shape=c.output_shape, buffer=steps)
    source.s_out.connect(c.s_in)
    c.a_out.connect(sink.a_in)
    return {"a_out": _run(source, steps, lambda: sink.data.get().astype(int).tolist())}


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    out = {"lif": lif, "conv": conv}[spec["kind"]](spec)
    print(json.dumps(out), flush=True)
