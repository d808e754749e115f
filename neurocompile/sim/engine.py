"""The fixed-point reference engine: the IR batched and time-stepped, bit-exact to Lava's fixed-point models.

The step schedule is the one in ``neurocompile/ir/graph.py``: periodic, a
period of ``P`` steps per sample, step 0 a reset step, one step of synaptic
delay per projection; pipelined (what stock LIFReset runs), the same network
in window coordinates, where a population takes its sources' spikes of the
same step and the first step integrates too. A periodic run whose populations and projections
all have native kernels runs in one native call instead, a block of samples through every step
(:func:`_run_blocks`): the same kernels, the same integers. Floating point is another model of the same process and lives in
``sim/float_sim.py`` (a trainable ``nn.Module``); keeping it out of these
classes lets each arithmetic have its own fast paths.
"""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from ..errors import NeurocompileError
from ..ir import Network, NeuronFixed, Population, Projection, SynapseFixed
from . import fixed_point as fx
from . import native
from .ops import pooled_conv, project, weight_tensor



@dataclass
class SimResult:
    # fixed point: int32 or int64, as computed (both exact)
    readout: torch.Tensor  # (B, n_out): v of the readout at the period's last step
    spike_counts: dict[str, torch.Tensor]  # per spiking population, (B, n)
    spike_trains: dict[str, torch.Tensor] | None = None  # (B, P, n) bool when recorded
    state: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None  # final (u, v)
    readouts_at: dict[int, torch.Tensor] | None = None  # step → v of the readout after that step


Message = tuple[torch.Tensor, int]  # (x, e ≥ 0): a projection's output is x << e (made by _Synapses)


def _sum_messages(msgs: list[Message]) -> torch.Tensor:
    return functools.reduce(torch.add, [x << e if e else x for x, e in msgs])


class _Deferred:
    """A projection's message not computed yet: ``x``, its source's activity, and the synapses.

    The fused LIF step (native/lif_step.c, ``nc_lif_fused``) sums it straight into
    act, block by block while the block is in cache, instead of a (batch, n) int32
    message written to memory and read back. Everything else reads it as the
    ``(x, e)`` pair of a :data:`Message` (unpacking, indexing), computed on first use
    by the same kernels as an eager message -- so no consumer sees a difference.
    """

    __slots__ = ("syn", "x", "_msg")

    def __init__(self, syn: "_Synapses", x: torch.Tensor) -> None:
        self.syn, self.x, self._msg = syn, x, None

    def resolve(self) -> Message:
        if self._msg is None:
            self._msg = self.syn._compute(self.x)
        return self._msg

    def __iter__(self):
        return iter(self.resolve())

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        return self.resolve()[i]


def _per_neuron(value, n: int) -> torch.Tensor:
    """An int parameter given once or per neuron as an int64 vector of ``n`` values."""
    return torch.as_tensor(np.broadcast_to(np.asarray(value, dtype=np.int64), (n,)).copy())


