"""Recurrent LIF population and leaky readout, in the chip's arithmetic and schedule.

Both modules run a whole *period* (``ir.py``): step 0 is the reset step (every
state zero, nothing fires), and at step ``t >= 1`` a projection delivers what its
source emitted at step ``t - 1`` (Lava's one-step synaptic delay), for the input
projection and the recurrent projection alike. Per neuron and step, in this
operation order (Lava's ``floating_pt`` LIF, as ``sim/float_sim.py``)::

    u = u * (1 - current_decay) + a_in
    v = v * (1 - leak) + u + bias
    s = v > threshold
    v = v - s * threshold          (reset="subtract")   or   v = v * (1 - s)   (reset="zero")

so a model trained here and written into the IR gives the same spikes. Tensors
are batch-major: (B, P, n), step index second, as the float simulator's frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn as nn

from ..errors import NeurocompileError
from ..sim.float_sim import FastSigmoid, SpikeFunction

Reset = Literal["subtract", "zero"]
RESETS = ("subtract", "zero")


def _parameter(values: np.ndarray, dtype: torch.dtype) -> nn.Parameter:
    return nn.Parameter(torch.as_tensor(np.asarray(values, dtype=np.float64)).to(dtype))


@dataclass
class LIFRun:
    """What a population did over a period: spikes and, when recorded, v after each step's reset (B, P, n)."""

    spikes: torch.Tensor
    v: torch.Tensor | None = None


class RecurrentLIF(nn.Module):
    """LIF neurons fed by a dense input projection and a masked recurrent projection.

    ``recurrent_weight`` is a parameter whose effective value is ``recurrent_weight *
    recurrent_mask``: the boolean mask (a buffer, row = target) is the fixed connectivity
    that pruning edits with :meth:`set_recurrent_mask`; gradients never reach absent
    synapses. ``threshold``, ``leak``, ``current_decay`` and ``bias`` are per-neuron
    parameters (freeze any with ``requires_grad_(False)``). ``spike_fn`` is the
    float simulator's pluggable spike function (Heaviside forward, surrogate backward).
    """

    def __init__(self, input_weight: np.ndarray, recurrent_weight: np.ndarray, recurrent_mask: np.ndarray,
                 threshold: np.ndarray, leak: np.ndarray, current_decay: np.ndarray, bias: np.ndarray,
                 reset: Reset = "subtract", spike_fn: SpikeFunction | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if reset not in RESETS:
            raise NeurocompileError(f"unknown reset {reset!r}; accepted: {', '.join(RESETS)}")
        self.spike_fn: SpikeFunction = spike_fn if spike_fn is not None else FastSigmoid()
        if self.spike_fn.uses_spike_time:
            raise NeurocompileError(f"{type(self.spike_fn).__name__} needs spike times, which the recurrent layer does not track")
        self.reset_mode: Reset = reset
        self.input_weight = _parameter(input_weight, dtype)
        self.recurrent_weight = _parameter(recurrent_weight, dtype)
        self.register_buffer("recurrent_mask", torch.zeros(self.recurrent_weight.shape, dtype=torch.bool))
        self.threshold = _parameter(threshold, dtype)
        self.leak = _parameter(leak, dtype)
        self.current_decay = _parameter(current_decay, dtype)
        self.bias = _parameter(bias, dtype)
        self.set_recurrent_mask(recurrent_mask)

    @property
    def size(self) -> int:
        return self.threshold.shape[0]

    def set_recurrent_mask(self, mask: np.ndarray | torch.Tensor) -> None:
        """Replace the connectivity (n, n) bool, row = target; weights of removed synapses are zeroed."""
        m = torch.as_tensor(np.asarray(mask)).to(torch.bool)
        if m.shape != self.recurrent_weight.shape:
            raise NeurocompileError(f"recurrent mask has shape {tuple(m.shape)}, expected {tuple(self.recurrent_weight.shape)}")
        self.recurrent_mask.copy_(m)
        with torch.no_grad():
            self.recurrent_weight.mul_(self.recurrent_mask)

    def effective_recurrent_weight(self) -> torch.Tensor:
        """The recurrent weights the neurons see (n, n), row = target, differentiable in the kept entries."""
        return self.recurrent_weight * self.recurrent_mask

    def forward(self, inputs: torch.Tensor, record_v: bool = False) -> LIFRun:
        """Run one period: ``inputs`` (B, P, n_in) is what the input population emits at each step."""
        B, P, _ = inputs.shape
        dtype = self.threshold.dtype
        inputs = inputs.to(dtype)
        w_in, w_rec = self.input_weight, self.effective_recurrent_weight()
        keep_u, keep_v = 1 - self.current_decay, 1 - self.leak
        zero = inputs.new_zeros(B, self.size)
        u, v, s = zero, zero, zero
        spikes, vs = [zero], [zero]
        for t in range(1, P):
            # messages sent at step t-1, summed in the IR's projection order: input, then recurrent
            a_in = inputs[:, t - 1] @ w_in.T + s @ w_rec.T
            u = u * keep_u + a_in
            v = v * keep_v + u + self.bias
            s = self.spike_fn(v, self.threshold, None)
            v = v - s * self.threshold if self.reset_mode == "subtract" else v * (1 - s)
            spikes.append(s)
            if record_v:
                vs.append(v)
        return LIFRun(torch.stack(spikes, 1), torch.stack(vs, 1) if record_v else None)


class LeakyReadout(nn.Module):
    """A non-spiking population that accumulates its input: ``v = v * (1 - leak) + W s`` (u is this step's input).

    ``bias`` is the decoder's, as in the IR: it is never added to ``v``;
    :meth:`decode` gives ``(v + T · bias) / T`` as ``FloatSimulator.logits`` does.
    """

    def __init__(self, weight: np.ndarray, leak: np.ndarray, bias: np.ndarray, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.weight = _parameter(weight, dtype)
        self.leak = _parameter(leak, dtype)
        self.bias = _parameter(bias, dtype)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """(B, P, n) spikes emitted at each step → (B, P, n_out) readout ``v`` after each step."""
        return self._accumulate(spikes, lambda s: s @ self.weight.T, self.weight.shape[0])

    def traces(self, spikes: torch.Tensor) -> torch.Tensor:
        """(B, P, n) → (B, P, n): what each hidden neuron adds to ``v`` per unit weight (``v = traces @ weight.T``).

        The states a linear readout is fitted on: a ridge fit on them is this
        readout's weight as the chip computes it (up to rounding).
        """
        if self.leak.numel() and not bool((self.leak == self.leak[0]).all()):
            raise NeurocompileError("traces need one readout leak shared by every readout neuron")
        keep = 1 - self.leak[:1]
        return self._accumulate(spikes, lambda s: s, spikes.shape[2], keep)

    def _accumulate(self, spikes: torch.Tensor, project: Callable[[torch.Tensor], torch.Tensor], width: int, keep: torch.Tensor | None = None) -> torch.Tensor:
        B, P, _ = spikes.shape
        keep = 1 - self.leak if keep is None else keep
        v = spikes.new_zeros(B, width)
        out = [v]
        for t in range(1, P):
            v = v * keep + project(spikes[:, t - 1])
            out.append(v)
        return torch.stack(out, 1)

    def decode(self, v: torch.Tensor, timesteps: int) -> torch.Tensor:
        """The IR decoder on readout potentials: ``(v + T · bias) / T`` (T = 1 for a per-step streaming readout)."""
        return (v + timesteps * self.bias) / timesteps
