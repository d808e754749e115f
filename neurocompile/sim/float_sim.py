"""The float simulator: the IR as a trainable ``torch.nn.Module``.

Lava splits a process from its models; here the IR is the process, this module
its floating-point model and ``sim/engine.py`` its bit-exact fixed-point one.
The schedule is the one in ``neurocompile/ir/graph.py`` (periodic: a period of ``P``
steps, step 0 a reset step, one step of delay on every projection; pipelined: window
coordinates, no step dropped), and the
arithmetic follows Lava's ``floating_pt`` LIF in the same operation order as
the engine's former float mode, so inference gives the same spikes and
readouts bit for bit.

Everything the equations read (weights, thresholds, leaks, current decays,
biases) is an ``nn.Parameter`` so that a training loop can optimise any chosen
subset; spikes pass gradients through a pluggable :class:`SpikeFunction`
(Heaviside forward, surrogate backward).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import NeurocompileError
from ..ir import Network, Population, Projection
from .ops import pooled_conv

TRAINABLE: tuple[str, ...] = ("weight", "threshold", "leak", "current_decay", "bias")


# -- spike functions ----------------------------------------------------------


class SpikeFunction(ABC):
    """How a population turns its membrane potential into spikes.

    Called once per step and population with ``v`` and ``threshold`` (broadcast
    to (B, n)) and ``since_spike``: steps since each neuron last fired in this
    period (``inf`` before its first spike), for surrogates that depend on
    spike timing (e.g. STDB, Rathi et al. 2020); None unless the function sets
    ``uses_spike_time`` (it costs a pass over the state). Returns (B, n) spikes in
    ``v``'s dtype; the reset subtracts ``spikes * threshold`` (or scales ``v``
    by ``1 - spikes``), so a spike function may be soft.
    """

    uses_spike_time: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, v: torch.Tensor, threshold: torch.Tensor, since_spike: torch.Tensor | None) -> torch.Tensor: ...


def _step_fn(x: torch.Tensor) -> torch.Tensor:
    """``(x > 0)`` in x's dtype: sign(x) clamped at 0 is 1 above 0 and +0.0 at or below it (sign(-0.0) is +0.0).

    Two vectorised passes; ``(x > 0).to(dtype)`` goes through a bool tensor and
    ``heaviside``/``where`` are several times slower on CPU (torch 2.13). Only a
    NaN differs (NaN here, 0 there): the IR refuses non-finite parameters.
    """
    return torch.sign(x).clamp_(min=0)


class _SumPool(torch.autograd.Function):
    """Sum over aligned d×d blocks, exactly ``avg_pool2d(x, d, d, divisor_override=1)``.

    Forward: the d² strided slices added in the pool kernel's order (row by
    row, from the block's first element), so the sums round as avg_pool2d's do;
    backward: each block's gradient copied to its d² inputs (rows and columns
    the pool drops get zero). Both ~3x faster than avg_pool2d's CPU kernels.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, d: tuple[int, int]) -> torch.Tensor:
        ctx.d, ctx.in_hw = d, x.shape[-2:]
        ho, wo = x.shape[-2] // d[0], x.shape[-1] // d[1]
        out = None
        for i in range(d[0]):
            for j in range(d[1]):
                part = x[..., i : i + d[0] * ho : d[0], j : j + d[1] * wo : d[1]]
                out = part.clone(memory_format=torch.contiguous_format) if out is None else out.add_(part)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (d0, d1), (h, w) = ctx.d, ctx.in_hw
        *lead, ho, wo = grad.shape
        g = grad[..., :, None, :, None].expand(*lead, ho, d0, wo, d1).reshape(*lead, ho * d0, wo * d1)
        if (ho * d0, wo * d1) != (h, w):
            g = F.pad(g, (0, w - wo * d1, 0, h - ho * d0))
        return g, None