class _Neurons:
    """State and update rule of one population in Lava's fixed-point arithmetic.

    Three ways to compute the same step, chosen per population:

    * ``fast`` (integrate-and-fire: no synaptic current, no voltage decay,
      nothing that can wrap -- the converted networks) keeps
      ``w = v - (vth << 6)`` instead of ``v`` in int32: then a spike is
      ``clamp(w, 0, 1)`` -- integer arithmetic, ~5x cheaper than a comparison
      that makes a bool tensor here (measured) -- the reset is ``w -= vth << 6``,
      messages are added with their scale folded into ``add_``'s ``alpha``, and
      ``u = a_in << 6`` is rebuilt from the last messages only when asked for
      (fused in C by native/if_step.c).
    * ``lif`` (everything else: leaks, synaptic currents, wraps): ``u`` and ``v``
      in int32 as Lava stores them. The fused C step (native/lif_step.c) is exact
      for every parameter and input (Lava's int32 wraps are its unsigned 32-bit
      arithmetic); without it, torch int32 ops where the bounds of
      :meth:`_lif_bounded` prove that nothing can wrap. Deferred messages
      (:class:`_Deferred`: sparse spikes, few-channel graded input) are summed inside
      that C step (``nc_lif_fused``), 32 samples at a time while they are in cache.
    * otherwise Lava's rules as written (fixed_point.lif_subthreshold) in int64.
    """

    def __init__(self, pop: Population, q: NeuronFixed, batch: int, in_bound: float = math.inf, period: int = 1 << 30):
        self.pop = pop
        n = pop.size
        self.readout = pop.kind == "readout"
        self.fast = self.lif = False
        self._lif_kernel = None
        fx.check_neuron_params(pop.name, q, n)
        # per-neuron decays or thresholds (heterogeneous populations): the fused C step with per-neuron
        # factors, or Lava's rules as written in int64 where it is not built
        self.uniform = all(q.uniform(k) for k in ("du", "dv", "vth"))
        self.du, self.dv = (q.scalar("du"), q.scalar("dv")) if self.uniform else (_per_neuron(q.du, n), _per_neuron(q.dv, n))
        # readouts take their bias in the decoder (ir/graph.py), never on chip
        self.bias = torch.zeros(n, dtype=torch.int64) if self.readout else fx.effective_bias(q.bias_mant, q.bias_exp)
        self.vth = q.scalar("vth") << fx.VTH_SHIFT if self.uniform else _per_neuron(q.vth, n) << fx.VTH_SHIFT
        # No synaptic current (du = 4095), an input that cannot wrap u and a bias that cannot
        # wrap v + u + bias at 32 bits (|w| adds at most vth << 6 < 2^23): Lava's wrap steps
        # are identities, so u = a_in << 6 exactly; without a voltage decay product int32
        # then holds every value exactly
        bias_max = int(self.bias.abs().max()) if n else 0
        self.fast = self.uniform and (
            self.du == fx.DECAY_UNITY - 1 and self.dv == 0
            and in_bound * (1 << fx.ACT_SHIFT) < fx.UV_MAX and bias_max + (1 << 25) < (1 << 31)
        )
        self._per_neuron: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        if not self.fast:
            self._lif_kernel = native.lif_step()
            self.lif = self._lif_kernel is not None or (self.uniform and self._lif_bounded(in_bound, bias_max))
            if self._lif_kernel is not None and not self.uniform:  # the C step's per-neuron fu, fv and vth << 6
                self._per_neuron = tuple((x.to(torch.int32).contiguous() for x in (
                    fx.DECAY_UNITY - 1 - self.du, fx.DECAY_UNITY - self.dv, self.vth)))  # type: ignore[assignment]
        dtype = torch.int32 if self.fast or self.lif else torch.int64
        self.bias = torch.broadcast_to(self.bias, (n,)).to(dtype).contiguous()  # bias_mant may be one value for all
        self.off = self.vth if self.fast and not self.readout else 0  # w = v - off
        self.zero = torch.zeros(batch, n, dtype=dtype)  # never written to: shared as "no spikes" and u = 0
        self.u = self.zero
        self.v = torch.full((batch, n), -self.off, dtype=dtype)  # v = 0 (w = -off on the fast path)
        self._drive: torch.Tensor | None = None  # fast path: bias + the static messages, once per run
        self._act0: torch.Tensor | None = None  # lif path: the static messages' act, once per run
        self._args: tuple | None = None  # the C LIF step's fixed arguments (_c_args)
        self._last: list[Message] = []
        # the C LIF step keeps u only where it decays (du < 4095); else u = act is rebuilt from the last
        # messages -- but with per-neuron factors it is stored (not decayed: nothing to read) where du = 4095
        # for all: cheaper than a rebuild of a large population's u that every backend run asks for
        self._du_unity = bool(np.all(np.asarray(self.du) == fx.DECAY_UNITY - 1))
        self._keep_u = not (self._lif_kernel is not None and self.uniform and self.du == fx.DECAY_UNITY - 1)
        if self._lif_kernel is not None and self._keep_u:
            self.u = torch.zeros(batch, n, dtype=dtype)  # owned: the C step writes it in place
        # spikes so far; fast- and lif-path spikes are int8, and so are their counts while they cannot exceed 127
        small = period <= 128
        self.counts = None if self.readout else torch.zeros(batch, n, dtype=torch.int8 if small and (self.fast or self.lif) else dtype)
        self._kernel = native.if_step() if self.fast and (small or self.readout) else None

    def _lif_bounded(self, in_bound: float, bias_max: int) -> bool:
        """Whether int32 holds every value of Lava's LIF step with no wrap, so that torch int32 ops are exact.

        With |a_in| <= A (``in_bound``), act = a_in << 6 has |act| <= 64·A. The synaptic
        current decays by f_u / 4096 with f_u = 4095 - du, rounded toward zero, so
        |u'| <= |u|·f_u / 4096 + 64·A; by induction from u = 0, |u| <= M = 64·A·4096 / (du + 1)
        (M·f_u / 4096 + 64·A = M). M < 2^23 makes Lava's 24-bit wrap (cur > 2^23 or
        cur <= -2^23) an identity, and every partial sum of act is below 2^23 too. v is
        clipped to ±(2^23 - 1) and the reset keeps it there; |decay(v)| <= |v|, so
        decay(v) + u + bias stays below 2^23 + 2^23 + bias_max < 2^31: the 32-bit wrap
        of v is an identity too.
        """
        return (in_bound * (1 << fx.ACT_SHIFT) * fx.DECAY_UNITY < fx.UV_MAX * (self.du + 1)
                and bias_max + 2 * fx.UV_MAX < (1 << 31))

    def reset(self) -> torch.Tensor:
        self._last = []
        self._args = None
        if self.fast:
            self.u = self.zero
            self.v.fill_(-self.off)  # v = 0, in place on the owned state
        elif self._lif_kernel is not None:  # the C step updates u and v in place
            self.v.zero_()
            if self._keep_u:
                self.u.zero_()
        else:
            self.u = self.zero
            self.v = torch.zeros_like(self.zero)
        return self.zero

    def own_inputs(self) -> None:
        """Copies the inputs of the last step's messages still deferred: :meth:`state` may compute them
        after simulate() returns, when the caller's frames they read may have changed (where u is kept, it never does)."""
        for m in [] if self._keep_u else self._last:
            if isinstance(m, _Deferred) and m._msg is None:
                m.x = m.x.clone()

    def block_pop(self, record: bool, steps: int) -> tuple[native.Pop, dict[str, torch.Tensor]] | None:
        """This population as nc_run_blocks' ``nc_pop_t`` with new state buffers (u, v, counts, trains: the C
        side resets them), or None where its step is not the C LIF step's (the kernel is exact for every
        parameter: integrate-and-fire populations of the fast path run on it too)."""
        B, n = self.v.shape
        if self.bias.dtype != torch.int32 or self.bias.shape != (n,) or not self.bias.is_contiguous() or not (
                self.uniform or self._per_neuron is not None):
            return None
        bufs = {"u": torch.empty(B, n, dtype=torch.int32), "v": torch.empty(B, n, dtype=torch.int32)}
        if not self.readout:  # counts as the step loop keeps them: int8 while they cannot exceed 127
            bufs["counts"] = torch.empty(B, n, dtype=torch.int8 if steps <= 128 else torch.int32)
            if record:
                bufs["trains"] = torch.empty(B, steps, n, dtype=torch.int8)
        ptr = {k: t.data_ptr() for k, t in bufs.items()}
        pn = self._per_neuron
        if pn is not None:  # fu a flag (0: no neuron's u decays), the factors per neuron
            fu, fv, vth, pn_ptrs = (0 if self._du_unity else 1), 0, 0, [a.data_ptr() for a in pn]
        else:
            fu, fv, vth, pn_ptrs = fx.DECAY_UNITY - 1 - self.du, fx.DECAY_UNITY - self.dv, self.vth, [None] * 3
        wide = "counts" in bufs and bufs["counts"].dtype == torch.int32
        pop = native.Pop(ptr["u"], ptr["v"], ptr.get("counts"), ptr.get("trains"), self.bias.data_ptr(), *pn_ptrs, n,
                         fu, fv, vth if not self.readout else 0, int(self.pop.reset == "zero"), int(wide), 0, 0, 0)
        return pop, bufs

    def state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, v) as Lava holds them."""
        if self.fast:
            u = _sum_messages(self._last) << fx.ACT_SHIFT if self._last else self.u
            return u.expand_as(self.v), self.v + self.off
        if self._keep_u:
            return self.u, self.v
        # du = 4095 on the C step: u is a_in << 6 (with Lava's wraps) of the last step's messages
        if not self._last:
            return self.zero, self.v
        a_in = functools.reduce(torch.add, [x.to(torch.int64) << e for x, e in self._last])
        zero = torch.zeros(1, dtype=torch.int64)
        u = fx.lif_subthreshold(zero, zero, a_in, self.du, 0, zero)[0]
        return u.to(self.v.dtype).expand_as(self.v), self.v

    def step(self, msgs: list[Message], static: list[bool] | None = None, final: bool = True) -> torch.Tensor:
        """One step after the reset step: integrate, fire, reset, count.

        ``final``: whether :meth:`state` may be read after this step. Only then does the C
        step store a ``u`` that no later step reads (per-neuron factors, du = 4095 for all:
        ``u = act``) -- a (batch, n) int32 write per step saved, a third of the step's memory traffic.
        """
        if self.fast:
            return self._fast_step(msgs, static or [False] * len(msgs))
        if self.lif:
            return self._lif_step(msgs, static or [False] * len(msgs), final)
        s = self._step(msgs)
        if self.counts is not None:
            self.counts.add_(s)
        return s

    def _step(self, msgs: list[Message]) -> torch.Tensor:
        a_in = _sum_messages(msgs)
        self.u, self.v = fx.lif_subthreshold(self.u, self.v, a_in, self.du, self.dv, self.bias)
        if self.readout:
            return self.zero
        # spikes as 0/1 in v's dtype: the reset and the spike counters take them without a copy
        s = (self.v > self.vth).to(self.v.dtype)
        # in place on the v this step just created (never the shared zero tensor)
        if self.pop.reset == "subtract":
            if isinstance(self.vth, torch.Tensor):  # one threshold per neuron
                self.v.sub_(s * self.vth)
            else:
                self.v.sub_(s, alpha=self.vth)
        else:
            self.v.mul_(1 - s)
        return s

    def _lif_step(self, msgs: list[Message], static: list[bool], final: bool = True) -> torch.Tensor:
        """Lava's LIF step on int32 u, v: fused in C (exact for every input) or torch ops (exact within _lif_bounded)."""
        self._last = msgs
        B, n = self.v.shape
        if self._act0 is None:  # the static messages' act: the same on every step after the reset
            # only the static messages are unpacked (computed): a dynamic one stays deferred for the fused C step
            fixed = [(x.to(torch.int64), e) for x, e in (m for m, f in zip(msgs, static) if f)]
            # Lava's int32 act modulo 2^32 (no wrap at all within the torch path's bounds)
            a0 = fx.wrap32(_sum_messages(fixed) << fx.ACT_SHIFT).to(torch.int32) if fixed else torch.zeros(1, n, dtype=torch.int32)
            self._act0 = (a0 if a0.dim() == 2 and a0.shape[0] in (1, B) else torch.broadcast_to(a0, (B, n))).contiguous()
        dynamic = [m for m, f in zip(msgs, static) if not f]  # deferred messages stay so for the fused C step
        if self._lif_kernel is not None:
            return self._lif_native_step(dynamic, final)
        unit = 1 << fx.ACT_SHIFT
        act = self._act0.expand(B, n).clone()
        for x, e in dynamic:  # |act| < 2^23 (_lif_bounded): the scale fits add_'s int32 alpha unless x is all zeros
            x = x.to(act.dtype)  # exact within the bounds (a no-op for the int32 messages of bounded projections)
            if e + fx.ACT_SHIFT < 31:
                act.add_(x, alpha=unit << e)
            else:
                act.add_(x << e, alpha=unit)
        if self.du != fx.DECAY_UNITY - 1:
            act.add_(_decay32(self.u, fx.DECAY_UNITY - 1 - self.du))
        self.u = act
        v = _decay32(self.v, fx.DECAY_UNITY - self.dv) if self.dv else self.v + 0  # a new tensor: self.u may share nothing with it
        v.add_(act).add_(self.bias).clamp_(-fx.UV_MAX + 1, fx.UV_MAX - 1)
        self.v = v
        if self.readout:
            return self.zero
        s = v > self.vth
        if self.pop.reset == "subtract":
            v.sub_(s.to(v.dtype), alpha=self.vth)
        else:
            v.masked_fill_(s, 0)
        s = s.to(torch.int8)
        self.counts.add_(s)
        return s

    def _lif_native_step(self, dynamic: list[Message], final: bool = True) -> torch.Tensor:
        """The LIF step fused in C (native/lif_step.c): Lava's wraps as unsigned 32-bit arithmetic, no bound needed."""
        B, n = self.v.shape
        inputs = [m for m in dynamic if isinstance(m, _Deferred) and m._msg is None and m.syn.fusable(m.x, B, n)]
        dynamic = [m for m in dynamic if not any(m is d for d in inputs)]
        # int32 rows: a message that _Synapses wrapped to int32 may arrive in int64 (then converted exactly)
        xs = [(x if x.shape == (B, n) else x.expand(B, n)).to(torch.int32).contiguous() for x, _ in dynamic]
        alphas = [(1 << (e + fx.ACT_SHIFT)) & 0xFFFFFFFF for _, e in dynamic]  # (x << e) << 6 modulo 2^32
        spikes = None if self.readout else torch.empty(B, n, dtype=torch.int8)
        # the C side trusts these (not an assert: memory safety must hold under python -O too)
        if not all(x.shape == (B, n) and x.dtype == torch.int32 for x in xs):
            raise RuntimeError(f"internal error: population {self.pop.name!r} reached the fused LIF kernel with unexpected buffers")
        u, state, params = self._c_args()
        # u = act that nothing reads before the run's last step: not stored until then (the kernel's u may be NULL)
        store_u = u is not None and (final or self._per_neuron is None or not self._du_unity)
        head = (u if store_u else None, *state, (ctypes.c_void_p * max(len(xs), 1))(*[x.data_ptr() for x in xs]),
                (ctypes.c_uint32 * max(len(xs), 1))(*alphas), len(xs))
        spikes_ptr = None if spikes is None else spikes.data_ptr()
        fused = native.lif_fused() if inputs else None
        if fused is not None:
            specs = (native.Input * len(inputs))(*[m.syn.input_spec(m.x) for m in inputs])
            if fused(*head, specs, len(inputs), spikes_ptr, *params[:-3], torch.get_num_threads(), *params[-3:]) == 0:
                return self.zero if spikes is None else spikes
        if inputs:  # no fused kernel, or it could not allocate (nothing was written): the messages as tensors
            return self._lif_native_step([tuple(m) for m in dynamic + inputs], final)
        self._lif_kernel(*head, spikes_ptr, *params[:-3], torch.get_num_threads(), *params[-3:])
        return self.zero if spikes is None else spikes

    def _c_args(self) -> tuple[int | None, tuple, tuple]:
        """The C step's arguments that stay the same through a run, made and checked on its first step
        (a fixed part of every step's cost, measured ~30 µs): u's pointer (None where u is not kept);
        v, act0, act0's row stride, bias; counts to the reset flag, then the per-neuron factors."""
        if self._args is not None:
            return self._args
        u, v, act0, counts, pn = self.u, self.v, self._act0, self.counts, self._per_neuron
        B, n = v.shape
        # the C side trusts these (not an assert: memory safety must hold under python -O too)
        if not (v.dtype == torch.int32 and v.shape == (B, n) and v.is_contiguous()
                and self.bias.dtype == torch.int32 and self.bias.shape == (n,) and self.bias.is_contiguous()
                and act0.dtype == torch.int32 and act0.dim() == 2 and act0.shape[1] == n and act0.shape[0] in (1, B) and act0.is_contiguous()
                and (not self._keep_u or (u.dtype == torch.int32 and u.shape == v.shape and u.is_contiguous()))
                and (counts is None or (counts.dtype in (torch.int8, torch.int32) and counts.shape == v.shape and counts.is_contiguous()))
                and (pn is None or (self._keep_u and all(
                    a.dtype == torch.int32 and a.shape == (n,) and a.is_contiguous() for a in pn)))):
            raise RuntimeError(f"internal error: population {self.pop.name!r} reached the fused LIF kernel with unexpected buffers")
        if pn is not None:  # a flag: 0 when no neuron's u decays (u = act stored), the factors in pn
            fu = 0 if self._du_unity else 1
        else:
            fu = 0 if not self._keep_u else fx.DECAY_UNITY - 1 - self.du
        fv, vth = (0, 0) if pn is not None else (fx.DECAY_UNITY - self.dv, self.vth)
        state = (v.data_ptr(), act0.data_ptr(), 0 if act0.shape[0] == 1 else n, self.bias.data_ptr())
        params = (None if counts is None else counts.data_ptr(), int(counts is not None and counts.dtype == torch.int32), B, n,
                  fu, fv, fx.DECAY_SHIFT, fx.UV_MAX, vth, int(self.pop.reset == "zero"),
                  *((None, None, None) if pn is None else (a.data_ptr() for a in pn)))
        self._args = (u.data_ptr() if self._keep_u else None, state, params)
        return self._args

    def _fast_step(self, msgs: list[Message], static: list[bool]) -> torch.Tensor:
        w, unit = self.v, 1 << fx.ACT_SHIFT
        self._last = msgs
        if self._drive is None:  # static messages are the same on every step after the reset
            self._drive = self.bias.clone()
            for (x, e), fixed in zip(msgs, static):
                if fixed:
                    self._drive = self._drive + (x << (e + fx.ACT_SHIFT))
            self._drive = self._drive.to(w.dtype)  # exact: the fast path's bounds cover bias + input
        # scale folded into add_'s alpha while it fits int32 (it does unless weights are all zero and e is huge)
        dynamic = [(x, unit << e) if e + fx.ACT_SHIFT < 31 else (x << e, unit) for (x, e), fixed in zip(msgs, static) if not fixed]
        lo, hi = -fx.UV_MAX + 1 - self.off, fx.UV_MAX - 1 - self.off  # np.clip of v to ±(2^23 - 1)
        if self._kernel is not None and all(x.dtype == torch.int32 and x.shape == w.shape for x, _ in dynamic):
            return self._native_step(dynamic, lo, hi)
        w.add_(self._drive)
        for x, alpha in dynamic:
            w.add_(x, alpha=alpha)
        w.clamp_(lo, hi)
        if self.readout:
            return self.zero
        s = torch.clamp(w, 0, 1)  # v > vth  ⟺  w ≥ 1 for integers
        if self.pop.reset == "subtract":
            w.sub_(s, alpha=self.vth)
        else:  # v = 0: w = w - s·(w + vth)
            w.sub_(s * (w + self.vth))
        s = s.to(torch.int8)  # what the int8 GEMMs take, and a quarter of the bytes to count
        self.counts.add_(s)
        return s

    def _native_step(self, dynamic: list[tuple[torch.Tensor, int]], lo: int, hi: int) -> torch.Tensor:
        """The same step as the torch code above, fused in C (native/if_step.c)."""
        w, drive = self.v, self._drive
        B, n = w.shape
        if drive.dim() == 1:  # the bias alone: one row for every sample
            stride = 0
        else:
            drive = drive.expand(B, n).contiguous()
            stride = n
        # the C side trusts these: int32 rows of n values (and int8 counters), nothing else (not an
        # assert: memory safety must hold under python -O too)
        if not (drive.dtype == w.dtype == torch.int32 and drive.shape[-1] == n and drive.is_contiguous() and w.is_contiguous()
                and (self.counts is None or (self.counts.dtype == torch.int8 and self.counts.shape == w.shape
                                             and self.counts.is_contiguous()))):
            raise RuntimeError(f"internal error: population {self.pop.name!r} reached the fused kernel with unexpected buffers")
        xs = [x.contiguous() for x, _ in dynamic]
        ptrs = (ctypes.c_void_p * max(len(xs), 1))(*[x.data_ptr() for x in xs])
        alphas = (ctypes.c_int32 * max(len(xs), 1))(*[a for _, a in dynamic])
        spikes = None if self.readout else torch.empty(B, n, dtype=torch.int8)
        self._kernel(w.data_ptr(), drive.data_ptr(), stride, ptrs, alphas, len(xs),
                     None if spikes is None else spikes.data_ptr(), None if spikes is None else self.counts.data_ptr(),
                     B, n, lo, hi, self.vth if not self.readout else 0, int(self.pop.reset == "zero"), torch.get_num_threads())
        return self.zero if spikes is None else spikes


