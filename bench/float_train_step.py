"""Time one training step (forward + backward) through the float simulator, and its inference speed.

    .venv/bin/python bench/float_train_step.py [--batch 64] [--timesteps 8] [--threads 2] [--repeats 5]

The network is an MNIST-shaped CNN (Conv5x16-BN-ReLU-AvgPool2-Conv5x32-ReLU-AvgPool2-
Linear64-Linear10 on 1x28x28), random but untrained, captured with torch.export and
converted with threshold balancing on random [0, 1] calibration data; direct input.
Printed: the best of ``--repeats`` wall times for forward + backward of a
cross-entropy loss on the decoded logits (weights and thresholds trainable),
inference-only sample-steps/s (no_grad), and the time per projection: each
projection's product alone, forward and forward + backward, times the steps it
runs in one period (an upper bound for the backward, which only reaches the
steps that still influence the readout).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn as nn


def build(timesteps: int):
    from neurocompile.frontend import capture
    from neurocompile.passes.convert import convert

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 10),
    )
    net = capture(torch.export.export(model.eval(), (torch.zeros(1, 1, 28, 28),)))
    calib = np.random.default_rng(0).uniform(0, 1, (256, 1, 28, 28)).astype(np.float32)
    return convert(net, calib, timesteps=timesteps)


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN primitive caches
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--timesteps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from neurocompile.sim.float_sim import FastSigmoid, FloatSimulator
    from neurocompile.sim.run import frames_for, period

    net = build(args.timesteps)
    P = period(net)
    x = np.random.default_rng(1).uniform(0, 1, (args.batch, 1, 28, 28))
    y = torch.as_tensor(np.random.default_rng(2).integers(0, 10, args.batch))
    frames = frames_for(net, x, fixed=False)
    sim = FloatSimulator(net, trainable={"weight", "threshold"}, spike_fn=FastSigmoid())

    print(f"network: {' -> '.join(f'{p.name}{p.shape}' for p in net.populations)}; period P = {P} (T = {args.timesteps}, "
          f"depth {net.depth()}); batch {args.batch}; {torch.get_num_threads()} threads")
    for pr in net.projections:
        print(f"  {pr.name}: {pr.kind} {tuple(np.shape(pr.weight))}, {pr.n_synapses:,} synapses")

    def train_step() -> None:
        sim.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(sim.logits(sim(frames).readout), y)
        loss.backward()

    def inference() -> None:
        with torch.no_grad():
            sim(frames)

    t_train = best_of(train_step, args.repeats)
    t_inf = best_of(inference, args.repeats)
    print(f"\nforward + backward: {t_train * 1e3:.0f} ms per training step (target < 250 ms)")
    print(f"inference (no_grad): {t_inf * 1e3:.0f} ms per batch = {args.batch * P / t_inf:,.0f} sample-steps/s")

    with torch.no_grad():
        counts = sim(frames).spike_counts
    static = frames.stride(1) == 0
    print("\nper projection (its product alone, at the measured spike rates):")
    g = torch.Generator().manual_seed(0)
    for syn in sim.synapses:
        w = syn.operator()
        if syn.source == net.input:
            x_in, steps = frames[:, 0], 1 if static else P - 1
        else:
            c = counts[syn.source]
            x_in, steps = (torch.rand(c.shape, generator=g) < float(c.mean()) / (P - 1)).float(), P - 2
        x_in = x_in.clone().requires_grad_()
        fwd = best_of(lambda: syn.apply(w.detach(), x_in.detach()), args.repeats)

        def fwd_bwd() -> None:
            syn.apply(syn.operator(), x_in).sum().backward()

        both = best_of(fwd_bwd, args.repeats)
        print(f"  {syn.name:>20} ({syn.kind:6}): {steps:2d} steps x {fwd * 1e3:6.2f} ms forward = {steps * fwd * 1e3:6.1f} ms; "
              f"forward + backward {steps * both * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