class _HeavisideWithSurrogate(torch.autograd.Function):
    """``v - threshold > 0`` forward; the surrogate's derivative backward (the true one is zero almost everywhere).

    The subtraction is inside, so the threshold's gradient is the reduced
    negative of v's (no full-size negation and no separate backward node).
    """

    @staticmethod
    def forward(ctx, v: torch.Tensor, threshold: torch.Tensor, width: torch.Tensor, since_spike: torch.Tensor | None,
                fn: "SurrogateSpike") -> torch.Tensor:
        x = v - threshold
        ctx.fn, ctx.th_shape = fn, threshold.shape
        ctx.save_for_backward(x, width, since_spike)
        return _step_fn(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, width, since_spike = ctx.saved_tensors
        gx = ctx.fn.surrogate_grad(grad, x, width, since_spike)
        g_th = None
        if ctx.needs_input_grad[1]:
            g_th = -gx if ctx.th_shape == gx.shape else gx.sum_to_size(ctx.th_shape).neg_()
        return gx if ctx.needs_input_grad[0] else None, g_th, None, None, None


@dataclass(frozen=True)
class SurrogateSpike(SpikeFunction):
    """Heaviside ``v > threshold`` forward, ``derivative(z)`` backward.

    ``z = (v - threshold) / |threshold|`` when ``normalize`` (converted layers'
    thresholds differ by orders of magnitude, so one surrogate width in
    threshold units suits them all), else ``z = v - threshold``. Subclasses that
    set ``uses_spike_time`` also receive each neuron's steps since its last spike.
    """

    normalize: bool = True

    @abstractmethod
    def derivative(self, z: torch.Tensor, since_spike: torch.Tensor | None) -> torch.Tensor:
        """d spike / d z."""

    def surrogate_grad(self, grad: torch.Tensor, x: torch.Tensor, width: torch.Tensor,
                       since_spike: torch.Tensor | None) -> torch.Tensor:
        """``grad · derivative(x / width) / width``, the backward of the spike w.r.t. ``x = v - threshold``.

        Subclasses may override it with a fused form (fewer passes over the state, fewer temporaries).
        """
        return grad * self.derivative(x / width, since_spike) / width

    def __call__(self, v: torch.Tensor, threshold: torch.Tensor, since_spike: torch.Tensor | None) -> torch.Tensor:
        # the width only scales the backward pass: kept out of the graph, and never zero
        width = threshold.detach().abs().clamp_min(torch.finfo(v.dtype).tiny) if self.normalize else torch.ones((), dtype=v.dtype)
        return _HeavisideWithSurrogate.apply(v, threshold, width, since_spike, self)


@dataclass(frozen=True)
class FastSigmoid(SurrogateSpike):
    """SuperSpike's surrogate (Zenke & Ganguli 2018): ``1 / (1 + slope |z|)^2``."""

    slope: float = 10.0

    def derivative(self, z: torch.Tensor, since_spike: torch.Tensor | None) -> torch.Tensor:
        return 1.0 / (1.0 + self.slope * z.abs()) ** 2

    def surrogate_grad(self, grad, x, width, since_spike):
        # 1 / (1 + slope |x| / w)^2 / w == w / (w + slope |x|)^2: one temporary, updated in place
        den = x.abs().mul_(self.slope).add_(width).square_()
        return (grad * width).div_(den)


@dataclass(frozen=True)
class StraightThrough(SurrogateSpike):
    """The straight-through estimator: gradient 1 within ``window`` of the threshold (everywhere when None)."""

    window: float | None = None

    def derivative(self, z: torch.Tensor, since_spike: torch.Tensor | None) -> torch.Tensor:
        if self.window is None:
            return torch.ones_like(z)
        return (z.abs() <= self.window).to(z.dtype)


@torch.no_grad()
def _note_spikes(latest: dict[str, torch.Tensor], name: str, s: torch.Tensor, t: int, binary: bool) -> None:
    """``latest[name]``: per neuron the last step t >= 1 with ``s > 0`` so far, 0 if none (max, not ``where``: ~10x faster).

    ``binary``: the spikes are 0 or 1 (a :class:`SurrogateSpike`'s), so ``s · t`` is t where ``s > 0``.
    """
    m = s.detach() * t if binary else _step_fn(s.detach()).mul_(t)
    if name in latest:
        torch.maximum(latest[name], m, out=latest[name])
    else:
        latest[name] = m


# -- parameters ---------------------------------------------------------------


def _per_neuron(value: float | np.ndarray | None, n: int, dtype: torch.dtype, trainable: bool) -> nn.Parameter:
    """A scalar IR field broadcast to one value per neuron, so that training can make them differ."""
    data = torch.zeros(n, dtype=dtype) if value is None else torch.as_tensor(np.asarray(value, dtype=np.float64)).to(dtype).expand(n).clone()
    return nn.Parameter(data, requires_grad=trainable)


def _written(param: torch.Tensor) -> float | np.ndarray:
    """A per-neuron parameter for the IR: one float where all neurons agree, else a float64 vector."""
    v = param.detach().cpu().double().numpy()
    return float(v[0]) if v.size and bool(np.all(v == v[0])) else v.copy()


class NeuronParameters(nn.Module):
    """One population's neuron parameters, one value per neuron.

    ``bias`` of a readout population is the decoder's (ir/graph.py: ``logits = v + T * bias``), never added to ``v``.
    """

    def __init__(self, pop: Population, dtype: torch.dtype, trainable: Collection[str]) -> None:
        super().__init__()
        self.name, self.kind, self.reset_mode, self.shape = pop.name, pop.kind, pop.reset, pop.shape
        n = pop.size
        # a readout never fires: its threshold is kept (it is the IR's) but reaches no loss
        self.threshold = _per_neuron(pop.threshold, n, dtype, "threshold" in trainable and pop.kind == "spiking")
        self.leak = _per_neuron(pop.leak, n, dtype, "leak" in trainable)
        self.current_decay = _per_neuron(pop.current_decay, n, dtype, "current_decay" in trainable)
        self.bias = _per_neuron(pop.bias, n, dtype, "bias" in trainable)

    @property
    def size(self) -> int:
        return self.threshold.shape[0]


class SynapseParameters(nn.Module):
    """One projection's weights: (out, in) dense, a (C_out, C_in/groups, kH, kW) kernel, or CSR values.

    A sparse projection keeps its connectivity fixed (``crow``/``col`` buffers);
    only the values of existing synapses are parameters.

    A pool-composed conv kernel (AvgPool(d) then Conv composed into one kernel
    constant on aligned d×d blocks, as ``ops.pooled_conv`` detects) is, when
    ``factorise_pooled``, parametrised by its block kernel (C_out, C_in/groups,
    kH/d, kW/d) and run as a sum pool then the small conv, forward and
    backward: ~d² fewer multiply-adds, and training keeps the taps of a block
    tied as the ANN's pool-then-conv had them (the block kernel's gradient is
    the full kernel's summed over each block). :meth:`full_weight` gives the
    kernel in the IR's layout. ``block`` is ``(d_h, d_w)`` then, else None.
    """

    def __init__(self, proj: Projection, dtype: torch.dtype, trainable: Collection[str], factorise_pooled: bool = True) -> None:
        super().__init__()
        self.name, self.source, self.target, self.kind, self.conv = proj.name, proj.source, proj.target, proj.kind, proj.conv
        self.block: tuple[int, int] | None = None
        grad = "weight" in trainable
        if proj.kind == "sparse":
            m = sp.csr_matrix(proj.weight)
            self.shape = m.shape
            self.register_buffer("crow", torch.from_numpy(m.indptr.astype(np.int64)))
            self.register_buffer("col", torch.from_numpy(m.indices.astype(np.int64)))
            # copies (``.to`` of a matching dtype would share the IR's memory, and an optimiser step would edit the network)
            self.weight = nn.Parameter(torch.from_numpy(np.asarray(m.data)).to(dtype, copy=True), requires_grad=grad)
            return
        w = torch.from_numpy(np.asarray(proj.weight)).to(dtype, copy=True)
        # the block form of the kernel as the inference path finds it (on the weights in this dtype)
        pooled = pooled_conv(w.numpy(), proj.conv, dtype) if proj.kind == "conv" and factorise_pooled else None
        if pooled is not None:
            w, self.block, self._block_stride, self._block_padding = pooled
        self.weight = nn.Parameter(w, requires_grad=grad)

    def operator(self) -> torch.Tensor:
        """What :meth:`apply` multiplies by; a CSR tensor is rebuilt around the values so gradients reach them."""
        if self.kind != "sparse":
            return self.weight
        with warnings.catch_warnings():  # "sparse CSR support is in beta": construction and matmul used here are stable
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.crow, self.col, self.weight, self.shape, check_invariants=False)

    def full_weight(self) -> torch.Tensor:
        """The weights in the IR's layout (``Projection.weight``; the CSR values for sparse), differentiable.

        A factorised kernel is its block kernel repeated over the d×d blocks, e.g.
        for writing trained weights back: ``replace(proj, weight=syn.full_weight().detach().double().numpy())``.
        """
        if self.block is None:
            return self.weight
        return self.weight.repeat_interleave(self.block[0], 2).repeat_interleave(self.block[1], 3)

    def _pooled(self, w: torch.Tensor):
        """The block form of a pool-composed kernel (``ops.pooled_conv``), recomputed when the weights change.

        For a full kernel that is not factorised (``factorise_pooled=False``), at
        inference only: AvgPool(d) then Conv composes into a kernel constant on
        d×d blocks, and a sum pool then the d²-times smaller conv needs ~d² fewer
        multiply-adds (the same sums up to float rounding order). Training keeps
        the full kernel, whose gradient is not block-constant.
        """
        key = (w.data_ptr(), w._version)
        if getattr(self, "_pooled_key", None) != key:
            self._pooled_key = key
            self._pooled_form = pooled_conv(w.detach().cpu().numpy(), self.conv, w.dtype)
        return self._pooled_form

    def apply(self, w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B, n_in) → (B, n_out); the same calls as ``sim/ops.project`` so the sums round the same way."""
        if x.dtype != w.dtype:
            x = x.to(w.dtype)
        if self.kind == "conv":
            c = self.conv
            x4 = x.reshape(x.shape[0], *c.in_shape)
            if self.block is not None:  # factorised: sum pool, then the block kernel
                x4 = _SumPool.apply(x4, self.block)
                return F.conv2d(x4, w, None, self._block_stride, self._block_padding, 1, c.groups).reshape(x.shape[0], -1)
            pooled = self._pooled(w) if not (w.requires_grad and torch.is_grad_enabled()) else None
            if pooled is not None:  # inference through a pool-composed kernel: sum pool, then the small conv
                k, d, stride, padding = pooled
                x4 = _SumPool.apply(x4, d)
                return F.conv2d(x4, k, None, stride, padding, 1, c.groups).reshape(x.shape[0], -1)
            return F.conv2d(x4, w, None, c.stride, c.padding, 1, c.groups).reshape(x.shape[0], -1)
        if self.kind == "sparse":
            return (w @ x.T).T
        return x @ w.T


# -- state and results --------------------------------------------------------


@dataclass
class PopulationState:
    """A population's state after the last step, (B, n) each."""

    v: torch.Tensor
    u: torch.Tensor
    last_spike: torch.Tensor  # step of the period at which each neuron last fired; -inf before its first spike