def _decay32(x: torch.Tensor, factor: int) -> torch.Tensor:
    """fixed_point.decay of int32 ``x`` as a new int32 tensor: ``x·factor / 4096`` rounded toward zero.

    ``x·factor`` needs up to 43 bits: float64 holds it exactly (< 2^53), the
    division by 2^12 is exact too, and the float → int32 conversion truncates
    toward zero, as Lava's ``sign(d) · (|d| >> 12)`` does; |result| <= |x|.
    """
    if factor == 0:
        return torch.zeros_like(x)
    if factor == fx.DECAY_UNITY:
        return x.clone()
    return x.to(torch.float64).mul_(factor / fx.DECAY_UNITY).to(x.dtype)


_PREPARED: dict[tuple, tuple[weakref.ref, tuple[weakref.ref, ...], object]] = {}


def _per_projection(fn: Callable) -> Callable:
    """Memoise ``fn(obj, *args)`` for as long as ``obj`` (a projection or its fixed-point weights) lives.

    A network runs batch after batch (reference.py) with the same weights:
    preparing them (Lava's truncation, bounds, int8 packing) took 15 % of a
    1,024-sample CNN run and most of a small one (measured). Projections are
    frozen and treated as immutable: editing a projection's arrays in place is
    not seen (make a new Projection, e.g. ``dataclasses.replace``); callers
    never modify what is returned.
    """

    @functools.wraps(fn)
    def prepared(proj: Projection, *args):
        # further arguments: values (dtypes, flags) as themselves, objects by identity -- and a hit must
        # find those very objects alive (an id is reused once its object is freed)
        plain = (int, float, str, torch.dtype)
        objects = [a for a in args if not isinstance(a, plain)]
        key = (fn.__name__, id(proj), *(a if isinstance(a, plain) else id(a) for a in args))
        hit = _PREPARED.get(key)
        if hit is not None and hit[0]() is proj and all(r() is a for r, a in zip(hit[1], objects)):
            return hit[2]
        value = fn(proj, *args)
        # the callback binds the dict: at interpreter exit the module global may already be None
        _PREPARED[key] = (weakref.ref(proj, lambda _, k=key, d=_PREPARED: d.pop(k, None)), tuple(map(weakref.ref, objects)), value)
        return value

    return prepared


