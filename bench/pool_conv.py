"""AvgPool → Conv on the MNIST CNN: unrolled matrix (before) vs one composed strided conv vs a pooling population.

    python bench/pool_conv.py [--test N] [--batch B] [--repeats R] [--epochs E]

The CNN of the architecture issue (Conv5×16-BN-ReLU-AvgPool2-Conv5×32-ReLU-AvgPool2-
Linear64-ReLU-Linear10 on 1×28×28), trained for ``--epochs`` on the 8,000 MNIST train
samples (seeded, one thread), captured three ways:

* ``unrolled``: the front end before this change -- pool and conv composed into one
  CSR matrix (built here from the composed conv: the same values, synapse for synapse);
* ``compose``: ``capture(pool="compose")``, pool folded into one 10×10, stride-2 conv kernel;
* ``population``: ``capture(pool="population")``, the pooled map a spiking population of its own.

Each is converted (direct input, 99.9th-percentile thresholds on 512 train samples, T = 32)
and quantised for loihi2, then measured: synapses per projection (connections, as the
report counts them, and stored weights: a kernel once), loihi2 cores
(``map_to_cores``), energy per sample (``report.energy`` on the fixed-point spike counts; total,
dynamic -- synaptic ops, updates, messages, input -- and the modelled latency that sets the static part),
SNN accuracy (float and fixed point) at T = 8, 16, 32 on ``--test`` MNIST test samples,
and the fixed-point reference engine's speed (sample-steps/s, one ``--batch`` batch at
T = 32, the three networks timed in turn, best of ``--repeats``). ``unrolled`` and
``compose`` are the same integer network: the bench checks their fixed-point readouts
are identical.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "examples"), str(ROOT / "bench")]

from mnist_models import mnist_cnn, train as train_model  # noqa: E402
from neurocompile.data import load_dataset  # noqa: E402
from neurocompile.frontend import capture  # noqa: E402
from neurocompile.ir import Network, Projection  # noqa: E402
from neurocompile.passes.convert import convert  # noqa: E402
from neurocompile.passes.map import map_to_cores  # noqa: E402
from neurocompile.passes.quantize import FixedPointFormat, quantize  # noqa: E402
from neurocompile.profiles import load_profile  # noqa: E402
from neurocompile.report.energy import count_ops, estimate_energy  # noqa: E402
from neurocompile.sim.engine import simulate  # noqa: E402
from neurocompile.sim.run import accuracy_vs_timesteps, evaluate, frames_for, period  # noqa: E402

T = 32
T_SWEEP = (8, 16, 32)


def train(ds, epochs: int) -> tuple[nn.Module, float]:
    return train_model(mnist_cnn(), ds.x_train, ds.y_train, ds.x_test, ds.y_test, epochs)


def unrolled(net: Network) -> Network:
    """What the front end made before: every conv that is not a lone conv op, as its CSR matrix."""
    def unroll(pr: Projection) -> Projection:
        if pr.kind != "conv" or pr.conv.stride == (1, 1):  # the composed pool+conv is the strided one
            return pr
        return dataclasses.replace(pr, kind="sparse", weight=pr.matrix().astype(np.float32), conv=None)

    return net.replace(projections=tuple(unroll(pr) for pr in net.projections))


def stored_weights(pr: Projection) -> int:
    return int(np.size(pr.weight)) if pr.kind in ("conv", "dense") else int(pr.weight.nnz)


def fixed_speed(nets: dict[str, Network], x: np.ndarray, repeats: int) -> dict[str, float]:
    """Sample-steps/s of the fixed-point engine, the networks timed in turn (a shared machine drifts)."""
    frames = {k: frames_for(n, x, fixed=True) for k, n in nets.items()}
    for k, n in nets.items():  # warm-up: weight preparation is memoised per projection
        simulate(n, frames[k][:8], "fixed")
    best = dict.fromkeys(nets, float("inf"))
    for _ in range(repeats):
        for k, n in nets.items():
            t0 = time.perf_counter()
            simulate(n, frames[k], "fixed")
            best[k] = min(best[k], time.perf_counter() - t0)
    return {k: len(x) * frames[k].shape[1] / best[k] for k, n in nets.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", type=int, default=2000, help="MNIST test samples for the accuracies (≤ 2000)")
    ap.add_argument("--batch", type=int, default=256, help="samples per timed simulation")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()

    ds = load_dataset("mnist", seed=0)
    t0 = time.perf_counter()
    module, ann_acc = train(ds, args.epochs)
    print(f"trained {args.epochs} epochs on {len(ds.x_train)} MNIST samples in {time.perf_counter() - t0:.0f} s: "
          f"ANN test accuracy {ann_acc:.4f}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    ep = torch.export.export(module, (torch.from_numpy(ds.x_test[:2]),))
    composed = capture(ep, pool="compose")
    variants = {"unrolled": unrolled(composed), "compose": composed, "population": capture(ep, pool="population")}
    profile = load_profile("loihi2")
    fmt = FixedPointFormat.from_profile(profile)
    x_test, y_test = ds.x_test[: args.test], ds.y_test[: args.test]
    qnets, rows = {}, {}
    for name, net in variants.items():
        snn = convert(net, ds.x_train[:512], timesteps=T)
        qnet = map_to_cores(quantize(snn.with_settings(seed=0), fmt), profile)
        qnets[name] = qnet
        with contextlib.redirect_stderr(io.StringIO()):
            acc_f = accuracy_vs_timesteps(snn, x_test, y_test, T_SWEEP, mode="float")
            acc_q = accuracy_vs_timesteps(qnet, x_test, y_test, T_SWEEP, mode="fixed")
            ev = evaluate(qnet, x_test, "fixed")
        sps = {k: float(v.mean()) for k, v in ev.spike_counts.items()}
        sps[qnet.input] = float(ev.input_events.mean())
        energy = estimate_energy(qnet, count_ops(qnet, sps, period(qnet)), profile)
        rows[name] = {
            "net": qnet, "acc_f": acc_f, "acc_q": acc_q, "logits": ev.logits, "energy": energy["joules_per_sample"],
            "dynamic": energy["joules_per_sample"] - energy["breakdown"].get("static", 0.0), "latency": energy["latency_s"],
            "cores": sum(r["cores"] for r in qnet.mapping["populations"].values()),
            "cores_by": {p: r["cores"] for p, r in qnet.mapping["populations"].items()},
        }
    same = np.array_equal(rows["unrolled"]["logits"], rows["compose"]["logits"])
    speed = fixed_speed(qnets, x_test[: args.batch], args.repeats)

    print("\nper projection: kind, connections (unrolled synapses) / stored weights; loihi2 cores of its target")
    for name, r in rows.items():
        net = r["net"]
        parts = [f"{pr.name} {pr.kind}{'' if pr.kind != 'conv' else ' ' + 'x'.join(map(str, pr.weight.shape[2:])) + '/s' + str(pr.conv.stride[0])}"
                 f" {pr.n_synapses:,}/{stored_weights(pr):,} ({r['cores_by'][pr.target]} cores)" for pr in net.projections]
        print(f"  {name:10s} " + "; ".join(parts))
    head = (f"\n{'variant':10s} {'depth':>5s} {'synapses':>10s} {'stored':>9s} {'cores':>5s} {'µJ/sample':>9s} {'dyn µJ':>7s} {'lat ms':>6s} "
            + " ".join(f"{'float T=' + str(t):>10s}" for t in T_SWEEP) + " " + " ".join(f"{'fixed T=' + str(t):>10s}" for t in T_SWEEP)
            + f" {'fixed sample-steps/s':>21s}")
    print(head)
    for name, r in rows.items():
        net = r["net"]
        print(f"{name:10s} {net.depth():5d} {sum(pr.n_synapses for pr in net.projections):10,d} "
              f"{sum(stored_weights(pr) for pr in net.projections):9,d} {r['cores']:5d} {r['energy'] * 1e6:9.1f} {r['dynamic'] * 1e6:7.1f} {r['latency'] * 1e3:6.2f} "
              + " ".join(f"{r['acc_f'][t]:10.4f}" for t in T_SWEEP) + " " + " ".join(f"{r['acc_q'][t]:10.4f}" for t in T_SWEEP)
              + f" {speed[name]:21,.0f}")
    print(f"\naccuracies on {len(x_test)} MNIST test samples; speed: {args.batch} samples at T = {T} (period T + depth), "
          f"best of {args.repeats}; unrolled and compose fixed-point logits identical: {same}")


if __name__ == "__main__":
    main()
