"""neurocompile's simulators against the peers (SpikingJelly, snnTorch, Norse), same networks, one run.

    python bench/peers.py [--batch 256] [--repeats 5] [--threads 2] [--epochs 1] [--profile]

The architecture issue's target: on the MNIST CNN and on a 1,000-neuron leaky recurrent
network, the fixed-point reference (``engine.simulate(qnet, frames, "fixed")``) at least as
fast as the fastest peer's float32 simulation, and the float simulator
(``FloatSimulator``) too. The peers are an optional extra (``pip install -e .[peers]``,
with the torch pin as a constraint); a peer that is not installed is skipped.

Networks (built once; every simulator gets the same weights and thresholds):

* ``mnist cnn``: Conv5×16-BN-ReLU-AvgPool2-Conv5×32-ReLU-AvgPool2-Linear64-ReLU-Linear10
  on 1×28×28, trained ``--epochs`` on the 8,000 MNIST train samples, captured
  (``frontend.capture``), converted to IF neurons (direct input, T = 32, reset by
  subtraction) and quantised for loihi2. The peers run the converted float network as the
  ANN's layers (conv, AvgPool, conv, AvgPool, linear: the pool that the front end composed
  into the next kernel is taken back out), with the converted weights, biases and thresholds.
* ``recurrent 1k``: 100 Bernoulli(0.2) inputs → 1,000 LIF neurons (v ← 0.875·v + input,
  IR ``leak=0.125``, reset by subtraction) with a 10 %-sparse recurrent projection → 10
  readouts, built by hand in the IR (integer weights; the quantised twin uses the same
  integers, ``dv = 512``). The peers store the recurrent weights dense (none has a sparse
  layer) -- a dense (B, 1000) @ (1000, 1000) per step.

Every simulator runs the same number of steps per sample (neurocompile's period
``P = T + depth``; the peers have no synaptic delay, so they simply run P steps), batch
``--batch``, float32, inference (``torch.no_grad``), ``--threads`` torch threads. Peers get the
same static-input shortcut as neurocompile (the first layer's current from a direct-coded
image computed once per sample; the recurrent net's input currents for all steps in one
matmul), so they are timed at their fastest. Timings are the best of ``--repeats`` rounds,
the simulators alternated within each round (the machine may be shared: the load average
is printed). Rates are spikes per neuron per step over the spiking (non-readout) neurons.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import io
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "examples"), str(ROOT / "bench")]

from mnist_models import mnist_cnn as build_cnn, train as train_model  # noqa: E402
from recurrent_models import bernoulli_frames, recurrent_network  # noqa: E402
from neurocompile.ir import ConvSpec, Network, Population, Projection  # noqa: E402

T = 32
PEERS = ("spikingjelly", "snntorch", "norse")


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def peer_status() -> dict[str, tuple[bool, str]]:
    """Which peers import here: name → (usable, version or why not)."""
    out = {}
    for name in PEERS:
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                if name == "spikingjelly":
                    import spikingjelly.activation_based.neuron  # noqa: F401
                elif name == "snntorch":
                    import snntorch  # noqa: F401
                else:
                    import norse.torch  # noqa: F401
            out[name] = (True, version(name) or "?")
        except Exception as e:  # noqa: BLE001 -- any import failure means: skip this peer
            out[name] = (False, f"not usable: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    return out


# ----------------------------------------------------------------------------- networks


def cnn_networks(epochs: int, n_samples: int) -> tuple[Network, Network, np.ndarray, str]:
    """(float SNN, quantised SNN, test images, description): train → export → capture → convert → quantize."""
    from neurocompile.data import load_dataset
    from neurocompile.frontend import capture
    from neurocompile.passes.convert import convert
    from neurocompile.passes.quantize import FixedPointFormat, quantize
    from neurocompile.profiles import load_profile

    ds = load_dataset("mnist", seed=0)
    t0 = time.perf_counter()
    module, acc = train_model(build_cnn(), ds.x_train, ds.y_train, ds.x_test, ds.y_test, epochs)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    net = capture(torch.export.export(module.eval(), (torch.from_numpy(ds.x_test[:2]),)))
    snn = convert(net, ds.x_train[:512], timesteps=T)
    snn = snn.with_settings(seed=0)
    qnet = quantize(snn, FixedPointFormat.from_profile(load_profile("loihi2")))
    info = (f"trained {epochs} epoch(s) on {len(ds.x_train)} MNIST samples in {t_train:.0f} s (ANN test accuracy {acc:.3f}); "
            f"capture+convert+quantize {time.perf_counter() - t0:.1f} s")
    x_test = np.resize(ds.x_test, (n_samples, *ds.x_test.shape[1:]))
    return snn, qnet, x_test, info



# ----------------------------------------------------------------------------- the network as peer layers


@dataclasses.dataclass
class Stage:
    """One population of a chain: its feed-forward op (from the previous stage or the input), an optional recurrent op."""

    name: str
    ff: nn.Module
    rec: nn.Module | None
    threshold: float
    leak: float
    readout: bool
    out_shape: tuple[int, ...]


def _linear(w: np.ndarray, bias: np.ndarray | None, gain: float) -> nn.Linear:
    lin = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    lin.weight.data = torch.as_tensor(w * gain, dtype=torch.float32).contiguous()
    if bias is not None:
        lin.bias.data = torch.as_tensor(bias * gain, dtype=torch.float32)
    return lin


def _channel_bias(pop: Population) -> np.ndarray | None:
    if pop.bias is None or not np.any(pop.bias):
        return None
    b = np.asarray(pop.bias).reshape(pop.shape[0], -1)
    if not (b == b[:, :1]).all():
        raise ValueError(f"{pop.name}: bias is not per channel")
    return b[:, 0]


def _ff_op(net: Network, pr: Projection, gain: float) -> nn.Module:
    """The projection as the ANN layer(s) a peer would run: a pool composed into the kernel is taken back out."""
    from neurocompile.sim.ops import pooled_conv

    src, dst = net.population(pr.source), net.population(pr.target)
    bias = None if dst.kind == "readout" else dst.bias
    if bias is not None and not np.any(bias):
        bias = None
    w = pr.weight
    if pr.kind == "conv":
        spec, kernel = pr.conv, np.asarray(w)
        cb = None if dst.kind == "readout" else _channel_bias(dst)
        pooled = pooled_conv(kernel, spec, torch.float32)
        layers: list[nn.Module] = []
        if pooled is not None:
            k, d, stride, padding = pooled
            kernel, layers = k.numpy() * (d[0] * d[1]), [nn.AvgPool2d(d)]  # sum pool = d² × average pool
        else:
            stride, padding = spec.stride, spec.padding
        conv = nn.Conv2d(kernel.shape[1] * spec.groups, kernel.shape[0], kernel.shape[2:], stride, padding,
                         groups=spec.groups, bias=cb is not None)
        conv.weight.data = torch.as_tensor(kernel * gain, dtype=torch.float32).contiguous()
        if cb is not None:
            conv.bias.data = torch.as_tensor(cb * gain, dtype=torch.float32)
        return nn.Sequential(*layers, conv)
    dense = w.toarray() if sp.issparse(w) else np.asarray(w)  # the peers have no sparse layer: stored dense
    if len(src.shape) == 3:  # flatten (+ the pool the front end composed into this matrix)
        spec = ConvSpec(in_shape=tuple(src.shape), out_shape=(dense.shape[0], 1, 1))
        pooled = pooled_conv(dense.reshape(dense.shape[0], *src.shape), spec, torch.float32)
        if pooled is not None and pooled[2] == (1, 1) and pooled[3] == (0, 0):
            k, d, _, _ = pooled
            return nn.Sequential(nn.AvgPool2d(d), nn.Flatten(), _linear(k.numpy().reshape(k.shape[0], -1) * (d[0] * d[1]), bias, gain))
        return nn.Sequential(nn.Flatten(), _linear(dense, bias, gain))
    return _linear(dense, bias, gain)


def stages_of(net: Network, gain_fn: Callable[[Population], float] = lambda p: 1.0) -> list[Stage]:
    """The float network as a chain of stages (each population fed by the one before; self-recurrence allowed)."""
    stages, prev = [], net.input
    for pop in net.neurons:
        inc = net.incoming(pop.name)
        ff = [pr for pr in inc if pr.source == prev]
        rec = [pr for pr in inc if pr.source == pop.name]
        if len(ff) != 1 or len(ff) + len(rec) != len(inc):
            raise ValueError(f"{pop.name}: not a chain with self-recurrence")
        g = gain_fn(pop)
        stages.append(Stage(pop.name, _ff_op(net, ff[0], g), _linear(rec[0].matrix().toarray(), None, g) if rec else None,
                            float(pop.threshold), float(pop.leak), pop.kind == "readout", tuple(pop.shape)))
        prev = pop.name
    return stages


# ----------------------------------------------------------------------------- peer neurons (one step: current → spikes)


def sj_neuron(st: Stage, step_mode: str) -> nn.Module:
    from spikingjelly.activation_based import neuron

    if st.leak == 0:
        return neuron.IFNode(v_threshold=st.threshold, v_reset=None, step_mode=step_mode)
    # decay_input=False: v ← v − v/τ + x = (1 − 1/τ)·v + x
    return neuron.LIFNode(tau=1.0 / st.leak, decay_input=False, v_threshold=st.threshold, v_reset=None, step_mode=step_mode)


class SnnTorchNeuron(nn.Module):
    def __init__(self, st: Stage) -> None:
        super().__init__()
        import snntorch

        self.lif = snntorch.Leaky(beta=1.0 - st.leak, threshold=st.threshold, reset_mechanism="subtract")
        self.mem = None

    def reset(self) -> None:
        self.mem = self.lif.init_leaky()

    def forward(self, cur: torch.Tensor) -> torch.Tensor:
        spk, self.mem = self.lif(cur, self.mem)
        return spk


class NorseNeuron(nn.Module):
    def __init__(self, st: Stage) -> None:
        super().__init__()
        from norse.torch import IAFCell, IAFParameters, LIFBoxCell, LIFBoxParameters
        from norse.torch.functional.reset import reset_subtract

        if st.leak == 0:  # Norse's IAF resets to a value (here 0): no reset by subtraction
            self.cell = IAFCell(IAFParameters(v_th=torch.as_tensor(st.threshold)))
        else:  # v ← v + dt·τ⁻¹·(i − v) = 0.875·v + 0.125·i: the input is scaled by 1/leak in the weights (norse_gain)
            dt = 1e-3
            self.cell = LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.as_tensor(st.leak / dt), v_th=torch.as_tensor(st.threshold),
                                                    reset_method=reset_subtract), dt=dt)
        self.state = None

    def reset(self) -> None:
        self.state = None

    def forward(self, cur: torch.Tensor) -> torch.Tensor:
        z, self.state = self.cell(cur, self.state)
        return z


def norse_gain(pop: Population) -> float:
    return 1.0 / pop.leak if pop.kind == "spiking" and pop.leak > 0 else 1.0


class SJSingle(nn.Module):
    """Adapter: SpikingJelly single-step node with a reset()."""

    def __init__(self, st: Stage) -> None:
        super().__init__()
        self.node = sj_neuron(st, "s")

    def reset(self) -> None:
        self.node.reset()

    def forward(self, cur: torch.Tensor) -> torch.Tensor:
        return self.node(cur)


# ----------------------------------------------------------------------------- peer runners


def single_step_runner(stages: list[Stage], neurons: list[nn.Module | None], steps: int) -> Callable:
    """Step by step, layer by layer (no synaptic delay: a spike reaches the next layer in the same step).

    ``x``: (B, *in_shape) for a static (direct-coded) input, or (B, steps, n_in) frames.
    Returns (readout, spikes per spiking stage).
    """
    def run(x: torch.Tensor, static: bool):
        B = x.shape[0]
        for nrn in neurons:
            if nrn is not None:
                nrn.reset()
        first = stages[0].ff(x) if static else stages[0].ff(x.reshape(B * steps, -1)).reshape(B, steps, -1)
        prev_s = [torch.zeros(B, int(np.prod(st.out_shape))) if st.rec is not None else None for st in stages]
        counts = [None if st.readout else torch.zeros(B, *st.out_shape) for st in stages]
        acc = None
        for t in range(steps):
            s = None
            for k, st in enumerate(stages):
                cur = (first if static else first[:, t]) if k == 0 else st.ff(s)
                if st.rec is not None:
                    cur = cur + st.rec(prev_s[k])
                if st.readout:
                    acc = cur if acc is None else acc + cur
                    continue
                s = neurons[k](cur)
                counts[k] += s
                if st.rec is not None:
                    prev_s[k] = s
        return acc, [c for c in counts if c is not None]
    return run


def sj_multi_step_runner(stages: list[Stage], steps: int) -> Callable | None:
    """SpikingJelly multi-step mode: each layer over all (steps × B) at once, each node over [steps, B, ...]."""
    if any(st.rec is not None for st in stages):
        return None  # recurrence needs step-by-step
    from spikingjelly.activation_based import functional

    nodes = [None if st.readout else sj_neuron(st, "m") for st in stages]

    def run(x: torch.Tensor, static: bool):
        B = x.shape[0]
        for nd in nodes:
            if nd is not None:
                functional.reset_net(nd)
        counts, acc, seq = [], None, None
        for k, st in enumerate(stages):
            if k == 0:
                cur = st.ff(x).unsqueeze(0).expand(steps, *([-1] * (x.dim()))) if static else st.ff(x.transpose(0, 1).reshape(steps * B, -1)).reshape(steps, B, -1)
                if static:
                    cur = cur.reshape(steps, B, *cur.shape[2:])
            else:
                cur = st.ff(seq.flatten(0, 1))
                cur = cur.reshape(steps, B, *cur.shape[1:])
            if st.readout:
                acc = cur.sum(0)
                continue
            seq = nodes[k](cur)
            counts.append(seq.sum(0))
        return acc, counts
    return run


def peer_runners(fnet: Network, steps: int, usable: dict[str, tuple[bool, str]]) -> dict[str, Callable]:
    runners: dict[str, Callable] = {}
    if usable["spikingjelly"][0]:
        st = stages_of(fnet)
        m = sj_multi_step_runner(st, steps)
        if m is not None:
            runners["SpikingJelly 'm'"] = m
        runners["SpikingJelly 's'"] = single_step_runner(st, [None if s.readout else SJSingle(s) for s in st], steps)
    if usable["snntorch"][0]:
        st = stages_of(fnet)
        runners["snnTorch"] = single_step_runner(st, [None if s.readout else SnnTorchNeuron(s) for s in st], steps)
    if usable["norse"][0]:
        st = stages_of(fnet, norse_gain)
        runners["Norse"] = single_step_runner(st, [None if s.readout else NorseNeuron(s) for s in st], steps)
    return runners


# ----------------------------------------------------------------------------- measurement


def measure(name: str, fnet: Network, qnet: Network, x_fixed: torch.Tensor, x_float: torch.Tensor, peer_x: torch.Tensor,
            static: bool, usable, repeats: int) -> list[dict]:
    """Best-of-``repeats`` sample-steps/s of every simulator on one batch, alternating them within each round."""
    from neurocompile.sim.engine import simulate
    from neurocompile.sim.float_sim import FloatSimulator
    from neurocompile.sim.run import period

    P = period(qnet)
    B = x_fixed.shape[0]
    spiking = [p for p in qnet.populations if p.kind == "spiking"]
    n_spiking = sum(p.size for p in spiking)
    fsim = FloatSimulator(fnet)

    def nc_fixed():
        r = simulate(qnet, x_fixed, "fixed")
        return sum(float(c.sum()) for c in r.spike_counts.values())

    def nc_float():
        r = fsim(x_float)
        return sum(float(c.sum()) for c in r.spike_counts.values())

    sims: dict[str, Callable[[], float]] = {"neurocompile fixed": nc_fixed, "neurocompile float": nc_float}
    for peer, run in peer_runners(fnet, P, usable).items():
        sims[peer] = (lambda run=run: sum(float(c.sum()) for c in run(peer_x, static)[1]))
    best = dict.fromkeys(sims, float("inf"))
    spikes = {}
    with torch.no_grad():
        for k, fn in sims.items():  # warm-up (and the spike count: every run is deterministic)
            spikes[k] = fn()
        for r in range(repeats):
            order = list(sims)
            order = order[r % len(order):] + order[: r % len(order)]  # rotate who goes first
            for k in order:
                t0 = time.perf_counter()
                sims[k]()
                best[k] = min(best[k], time.perf_counter() - t0)
    return [{"network": name, "sim": k, "rate_ss": B * P / best[k], "ms": best[k] * 1e3,
             "fire": spikes[k] / (B * P * n_spiking)} for k in sims]


def profile_nc(name: str, fnet: Network, qnet: Network, x_fixed: torch.Tensor, x_float: torch.Tensor, top: int = 10) -> None:
    """Where the two neurocompile simulators spend their time: torch ops by self CPU time, then Python functions."""
    import cProfile
    import pstats

    from torch.profiler import ProfilerActivity, profile

    from neurocompile.sim.engine import simulate
    from neurocompile.sim.float_sim import FloatSimulator

    fsim = FloatSimulator(fnet)
    for label, fn in (("fixed", lambda: simulate(qnet, x_fixed, "fixed")), ("float", lambda: fsim(x_float))):
        with torch.no_grad():
            fn()
            t0 = time.perf_counter()
            fn()
            wall = time.perf_counter() - t0
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                fn()
            cp = cProfile.Profile()
            cp.enable()
            fn()
            cp.disable()
        ops = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in ops)
        print(f"\n{name} / neurocompile {label}: {wall * 1e3:.0f} ms unprofiled; torch ops (self CPU) {total / 1e3:.0f} ms under the profiler")
        for e in sorted(ops, key=lambda e: -e.self_cpu_time_total)[:top]:
            print(f"  {e.self_cpu_time_total / 1e3:8.1f} ms {100 * e.self_cpu_time_total / max(total, 1):5.1f}% {e.count:6d} calls  {e.key}")
        print("  Python functions by tottime (cProfile; includes torch ops called inline):")
        stats = pstats.Stats(cp).stats
        for (file, line, func), (_, nc, tt, ct, _) in sorted(stats.items(), key=lambda kv: -kv[1][2])[:8]:
            where = f"{file.split('neurocompile/')[-1]}:{line}({func})" if "neurocompile" in file else func
            print(f"    {tt * 1e3:8.1f} ms tottime {ct * 1e3:8.1f} ms cum {nc:6d} calls  {where}")


def print_table(rows: list[dict]) -> None:
    by_net: dict[str, list[dict]] = {}
    for r in rows:
        by_net.setdefault(r["network"], []).append(r)
    head = f"{'network':14s} {'simulator':20s} {'sample-steps/s':>15s} {'ms/batch':>9s} {'÷ fastest peer':>15s} {'rate':>7s} {'rate ÷ nc fixed':>16s}"
    print(head)
    print("-" * len(head))
    for net, rs in by_net.items():
        peers = [r for r in rs if not r["sim"].startswith("neurocompile")]
        fastest = max(peers, key=lambda r: r["rate_ss"]) if peers else None
        ref_fire = next(r["fire"] for r in rs if r["sim"] == "neurocompile fixed")
        for r in rs:
            ratio = f"{r['rate_ss'] / fastest['rate_ss']:.2f}x" if fastest else "n/a"
            mark = " *" if r is fastest else ""
            print(f"{net:14s} {r['sim'] + mark:20s} {r['rate_ss']:15,.0f} {r['ms']:9.1f} {ratio:>15s} {r['fire']:7.4f} "
                  f"{r['fire'] / ref_fire if ref_fire else float('nan'):16.2f}")
    print("* fastest peer. rate: spikes per spiking neuron per step (period P steps). ÷ fastest peer: sample-steps/s over the fastest peer's.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1, help="MNIST CNN training epochs (8,000 samples each)")
    ap.add_argument("--profile", action="store_true", help="also profile the neurocompile simulators on each network")
    ap.add_argument("--only", choices=["cnn", "recurrent"], help="one network only")
    args = ap.parse_args()
    from neurocompile.cli import _quiet_torch
    from neurocompile.sim.run import frames_for, period

    _quiet_torch()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    usable = peer_status()
    print(f"peers: {os.cpu_count()} CPUs, torch {torch.__version__} on {torch.get_num_threads()} threads, numpy {np.__version__}; "
          f"batch {args.batch}, float32, no_grad, best of {args.repeats}; load average {load_average()} at start")
    for name, (ok, what) in usable.items():
        print(f"  {name}: {what if ok else what + ' -- skipped'}")

    rows, nets = [], {}
    if args.only in (None, "cnn"):
        snn, qnet, x, info = cnn_networks(args.epochs, args.batch)
        print(f"mnist cnn: {info}")
        xf, xq = frames_for(snn, x, fixed=False), frames_for(qnet, x, fixed=True)
        nets["mnist cnn"] = (snn, qnet, xq, xf, torch.from_numpy(np.ascontiguousarray(x)), True)
    if args.only in (None, "recurrent"):
        qnet = recurrent_network(dv=512, timesteps=T)
        fnet = qnet.replace(fixed=None)
        fr = bernoulli_frames(args.batch, period(qnet), 100, 0.2, seed=2)
        nets["recurrent 1k"] = (fnet, qnet, torch.from_numpy(fr), torch.from_numpy(fr).float(), torch.from_numpy(fr).float(), False)
    for name, (fnet, qnet, xq, xf, px, static) in nets.items():
        shapes = " → ".join(f"{p.name}{list(p.shape)}" for p in qnet.populations)
        print(f"{name}: {shapes}; {sum(pr.n_synapses for pr in qnet.projections):,} synapses; period P = {period(qnet)} steps; "
              f"load average {load_average()}", flush=True)
        rows += measure(name, fnet, qnet, xq, xf, px, static, usable, args.repeats)
    print()
    print_table(rows)
    print(f"\ntargets (each neurocompile simulator ≥ the fastest peer's float32 sample-steps/s):")
    for net in nets:
        rs = [r for r in rows if r["network"] == net]
        peers = [r for r in rs if not r["sim"].startswith("neurocompile")]
        if not peers:
            print(f"  [n/a ] {net}: no peer installed")
            continue
        fastest = max(peers, key=lambda r: r["rate_ss"])
        for which in ("fixed", "float"):
            r = next(r for r in rs if r["sim"] == f"neurocompile {which}")
            ok = r["rate_ss"] >= fastest["rate_ss"]
            print(f"  [{'PASS' if ok else 'MISS'}] {net}: neurocompile {which} {r['rate_ss']:,.0f} vs {fastest['sim']} "
                  f"{fastest['rate_ss']:,.0f} sample-steps/s = {r['rate_ss'] / fastest['rate_ss']:.2f}x")
        far = [r["sim"] for r in rs if not 0.5 <= r["fire"] / max(next(q["fire"] for q in rs if q["sim"] == "neurocompile fixed"), 1e-12) <= 2]
        if far:
            print(f"         firing rate differs > 2x from neurocompile fixed: {', '.join(far)}")
    if args.profile:
        for name, (fnet, qnet, xq, xf, _, _) in nets.items():
            profile_nc(name, fnet, qnet, xq, xf)
    print(f"\nwall time {time.perf_counter() - t_start:.0f} s; load average {load_average()} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