@_per_projection
def _lava_effective(sf: SynapseFixed, proj: Projection) -> Projection:
    """``proj`` carrying as its weights the integers Lava actually uses (fixed_point.synapse_weights of ``sf``).

    Memoised on ``sf``, the network's fixed-point layer entry, so the projection
    made here lives as long as it does and the preparations below keyed on it
    are made once per network, not once per batch.
    """
    return dataclasses.replace(proj, weight=fx.synapse_weights(proj, sf.weight))


@_per_projection
def _row_l1_bound(proj: Projection) -> float:
    """An upper bound on max_i Σ_j |w_ij| of the quantised weights, without building a conv matrix."""
    w = proj.weight
    if proj.kind == "conv":
        k = np.abs(np.asarray(w, dtype=np.float64))
        return float(k.reshape(k.shape[0], -1).sum(1).max()) if k.size else 0.0
    m = abs(sp.csr_matrix(w)) if sp.issparse(w) else np.abs(np.asarray(w, dtype=np.float64))
    return float(np.asarray(m.sum(1)).max()) if m.shape[0] and m.shape[1] else 0.0


SMALL_DENSE = 1 << 20  # entries of a sparse matrix up to which it runs as a dense int8 GEMM whatever its density
MAX_UNROLLED_CONV = 1 << 20  # entries of a conv's unrolled matrix up to which the int8 GEMM runs it