@dataclass
class StepOutput:
    spikes: dict[str, torch.Tensor]  # per spiking population, (B, n), in the simulator's dtype
    readout: torch.Tensor  # (B, n_out): v of the output population after this step


@dataclass
class FloatSimResult:
    readout: torch.Tensor  # (B, n_out): v of the output at the period's last step (differentiable)
    spike_counts: dict[str, torch.Tensor]  # per spiking population, (B, n), sums of the spikes (differentiable)
    state: dict[str, PopulationState]  # after the last step
    spike_trains: dict[str, torch.Tensor] | None = None  # (B, P, n) bool when recorded
    readouts_at: dict[int, torch.Tensor] | None = None  # step → v of the readout after that step


@dataclass
class _Derived:
    """Per-period tensors computed from the parameters at reset()."""

    keep: list[torch.Tensor | None]  # 1 - leak per population; None: v is never scaled (leak 0, frozen)
    keep_u: list[torch.Tensor | None]  # 1 - current_decay; None: u is this step's input alone
    bias: list[torch.Tensor | None]  # what v adds each step; None for readouts (decoder bias)
    weights: list[torch.Tensor]  # per projection, what SynapseParameters.apply takes


class FloatSimulator(nn.Module):
    """A network of the IR, simulated in floating point, batched and differentiable.

    ``trainable``: which parameter kinds get gradients (any of :data:`TRAINABLE`);
    the others are parameters too (so they are saved and moved with the module)
    but frozen. Parameters are read at :meth:`reset`, i.e. once per period.

    ``factorise_pooled``: pool-composed conv kernels are parametrised (and run,
    forward and backward) as sum pool + block kernel (:class:`SynapseParameters`);
    False trains the full kernel.

    Stepwise use (e.g. a pruning pass that watches the state)::

        sim.reset(batch)
        for t in range(P):
            out = sim.step(frames[:, t])  # periodic: t = 0 is the reset step
            sim.state["relu"].v, ...
    """

    def __init__(self, net: Network, *, trainable: Iterable[str] = (), spike_fn: SpikeFunction | None = None,
                 dtype: torch.dtype = torch.float32, factorise_pooled: bool = True) -> None:
        super().__init__()
        trainable = frozenset(trainable)
        unknown = trainable - set(TRAINABLE)
        if unknown:
            raise NeurocompileError(f"unknown trainable parameter kinds {sorted(unknown)}; accepted: {', '.join(TRAINABLE)}")
        self.output = net.output
        self.trainable = trainable
        self.timesteps = net.settings.timesteps
        # ir/graph.py: pipelined steps run in window coordinates (no delay; the first step integrates too)
        self.pipelined = net.settings.schedule == "pipelined"
        self.spike_fn: SpikeFunction = spike_fn if spike_fn is not None else FastSigmoid()
        self.neurons = nn.ModuleList(NeuronParameters(p, dtype, trainable) for p in net.neurons)
        self.synapses = nn.ModuleList(SynapseParameters(pr, dtype, trainable, factorise_pooled) for pr in net.projections)
        index = {p.name: i for i, p in enumerate(self.neurons)}
        # incoming projections in the network's projection order: the engine's summation order
        self._incoming = [[j for j, s in enumerate(self.synapses) if s.target == p.name] for p in self.neurons]
        self._source = [index.get(s.source) for s in self.synapses]  # None: the input population
        self._outgoing = {k: [j for j, src in enumerate(self._source) if src == k] for k in (None, *range(len(self.neurons)))}
        self._index = index
        self.state: dict[str, PopulationState] = {}
        self.spike_counts: dict[str, torch.Tensor] = {}
        # per population, a (B, n) factor on what it sends, for the whole period (e.g. dropout masks
        # fixed per sample); its own membrane and reset are untouched. Empty: spikes are sent as they are
        self.source_scale: dict[str, torch.Tensor] = {}
        self.t = 0  # steps taken in the current period
        self._messages: list[torch.Tensor | None] = []
        self._derived: _Derived | None = None

    # -- the IR back -----------------------------------------------------------
    def to_network(self, net: Network) -> Network:
        """``net`` with this module's trainable parameters written back (what a training pass returns).

        Only the kinds named in ``trainable`` are written: the others are the
        network's own values, kept exactly (the module holds them in its dtype).
        A parameter becomes per-neuron where training made its neurons differ,
        and stays one value where they are all equal. The fixed-point layer, if
        any, is dropped: it was made for the old float values (quantise again).
        """
        if [p.name for p in net.neurons] != [p.name for p in self.neurons] or \
                [pr.name for pr in net.projections] != [s.name for s in self.synapses]:
            raise NeurocompileError("to_network needs the network this simulator was built from")
        pops = {p.name: p for p in net.populations}
        for p in self.neurons:
            changes = {f: _written(getattr(p, f)) for f in ("threshold", "leak", "current_decay") if f in self.trainable}
            if "bias" in self.trainable:
                changes["bias"] = getattr(p, "bias").detach().cpu().double().numpy().copy()
            pops[p.name] = dataclasses.replace(pops[p.name], **changes)
        projs = list(net.projections)
        if "weight" in self.trainable:
            for i, (pr, syn) in enumerate(zip(net.projections, self.synapses)):
                w = syn.full_weight().detach().cpu().double().numpy()
                if pr.kind == "sparse":  # the module's connectivity, the values trained
                    w = sp.csr_matrix((w.copy(), syn.col.cpu().numpy().copy(), syn.crow.cpu().numpy().copy()), shape=syn.shape)
                else:
                    w = w.copy()
                projs[i] = dataclasses.replace(pr, weight=w)
        return net.replace(populations=tuple(pops[p.name] for p in net.populations), projections=tuple(projs), fixed=None)

    # -- lookups ---------------------------------------------------------------
    def neuron_params(self, name: str) -> NeuronParameters:
        return self.neurons[self._index[name]]

    def synapse_params(self, name: str) -> SynapseParameters:
        for s in self.synapses:
            if s.name == name:
                return s
        raise KeyError(name)

    def logits(self, readout: torch.Tensor, timesteps: int | None = None) -> torch.Tensor:
        """The decoder (``sim/run.py decode``): ``(v + T · bias) / T``, differentiable in the readout bias."""
        T = timesteps if timesteps is not None else self.timesteps
        if T is None:
            raise NeurocompileError("the network has no time steps (settings.timesteps); pass timesteps")
        return (readout + T * self.neuron_params(self.output).bias) / T

    # -- simulation ------------------------------------------------------------
    def reset(self, batch: int) -> None:
        """Start a period: zero every state, drop messages in flight, read the parameters."""
        p0 = self.neurons[0].threshold if len(self.neurons) else torch.zeros(())
        dtype, device = p0.dtype, p0.device
        self._derived = self._derive()
        self.state, self.spike_counts = {}, {}
        for p in self.neurons:
            zero = torch.zeros(batch, p.size, dtype=dtype, device=device)
            self.state[p.name] = PopulationState(v=zero, u=zero, last_spike=torch.full_like(zero, -math.inf))
            if p.kind != "readout":
                self.spike_counts[p.name] = zero
        self._messages = [None] * len(self.synapses)
        self.t = 0

    def _derive(self) -> _Derived:
        def scaled_by(frac: torch.Tensor) -> torch.Tensor | None:
            # a frozen zero fraction leaves the state as it is: skip the multiply (x * 1 == x exactly)
            return None if not frac.requires_grad and not bool(frac.any()) else 1 - frac

        keep, keep_u, bias = [], [], []
        for p in self.neurons:
            keep.append(scaled_by(p.leak))
            decay = p.current_decay
            # u = u·0 + a_in == a_in: a frozen full decay means u is this step's input
            keep_u.append(None if not decay.requires_grad and bool((decay == 1).all()) else 1 - decay)
            bias.append(None if p.kind == "readout" else p.bias)
        return _Derived(keep, keep_u, bias, [s.operator() for s in self.synapses])

    def step(self, frame: torch.Tensor) -> StepOutput:
        """One step of the period: ``frame`` (B, n_in) is what the input emits at this step.

        Periodic schedule: step 0 (the first after :meth:`reset`) is the reset step,
        neurons stay at zero and only the input's frame is sent on. Pipelined: every
        step integrates, and a population takes this step's spikes of its sources.
        """
        return self._step(frame, send=True, input_static=False)

    def _step(self, frame: torch.Tensor, send: bool, input_static: bool,
              latest: dict[str, torch.Tensor] | None = None) -> StepOutput:
        """One step; ``latest`` (None: track ``last_spike`` in the state) collects spike times for :meth:`_set_last_spikes`."""
        if self._derived is None:
            raise NeurocompileError("call reset(batch) before step()")
        d, t, pipelined = self._derived, self.t, self.pipelined
        spikes: dict[str, torch.Tensor] = {}
        out: list[torch.Tensor | None] = [None] * len(self.neurons)
        if pipelined:
            self._send(d, None, frame, t, input_static)
        for k, p in enumerate(self.neurons):
            st = self.state[p.name]
            if t == 0 and not pipelined:  # the reset step: state already zero (reset())
                s = None if p.kind == "readout" else st.v.new_zeros(st.v.shape)
            else:  # pipelined: the state was zeroed by reset(); the first step integrates like the others
                s = self._update(k, p, st, d, t, track_last=latest is None)
            out[k] = s
            if s is not None:
                spikes[p.name] = s
                if t or pipelined:
                    self.spike_counts[p.name] = self.spike_counts[p.name] + s
                    if latest is not None:  # noted as t + 1 when pipelined: 0 stands for "no spike yet"
                        _note_spikes(latest, p.name, s, t + pipelined, isinstance(self.spike_fn, SurrogateSpike))
                if pipelined:
                    self._send(d, k, s, t, input_static)
        if send and not pipelined:  # one step of delay: these arrive at t + 1
            self._send(d, None, frame, t, input_static)
            for k, s in enumerate(out):
                if s is not None:
                    self._send(d, k, s, t, input_static)
        self.t = t + 1
        return StepOutput(spikes, self.state[self.output].v)

    def _send(self, d: _Derived, source: int | None, sent: torch.Tensor, t: int, input_static: bool) -> None:
        """The messages of the projections leaving ``source`` (None: the input, ``sent`` its frame)."""
        for j in self._outgoing[source]:
            syn = self.synapses[j]
            if source is None:
                if not (input_static and t > 0):  # a static input's message is the same every step
                    self._messages[j] = syn.apply(d.weights[j], sent)
            elif t == 0 and not self.pipelined:
                self._messages[j] = None  # the reset step emits nothing: zeros, not worth a product
            else:
                scale = self.source_scale.get(syn.source)
                self._messages[j] = syn.apply(d.weights[j], sent if scale is None else sent * scale)

    def _update(self, k: int, p: NeuronParameters, st: PopulationState, d: _Derived, t: int,
                track_last: bool = True) -> torch.Tensor | None:
        # Lava's floating_pt LIF in its operation order: u = u(1-du) + a_in; v = v(1-dv) + u + bias
        msgs = [m for m in (self._messages[j] for j in self._incoming[k]) if m is not None]
        a_in = functools.reduce(torch.add, msgs) if msgs else torch.zeros_like(st.v)
        u = a_in if d.keep_u[k] is None else st.u * d.keep_u[k] + a_in
        v = st.v if d.keep[k] is None else st.v * d.keep[k]
        v = v + u  # a new tensor, and add's backward keeps nothing: the bias may go in in place
        if d.bias[k] is not None:
            v.add_(d.bias[k])
        if p.kind == "readout":
            self.state[p.name] = PopulationState(v=v, u=u, last_spike=st.last_spike)
            return None
        s = self.spike_fn(v, p.threshold, t - st.last_spike if self.spike_fn.uses_spike_time else None)
        # v - s·θ in one pass (s·θ is exact for 0/1 spikes, so fusing rounds as the two-op form does)
        v = torch.addcmul(v, s, p.threshold, value=-1) if p.reset_mode == "subtract" else v * (1 - s)
        if track_last:
            last = torch.where(s.detach() > 0, torch.as_tensor(float(t), dtype=s.dtype), st.last_spike)
        else:  # found after the period (forward: _note_spikes, _set_last_spikes)
            last = st.last_spike
        self.state[p.name] = PopulationState(v=v, u=u, last_spike=last)
        return s

    def forward(self, frames: torch.Tensor, *, record: bool = False, readout_steps: Collection[int] = ()) -> FloatSimResult:
        """Run ``frames`` (B, P, n_in) for one period of P steps (ir/graph.py).

        ``readout_steps``: steps after which the readout's ``v`` is also kept (a
        run of T steps is a prefix of a longer one: see ``engine.simulate``).
        """
        B, P, _ = frames.shape
        # direct input repeats one frame: its projections need computing (and differentiating) once
        input_static = frames.stride(1) == 0 or bool((frames == frames[:, :1]).all())
        self.reset(B)
        trains: dict[str, list[torch.Tensor]] = {name: [] for name in self.spike_counts} if record else {}
        readouts_at: dict[int, torch.Tensor] = {}
        # the state's last-spike times are only read by the spike function while stepping: else found afterwards
        latest = None if self.spike_fn.uses_spike_time else {}
        for t in range(P):
            # the last step's messages never arrive
            o = self._step(frames[:, t], send=t < P - 1 or self.pipelined, input_static=input_static, latest=latest)
            for name, s in o.spikes.items():
                if record:
                    trains[name].append(s.detach().bool())
            if t in readout_steps:
                readouts_at[t] = o.readout
        if latest is not None:
            self._set_last_spikes(latest)
        return FloatSimResult(
            readout=self.state[self.output].v,
            spike_counts=dict(self.spike_counts),
            state=dict(self.state),
            spike_trains={k: torch.stack(v, 1) for k, v in trains.items()} if record else None,
            readouts_at=readouts_at,
        )

    def _set_last_spikes(self, latest: dict[str, torch.Tensor]) -> None:
        """The state's ``last_spike`` from :func:`_note_spikes`' latest spike steps (0: none, so -inf)."""
        for name, m in latest.items():
            last = m.masked_fill_(m == 0, -math.inf) - (1 if self.pipelined else 0)  # pipelined: noted as t + 1
            self.state[name] = dataclasses.replace(self.state[name], last_spike=last)
