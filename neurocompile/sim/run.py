"""Running a converted network on samples: periods, encoding, decoding, batching."""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..ir import Network
from .encoding import encode
from .engine import SimResult, simulate
from .float_sim import FloatSimResult, FloatSimulator


def period(net: Network) -> int:
    """Steps per sample (ir/graph.py): periodic, T steps of input reach the readout after ``depth`` delays; pipelined, T."""
    return net.period()


def inference_steps(net: Network) -> int:
    """Chip steps one inference takes, from its first input to its readout: T + depth in both schedules.

    The cost model's latency and per-inference work use it. A pipelined network
    streams a new sample every T steps (``period``), but one sample alone still
    waits ``depth`` steps for its output window to end.
    """
    return net.timesteps + net.depth()


def readout_step(net: Network, timesteps: int) -> int:
    """The step of the period after which the readout holds ``timesteps`` steps of input (one run serves every shorter T)."""
    return net.with_settings(timesteps=timesteps).period() - 1  # the readout is read at its period's last step


def frames_for(net: Network, x: np.ndarray, fixed: bool, first_index: int = 0) -> torch.Tensor:
    return encode(x, net.settings.encoding, period(net), fixed=fixed, seed=net.settings.seed, first_index=first_index)


def decode(net: Network, readout: np.ndarray | torch.Tensor, fixed: bool) -> np.ndarray:
    """Logits per step: ``(v + T · bias) / T`` in the readout's own units."""
    T = net.timesteps
    out = net.population(net.output)
    # the decoder is host arithmetic: the readout bias needs no chip format (no int16/int32 wrap)
    q = net.neuron_fixed(out.name) if fixed else None
    bias = np.asarray(q.bias_mant, dtype=np.float64) * 2.0**q.bias_exp if q is not None else out.values("bias")
    return (np.asarray(readout, dtype=np.float64) + T * bias) / T


@dataclass
class Evaluation:
    logits: np.ndarray  # (N, n_out)
    spike_counts: dict[str, np.ndarray]  # population → (N,) spikes per sample
    input_events: np.ndarray  # (N,) nonzero input frames per sample

    def accuracy(self, y: np.ndarray) -> float:
        return float((self.logits.argmax(1) == np.asarray(y)).mean())


FRAME_BUDGET_BYTES = 256 << 20  # frames plus per-step state of one batch stay well inside a laptop's memory


def batch_for(net: Network, requested: int) -> int:
    """The largest batch up to ``requested`` whose frames and state fit FRAME_BUDGET_BYTES.

    A batch holds (B, period, n_in) frames and (B, n) state per population; long
    periods shrink the batch instead of exhausting memory.
    """
    per_sample = 8 * (period(net) * net.population(net.input).size + sum(p.size for p in net.populations) * 4)
    return max(1, min(requested, FRAME_BUDGET_BYTES // max(per_sample, 1)))


def _runner(net: Network, mode: str) -> Callable[..., SimResult | FloatSimResult]:
    """``frames → result`` in ``mode``: the float model is built once and reused for every batch."""
    if mode != "float":
        return lambda frames, **kw: simulate(net, frames, mode, **kw)
    return FloatSimulator(net)


def _batches(net: Network, x: np.ndarray, mode: str, batch_size: int, progress: str | None, **run_kw):
    """(first index, frames, result) per memory-bounded batch of ``x``, with a progress bar on stderr when ``progress``."""
    from tqdm import tqdm

    fixed = mode == "fixed"
    batch_size = batch_for(net, batch_size)
    run = _runner(net, mode)
    with tqdm(total=len(x), desc=f"  {progress}", unit="sample", file=sys.stderr, leave=False, disable=not progress,
              mininterval=0.5) as bar:
        for start in range(0, len(x), batch_size):
            frames = frames_for(net, x[start : start + batch_size], fixed, first_index=start)
            yield start, frames, run(frames, **run_kw)
            bar.update(len(frames))


@torch.no_grad()
def evaluate(net: Network, x: np.ndarray, mode: str, batch_size: int = 256, progress: str | None = None) -> Evaluation:
    """Float or fixed-point simulation of ``x`` in memory-bounded batches (a progress bar on stderr when ``progress``)."""
    fixed = mode == "fixed"
    logits, counts, events = [], {}, []
    for _, frames, r in _batches(net, x, mode, batch_size, progress):
        logits.append(decode(net, r.readout.numpy(), fixed))
        for k, v in r.spike_counts.items():
            counts.setdefault(k, []).append(v.sum(1).double().numpy())
        # periodic: frame t arrives at step t + 1, so the last is never delivered; pipelined: every frame is
        delivered = frames if net.settings.schedule == "pipelined" else frames[:, :-1]
        events.append((delivered != 0).sum((1, 2)).numpy())
    return Evaluation(np.concatenate(logits), {k: np.concatenate(v) for k, v in counts.items()}, np.concatenate(events))


@torch.no_grad()
def accuracy_vs_timesteps(net: Network, x: np.ndarray, y: np.ndarray, timesteps: tuple[int, ...], mode: str = "float",
                          batch_size: int = 256, progress: str | None = None) -> dict[int, float]:
    """Accuracy at each T in ``timesteps`` from one run at the longest (a shorter run is a prefix: see ``simulate``).

    Identical to running each T on its own (tests/test_sweep.py holds it to that), at the cost of one run.
    """
    if not timesteps:
        return {}
    longest = net.with_settings(timesteps=max(timesteps))
    steps = {T: readout_step(net, T) for T in timesteps}
    decoders = {T: net.with_settings(timesteps=T) for T in timesteps}
    correct = dict.fromkeys(timesteps, 0)
    y = np.asarray(y)
    for start, frames, r in _batches(longest, x, mode, batch_size, progress, readout_steps=tuple(steps.values())):
        for T, step in steps.items():
            logits = decode(decoders[T], r.readouts_at[step].numpy(), mode == "fixed")
            correct[T] += int((logits.argmax(1) == y[start : start + len(frames)]).sum())
    return {T: correct[T] / len(x) for T in timesteps}