@_per_projection
def _int8_weights(proj: Projection, min_density: float = 0.02, max_entries: int = 1 << 24):
    """(W^T as int8, k) with W = (W^T)^T << k, or None when the weights do not fit int8.

    Mixed-sign Lava weights are even (sim/fixed_point.py), so they fit int8 after
    dropping their common low zero bits. With binary inputs torch._int_mm then sums
    them exactly in int32 — ~3x faster than a float32 matmul here, and without the
    float → int conversion. Very sparse matrices stay on CSR. A conv runs unrolled
    here while its matrix is small (measured: on 8×8 digits the int8 GEMM beats
    conv2d ~2x); a large one stays a weight-shared conv2d (its unrolled matrix
    would be tens of MB: the MNIST CNN's pool-composed layer is 2,048 × 9,216).
    """
    if proj.kind == "conv" and np.prod(proj.conv.out_shape) * np.prod(proj.conv.in_shape) > MAX_UNROLLED_CONV:
        return None
    m = proj.matrix()
    small = m.shape[0] * m.shape[1] <= SMALL_DENSE  # a dense int8 GEMM of a small matrix beats CSR at any density
    if m.shape[0] * m.shape[1] > max_entries or (m.nnz < min_density * m.shape[0] * m.shape[1] and not small) or m.nnz == 0:
        return None
    w = m.toarray().astype(np.int64)
    low = int(np.bitwise_or.reduce(np.abs(w[w != 0])))
    k = int((low & -low).bit_length() - 1)  # common trailing zero bits
    w = w >> k
    if np.abs(w).max() > 127:
        return None
    return torch.from_numpy(np.ascontiguousarray(w.T).astype(np.int8)), k


_prepared_weights = _per_projection(weight_tensor)

SPMM_MAX_DENSITY = 1 / 16  # the sparse kernel's cost ~ nnz, the int8 GEMM's ~ all entries: ~equal at 10 % (measured)


@_per_projection
def _spmm_weights(proj: Projection, max_density: float = SPMM_MAX_DENSITY):
    """The Lava-effective integer weights as CSR arrays (rowptr int64, col int32, val int32, n_src) for
    native/syn_step.c, or None when the matrix is too dense for it to beat the int8 GEMM
    or a weight does not fit int32 (then the int8 GEMM or the float matmul runs it).

    The kernel's cost is per synapse and sample, whatever the spike rate; the dense
    int8 GEMM does the work of the pruned synapses too (SMALL_DENSE). Measured on
    2 cores, 1,024 samples: the pruned RSNN's 800 × 800 recurrence at 1 % density
    ~8x faster than ``torch._int_mm``, a 1,000 × 1,000 one at 10 % on a par.
    """
    m = sp.csr_matrix(proj.matrix())
    m.sum_duplicates()
    n_tgt, n_src = m.shape
    if m.nnz == 0 or m.nnz > max_density * n_tgt * n_src or max(n_tgt, n_src) >= 2**31:
        return None
    data = np.asarray(m.data)
    if np.any(data != np.round(data)) or np.abs(data).max() >= 2**31:
        return None
    return (np.ascontiguousarray(m.indptr, dtype=np.int64), np.ascontiguousarray(m.indices, dtype=np.int32),
            np.ascontiguousarray(data, dtype=np.int32), n_src)


DENSE32_MAX_INPUTS = 64  # fan-in up to which graded input runs in native/syn_step.c rather than a float GEMM


@_per_projection
def _dense32_weights(proj: Projection, max_inputs: int = DENSE32_MAX_INPUTS):
    """W^T (n_in, n_out) int32 of the Lava-effective integer weights for native/syn_step.c's dense
    kernel, or None (many inputs: a float GEMM runs at its peak there; or a weight beyond int32).

    Exact because the engine calls it only without wraps (``_Synapses.no_wrap``): every sum is an int32.
    """
    w = np.asarray(proj.weight)
    if w.ndim != 2 or w.shape[1] > max_inputs or w.size == 0 or np.any(w != np.round(w)) or np.abs(w).max() >= 2**31:
        return None
    return torch.from_numpy(np.ascontiguousarray(w.T.astype(np.int32)))


@_per_projection
def _dense16_weights(proj: Projection):
    """The weights of :func:`_dense32_weights` as int16 pairs of input channels for the fused step's
    int16 multiply-adds (syn_core.h, nc_dense_rows16), or None where a weight is beyond int16."""
    wt = _dense32_weights(proj)
    if wt is None or wt.abs().max() >= 2**15:
        return None
    n_in, n_out = wt.shape
    w = torch.zeros((n_in + 1) // 2 * 2, n_out, dtype=torch.int16)
    w[:n_in] = wt.to(torch.int16)
    return w.reshape(-1, 2, n_out).transpose(1, 2).contiguous()  # [jp, i, h] = W[i, 2 jp + h]


@_per_projection
def _dense8_weights(proj: Projection):
    """(W' = W >> k as int8 fours of input channels, k) for the fused step's u8 × s8 multiply-adds
    (syn_core.h, nc_dense_rows8), or None where W' is beyond int8.

    k is the weights' common low zero bits (mixed-sign Lava weights are even: the 8-bit
    ones fit int8 after one bit); the kernel's shift and alpha take it back exactly
    (:meth:`_Synapses.input_spec`). ``w[jq, i, h] = W'[i, 4 jq + h]``, zero past n_in.
    """
    wt = _dense32_weights(proj)
    return None if wt is None else _int8_fours(wt.numpy().T)


BLOCK_MAX_TARGETS = 64  # a binary projection into at most this many neurons (a readout) runs as int8 fours in blocks


@_per_projection
def _binary8_weights(proj: Projection, max_targets: int = BLOCK_MAX_TARGETS):
    """:func:`_dense8_weights` of a binary projection into few neurons (a readout) for nc_run_blocks, whose
    int8 spikes (0/1: valid u8 input) it reads four at a time; None for many targets or a conv.

    The step loop runs these on the int8 GEMM; in blocks the spikes of a 32-sample block
    are at hand in cache, and the u8 kernel's work is ~n_src / 4 multiply-adds per sample.
    """
    if proj.kind not in ("dense", "sparse") or proj.shape()[0] > max_targets:
        return None
    w = proj.matrix().toarray()
    if w.size == 0 or np.any(w != np.round(w)) or np.abs(w).max() >= 2**31:
        return None
    return _int8_fours(w.astype(np.int64))


def _int8_fours(w: np.ndarray):
    """(W' = W >> k as int8 fours of input channels, k) of integer W (n_out, n_in), k its common low zero
    bits, or None where W' is beyond int8 (or W is all zeros): ``w8[jq, i, h] = W'[i, 4 jq + h]``, zero past n_in."""
    w = np.asarray(w, dtype=np.int64)
    nonzero = np.abs(w[w != 0])
    if nonzero.size == 0:
        return None
    low = int(np.bitwise_or.reduce(nonzero))
    k = (low & -low).bit_length() - 1  # common trailing zero bits
    w = w >> k
    if w.max() > 127 or w.min() < -128:
        return None
    n_out, n_in = w.shape
    w8 = np.zeros(((n_in + 3) // 4 * 4, n_out), dtype=np.int8)
    w8[:n_in] = w.T
    return torch.from_numpy(np.ascontiguousarray(w8.reshape(-1, 4, n_out).transpose(0, 2, 1))), k


@_per_projection
def _pooled_conv(proj: Projection, dtype: torch.dtype):
    """:func:`ops.pooled_conv` of the Lava-effective integer kernel (``_lava_effective``)."""
    return pooled_conv(np.asarray(proj.weight, dtype=np.int64), proj.conv, dtype)


class _Synapses:
    """A projection's weights and its one-step delay buffer.

    Kernels, chosen per projection: binary spikes through a sparse projection of at most
    ``SPMM_MAX_DENSITY`` run in native/syn_step.c dense over the batch (``spmm``: the int8
    GEMM would do the pruned synapses' work too); graded input through a dense projection of
    few channels runs there too (``dense32``/``dense16``). Their messages are deferred
    (:class:`_Deferred`): a LIF target on the fused C step sums them inside its step. Other
    binary projections take the int8 GEMM (``int8``), the rest a float matmul.
    """

    def __init__(self, proj: Projection, sf: SynapseFixed, max_input: float = 1.0, binary: bool = False,
                 nonnegative: bool = False):
        """``max_input``: the largest |x| the source sends; ``nonnegative``: no x is below 0 either
        (with ``max_input`` <= 255, 8-bit graded payloads: the fused step's u8 × s8 kernel)."""
        self.proj, self.exp = proj, int(sf.exp)
        self.int8 = self.spmm = self.dense32 = self.dense16 = self.dense8 = None
        self._max_input = max_input
        self.mm_dtype = None  # the float matmul's weights are made when first needed (_prepare_dense)
        eff = self._eff = _lava_effective(sf, proj)
        # float32 sums of integers are exact below 2^24: use them when the worst case stays there
        bound = self._bound = _row_l1_bound(eff) * max_input
        self.out_bound = math.ceil(bound * 2.0**self.exp)  # largest |message| this projection can send
        self.no_wrap = bound < 2**31 and self.out_bound < 2**31  # both int32 wraps are identities
        self.buf_dtype = torch.int32 if self.no_wrap else torch.int64
        self.binary = binary
        if binary and self.no_wrap and proj.kind == "sparse" and native.spmm_step() is not None:
            self.spmm = _spmm_weights(eff)  # None where the matrix is too dense for it to pay
        elif not binary and self.no_wrap and proj.kind == "dense" and native.dense_step() is not None:
            self.dense32 = _dense32_weights(eff)  # graded input, few channels: None where it does not apply
            self.dense16 = _dense16_weights(eff) if self.dense32 is not None else None
            if self.dense32 is not None and nonnegative and max_input <= 255:
                self.dense8 = _dense8_weights(eff)
        if self.spmm is None:
            self._prepare_dense()
        self.msg: Message | None = None  # set by accept() at step 0, first read at step 1
        self._spec: tuple | None = None  # the weights' part of input_spec, made on first use
        self._fours = None  # int8 fours of a binary projection into few neurons, once block_edge made them

    def _prepare_dense(self) -> None:
        """The int8 GEMM's weights, or the float matmul's (all but the sparse kernel's projections)."""
        eff, proj = self._eff, self.proj
        if self.binary and self.no_wrap:
            self.int8 = _int8_weights(eff)
        if self.int8 is None and self.mm_dtype is None:
            self.mm_dtype = torch.float32 if self._bound < 2**24 else torch.float64
            self.w = _prepared_weights(eff, self.mm_dtype)
            # pool-composed kernels run pooled: same sums (all partial sums stay within ``bound``)
            self.pooled = _pooled_conv(eff, self.mm_dtype) if proj.kind == "conv" else None

    def message(self) -> Message:  # type: ignore[return]
        """What the projection delivers this step, as (x, e): the message is ``x << e`` (a
        :class:`_Deferred` reads as that pair too)."""
        return self.msg

    def accept(self, s: torch.Tensor) -> None:
        """Take the source's output of this step: the message is computed now, or deferred
        (:class:`_Deferred`) where a native kernel can sum it inside the target's LIF step."""
        x = self._deferrable(s)
        self.msg = self._compute(s) if x is None else _Deferred(self, x)

    def _deferrable(self, s: torch.Tensor) -> torch.Tensor | None:
        """``s`` as the native kernels take it (int8 spikes, or int32/int64 graded rows), or None."""
        if self.spmm is not None:
            s = s.to(torch.int8)  # binary: 0/1 in any dtype converts exactly (a no-op for the neurons' int8 spikes)
            return s.reshape(s.shape[0], -1).contiguous()
        if self.dense32 is not None:
            if s.dtype not in (torch.int64, torch.int32):
                if s.is_floating_point() or s.is_complex() or s.dtype == torch.bool:
                    return None  # the float matmul's input
                s = s.to(torch.int32)  # int8, uint8, int16: exact
            # read where it lies (a step's slice of the frames): simulate() does not change its frames while it runs,
            # and copies what a deferred message could still read after it returns (_Neurons.own_inputs)
            return s if s.dim() == 2 and s.stride(1) == 1 else s.reshape(s.shape[0], -1).contiguous()
        return None

    def fusable(self, x: torch.Tensor, B: int, n: int) -> bool:
        """Whether :meth:`input_spec` of ``x`` is valid for a fused step of a (B, n) population (the C side trusts it)."""
        if x.dim() != 2 or x.shape[0] != B or x.stride(1) != 1 or (B > 1 and x.stride(0) < x.shape[1]):
            return False
        if self.spmm is not None:
            rowptr, col, val, n_src = self.spmm
            return (x.dtype == torch.int8 and x.shape[1] == n_src and x.is_contiguous() and rowptr.shape == (n + 1,)
                    and col.shape == val.shape == (int(rowptr[-1]),))
        if self.dense32 is not None:
            return x.dtype in (torch.int32, torch.int64) and self.dense32.shape == (x.shape[1], n)
        return False

    def input_spec(self, x: torch.Tensor):
        """``x`` through this projection as lif_step.c's ``nc_input_t``: act += alpha · (sums >> shift)."""
        if self._spec is None:
            self._spec = self._weights_spec()
        kind = 0 if self.spmm is not None else (2 if x.dtype == torch.int64 else 1)
        return native.Input(x.data_ptr(), x.stride(0), x.shape[1], *self._spec[:4], kind, *self._spec[4:])

    def _weights_spec(self) -> tuple:
        """The weights' part of :meth:`input_spec` (rowptr, col, val, wt, shift, alpha, weight format), made once:
        the same on every step, and numpy's ``ctypes.data`` costs more than the step's other fields together."""
        e = max(self.exp, 0)
        alpha = (1 << (e + fx.ACT_SHIFT)) & 0xFFFFFFFF  # (sums << e) << 6 modulo 2^32
        shift = min(max(-self.exp, 0), 31)  # Lava's floor shift of a negative exponent (int32 sums: >> 31 is the floor)
        if self.spmm is not None:
            rowptr, col, val, _ = self.spmm
            return rowptr.ctypes.data, col.ctypes.data, val.ctypes.data, None, shift, alpha, 0
        if self.dense8 is not None:
            return self._fours_spec(*self.dense8)
        w16 = self.dense16 is not None and self._max_input < 2**15  # every |x| fits int16 too
        return None, None, None, (self.dense16 if w16 else self.dense32).data_ptr(), shift, alpha, int(w16)

    def _fours_spec(self, w8: torch.Tensor, k: int) -> tuple:
        """:meth:`_weights_spec` of int8 fours (nc_dense_rows8) of W >> k: the k low zero bits go to the exponent."""
        e8 = self.exp + k
        return None, None, None, w8.data_ptr(), min(max(-e8, 0), 31), (1 << (max(e8, 0) + fx.ACT_SHIFT)) & 0xFFFFFFFF, 2

    def block_edge(self, source: int, frames_kind: int):
        """This projection as nc_run_blocks' ``nc_edge_t`` from ``source`` (-1: frames of ``frames_kind``,
        0 int8, 1 int32, 2 int64; else a population's index), or None where the blocks cannot run it."""
        if not self.no_wrap:
            return None
        if source < 0:  # the kernels of the step loop's fused step, for frames of the dtype they take
            if not ((self.spmm is not None and frames_kind == 0) or (self.dense32 is not None and frames_kind > 0)):
                return None
            fields, kind = self._weights_spec(), 0 if self.spmm is not None else frames_kind
        elif self.spmm is not None:
            fields, kind = self._weights_spec(), 0
        elif (fours := _binary8_weights(self._eff)) is not None:
            self._fours = fours  # kept alive with the pointer the edge holds
            fields, kind = self._fours_spec(*fours), 3
        else:
            return None
        return native.Edge(native.Input(None, 0, self.proj.shape()[1], *fields[:4], kind, *fields[4:]), source, 0)

    def _compute(self, s: torch.Tensor) -> Message:
        """The message of source output ``s`` as a tensor."""
        if self.spmm is not None:  # binary spikes × CSR weights in C, dense over the batch (exact int32 sums)
            acc = self._spmm_accept(s)
            if acc is not None:
                return self._scaled(acc, self.exp)
            self.spmm = self._spec = None  # the kernel could not allocate its scratch: the dense kernels from now on
            self._prepare_dense()
        if self.dense32 is not None and (acc := self._dense32_accept(s)) is not None:
            return (acc, self.exp) if self.exp >= 0 else (acc, 0)  # the kernel shifted a negative exponent
        if self.int8 is not None:  # binary spikes × int8 weights, accumulated exactly in int32
            w8, k = self.int8
            # (acc << k) shifted by weight_exp is one shift by k + weight_exp (floor(a·2^k / 2^m) = floor(a / 2^(m-k)))
            return self._scaled(torch._int_mm(s.to(torch.int8), w8), k + self.exp)
        x = s.to(self.mm_dtype)
        if self.pooled is not None:
            w, d, stride, padding = self.pooled
            spec = self.proj.conv
            x = F.avg_pool2d(x.reshape(x.shape[0], *spec.in_shape), d, d, divisor_override=1)  # a sum pool
            acc = F.conv2d(x, w, None, stride, padding, 1, spec.groups).reshape(x.shape[0], -1).to(self.buf_dtype)
        else:
            acc = project(self.proj, self.w, x).to(self.buf_dtype)
        if self.no_wrap:
            return self._scaled(acc, self.exp)
        # graded input: Lava's int32 ``weights.dot(s_in)`` wraps before the shift; the
        # binary path sums in int64 — identical unless fan-in exceeds ~8 M neurons
        return fx.wrap32(fx.shift(fx.wrap32(acc), self.exp)), 0

    def _spmm_accept(self, s: torch.Tensor) -> torch.Tensor | None:
        """``s @ W^T`` as int32 by native/syn_step.c, or None if the kernel failed (nothing else changed)."""
        rowptr, col, val, n_src = self.spmm
        n_tgt = rowptr.shape[0] - 1
        s = s.to(torch.int8)  # binary: 0/1 in any dtype converts exactly (a no-op for the neurons' int8 spikes)
        s = s.reshape(s.shape[0], -1).contiguous()
        B = s.shape[0]
        out = torch.empty(B, n_tgt, dtype=torch.int32)
        # the C side trusts these (not an assert: memory safety must hold under python -O too)
        if not (s.shape[1] == n_src and col.shape == val.shape == (int(rowptr[-1]),)):
            raise RuntimeError(f"internal error: projection {self.proj.name!r} reached the sparse kernel with unexpected buffers")
        fn = native.spmm_step()
        if fn is None or fn(s.data_ptr(), B, n_src, rowptr.ctypes.data, col.ctypes.data, val.ctypes.data,
                            out.data_ptr(), n_tgt, torch.get_num_threads()) != 0:
            return None
        return out

    def _dense32_accept(self, x: torch.Tensor) -> torch.Tensor | None:
        """``(x @ W^T) >> -exp`` (``exp`` < 0; else the sums) as int32 by native/syn_step.c, or None for
        inputs it does not take (floats: the float matmul runs them)."""
        if x.dtype not in (torch.int64, torch.int32):
            if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
                return None
            x = x.to(torch.int32)  # int8, uint8, int16: exact
        wt = self.dense32
        n_in, n_out = wt.shape
        if x.dim() != 2 or x.shape[1] != n_in or x.stride(1) != 1:
            x = x.reshape(x.shape[0], -1).contiguous()
        B = x.shape[0]
        # the C side trusts these (not an assert: memory safety must hold under python -O too)
        if not (x.shape[1] == n_in and x.stride(1) == 1 and (B <= 1 or x.stride(0) >= n_in)):
            raise RuntimeError(f"internal error: projection {self.proj.name!r} reached the dense kernel with unexpected buffers")
        out = torch.empty(B, n_out, dtype=torch.int32)
        fn = native.dense_step()
        if fn is None:
            return None
        fn(x.data_ptr(), int(x.dtype == torch.int64), x.stride(0), B, n_in, wt.data_ptr(), n_out,
           min(max(-self.exp, 0), 31), out.data_ptr(), torch.get_num_threads())
        return out

    @staticmethod
    def _scaled(acc: torch.Tensor, exp: int) -> Message:
        # a left shift is left to the receiver, which folds it into its add (no extra pass)
        return (acc, exp) if exp >= 0 else (acc >> -exp, 0)


class _States(Mapping):
    """Final (u, v) per population, computed when looked up: on the fast path ``u`` is
    rebuilt from the last messages, which most callers never need (1 ms of a 30 ms CNN run)."""

    def __init__(self, neurons: dict[str, _Neurons]) -> None:
        self._neurons, self._done = neurons, {}

    def __getitem__(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in self._done:
            self._done[name] = self._neurons[name].state()
        return self._done[name]

    def __iter__(self):
        return iter(self._neurons)

    def __len__(self) -> int:
        return len(self._neurons)


_FRAME_KINDS = {torch.int8: 0, torch.int32: 1, torch.int64: 2}  # nc_run_blocks' frames_kind


def _run_blocks(net: Network, frames: torch.Tensor, neurons: dict[str, _Neurons], incoming: dict[str, list[_Synapses]],
                record: bool) -> SimResult | None:
    """The whole periodic run in one native call (nc_run_blocks), or None where it does not apply.

    A block of 32 samples goes through every step with its state in cache, instead of the whole
    batch's state through memory once a step and Python between steps (~2x on the pruned RSNN).
    It applies where every population runs on the C LIF step and every projection on its kernels:
    the step loop's fused inputs (sparse spikes, few-channel graded frames) and binary projections
    into few neurons (:func:`_binary8_weights`: a readout). Same functions, same integers.
    """
    fn = native.run_blocks()
    B, P = frames.shape[:2]
    f = frames.reshape(B, P, -1) if B and P else frames
    kind = _FRAME_KINDS.get(f.dtype)
    if fn is None or kind is None or not B or f.stride(2) != 1 or f.shape[2] != net.population(net.input).size:
        return None
    index = {name: i for i, name in enumerate(neurons)}
    pops, edges, bufs = [], [], {}
    for name, nrn in neurons.items():
        made = nrn.block_pop(record, P)
        if made is None:
            return None
        pop, bufs[name] = made
        pop.first_edge, pop.n_edges = len(edges), len(incoming[name])
        for syn in incoming[name]:
            src = syn.proj.source
            if syn.proj.shape() != (nrn.pop.size, net.population(src).size):  # the C side trusts the sizes
                return None
            edge = syn.block_edge(-1 if src == net.input else index[src], kind)
            if edge is None:
                return None
            edges.append(edge)
        pops.append(pop)
    # every pointer above stays valid through the call: bufs, the neurons and the synapses hold what they point at
    if fn((native.Pop * len(pops))(*pops), len(pops), (native.Edge * max(len(edges), 1))(*edges), f.data_ptr(), kind,
          f.stride(0), f.stride(1), B, P, fx.DECAY_SHIFT, fx.UV_MAX, torch.get_num_threads()) != 0:
        return None
    counts = {k: b["counts"] for k, b in bufs.items() if "counts" in b}
    return SimResult(
        readout=bufs[net.output]["v"],
        spike_counts={k: c.to(torch.int32) if c.dtype == torch.int8 else c for k, c in counts.items()},
        spike_trains={k: b["trains"].bool() for k, b in bufs.items() if "trains" in b} if record else None,
        state={k: (b["u"], b["v"]) for k, b in bufs.items()},
        readouts_at={},
    )


def _repeats_first_frame(frames: torch.Tensor) -> bool:
    """Whether every step's frame equals the first (direct input), settled by the second frame
    alone for most inputs that change: a 30th of the full comparison (~1 ms per 1,024 samples)."""
    if frames.stride(1) == 0:
        return True
    return bool((frames[:, 1:2] == frames[:, :1]).all()) and bool((frames == frames[:, :1]).all())


def simulate(
    net: Network,
    frames: torch.Tensor,
    mode: Literal["fixed"] = "fixed",
    *,
    record: bool = False,
    readout_steps: tuple[int, ...] = (),
) -> SimResult:
    """Run ``frames`` (B, P, n_in) through ``net``; P is the period (ir/graph.py), in the network's schedule.

    ``readout_steps``: steps after which the readout's ``v`` is also kept. A run
    of ``T`` time steps is a prefix of a longer one (same input on every step,
    rate frames drawn in step order), so one long run gives the readout of every
    shorter ``T'`` at ``sim.run.readout_step`` (``T' + depth - 1``; ``T' - 1`` pipelined): a sweep costs one run.
    The engine is fixed point only (``mode`` names that at call sites); the float model is
    :class:`~.float_sim.FloatSimulator`.
    """
    if mode != "fixed":
        raise NeurocompileError(f"the engine simulates fixed point only (mode {mode!r}); use sim.float_sim.FloatSimulator")
    B, P, _ = frames.shape
    readouts_at: dict[int, torch.Tensor] = {}
    # direct input repeats one frame (encode() makes it a stride-0 view): its projections need
    # computing once per sample, not every step
    static_input = _repeats_first_frame(frames)
    distinct = frames[:, :1] if static_input else frames
    lo, hi = torch.aminmax(distinct) if distinct.numel() else (torch.tensor(0), torch.tensor(1))
    max_in = float(max(abs(lo), abs(hi)))
    binary_in = float(lo) >= 0 and float(hi) <= 1
    synapses = [
        _Synapses(pr, net.synapse_fixed(pr.name), max_in, binary=binary_in, nonnegative=float(lo) >= 0) if pr.source == net.input
        else _Synapses(pr, net.synapse_fixed(pr.name), 1.0, binary=True)
        for pr in net.projections
    ]
    incoming = {p.name: [s for s in synapses if s.proj.target == p.name] for p in net.neurons}
    in_bound = {name: sum(getattr(s, "out_bound", math.inf) for s in syns) for name, syns in incoming.items()}
    pipelined = net.settings.schedule == "pipelined"
    # spikes per neuron and period: P - 1 integrating steps periodic, P pipelined (the counters' width)
    neurons = {p.name: _Neurons(p, net.neuron_fixed(p.name), B, in_bound[p.name], P + pipelined) for p in net.neurons}
    # direct input: the input's projections deliver the same message on every step after the reset
    # the whole run in blocks where it applies (periodic, frames that change, no intermediate readouts)
    done = None if pipelined or static_input or readout_steps else _run_blocks(net, frames, neurons, incoming, record)
    if done is not None:
        return done
    static = {name: [static_input and syn.proj.source == net.input for syn in syns] for name, syns in incoming.items()}
    counts = {name: n.counts for name, n in neurons.items() if n.counts is not None}
    trains = {name: [] for name in counts} if record else None
    outgoing = {name: [s for s in synapses if s.proj.source == name] for name in (net.input, *neurons)}

    def send(name: str, s: torch.Tensor, t: int) -> None:
        for syn in outgoing[name]:
            if not (static_input and t > 0 and name == net.input):
                syn.accept(s)

    for t in range(P):
        out = {net.input: frames[:, t]}
        if pipelined:  # window coordinates (ir/graph.py): step t of a population takes step t of its sources
            send(net.input, out[net.input], t)
        for name, nrn in neurons.items():
            if t == 0:
                s = nrn.reset()
            if t > 0 or pipelined:  # periodic: the reset step integrates nothing; pipelined: reset, then integrate
                s = nrn.step([syn.message() for syn in incoming[name]], static[name], final=t == P - 1)
            out[name] = s
            if pipelined:
                send(name, s, t)
            if record and name in trains:
                trains[name].append(s.detach().bool())
        if not pipelined:  # one step of delay: what was sent at t arrives at t + 1
            for name, s in out.items():
                send(name, s, t)
        if t in readout_steps:
            readouts_at[t] = neurons[net.output].state()[1].clone()
    for nrn in neurons.values():
        nrn.own_inputs()
    # integers stay in the dtype they were computed in (int32 on the fast path: exact, and a
    # widening copy of every state took 10 % of a CNN run)
    state = _States(neurons)
    return SimResult(
        readout=state[net.output][1],
        spike_counts={k: c.to(torch.int32) if c.dtype == torch.int8 else c for k, c in counts.items()},
        spike_trains={k: torch.stack(v, 1) for k, v in trains.items()} if record else None,
        state=state,
        readouts_at=readouts_at,
    )
