"""What a quantised :class:`~neurocompile.ir.Network` becomes on Lava, decided without importing Lava.

The plan is the validated, integer form of the network: one neuron entry per
non-input population, one synapse entry per projection (Lava ``Dense`` for
``dense``, ``Sparse`` for ``sparse``, ``Conv`` for ``conv`` where Lava's Conv
computes exactly the IR's projection -- see :func:`conv_is_exact` -- and
``Sparse`` for the other conv projections), and the input encoding read from
the frames. Keeping it free of Lava means the backend can reject a
bad network in the caller's process, before a simulation subprocess is
started, and :mod:`neurocompile_lava.describe` works where Lava is not installed.

Validation is strict exactly where Lava would silently compute something
other than the IR's equations (float weights truncated, weights clipped to 8
bits, ``bias_mant`` stored in an int16 Var); widths that only matter on the
chip (13-bit bias mantissa, 17-bit threshold, 24-bit graded payloads, the
weight-exponent range) are reported by
:func:`neurocompile_lava.describe.describe_lowering` instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from neurocompile.errors import NeurocompileError
from neurocompile.ir import ConvSpec, Network, Population, Projection
from neurocompile.target import LOIHI2

ConnProcess = Literal["Dense", "Sparse", "Conv"]
Schedule = Literal["periodic", "pipelined"]
Precision = Literal["fixed_pt", "floating_pt"]

DECAY_MAX = LOIHI2.param_ranges["du"][1]  # du, dv: 12-bit unsigned (lava/proc/lif/models.py PyLifModelBitAcc docstring)
INT16 = (-(1 << 15), (1 << 15) - 1)  # AbstractPyLifModelFixed stores bias_mant / bias_exp as np.int16
INT32 = (-(1 << 31), (1 << 31) - 1)  # ports and states are np.int32 in Lava's fixed-point models
CONV_MESSAGE_MAX = LOIHI2.message_max  # PyConvModelFixed.clamp_precision: signed_clamp(x, bits=24) wraps beyond
INT8_MAX = 127  # AbstractPyConvModel: kernel_size, stride, padding, groups are np.int8 Vars


@dataclass(frozen=True)
class NeuronPlan:
    """Parameters of one PeriodicLIF process, in Lava fixed-point LIF units."""

    population: str
    label: str  # file-safe name of its records
    size: int
    readout: bool  # never fires (IR kind "readout")
    record_v: bool  # the network's output: its v is read at each period's end
    reset: Literal["subtract", "zero"]
    du: int | np.ndarray  # one value, or int64 per neuron (heterogeneous time constants)
    dv: int | np.ndarray
    vth: int | np.ndarray
    bias_mant: np.ndarray  # int64, per neuron; 0 for readouts (the decoder adds their bias)
    bias_exp: int
    window: int = 0  # pipelined schedule: the population's depth, the step of the period its window starts at

    def float_params(self) -> dict:
        """The same neuron in Lava's floating-point LIF units (``neurocompile.target``'s float equivalents).

        u and v are scaled by 1/64 (the fixed model's ``a_in << 6`` alignment),
        so ``vth`` keeps its value and the bias becomes ``bias_mant·2^bias_exp / 64``.
        """
        f = LOIHI2.float_equivalents(self.vth, self.bias_mant, self.bias_exp, self.du, self.dv)
        return {"du": f["du"], "dv": f["dv"], "vth": f["vth"], "bias_mant": f["bias"], "bias_exp": 0.0}


@dataclass(frozen=True)
class SynapsePlan:
    """One Dense, Sparse or Conv process."""

    projection: str
    source: str
    target: str
    ir_kind: Literal["dense", "sparse", "conv"]
    process: ConnProcess
    weights: np.ndarray | sp.csr_matrix  # int32, (n_target, n_source); Conv: the kernel, IR layout (out, in/groups, kh, kw)
    weight_exp: int
    num_message_bits: int  # 0: binary spikes; > 0: graded payloads (Lava multiplies them in)
    sign_mode: Literal["excitatory", "inhibitory", "mixed"]
    odd_mixed: int  # mixed-sign weights Lava's truncation will make even
    conv: ConvSpec | None = None  # Conv only: the IR's geometry

    @property
    def synapses(self) -> int:
        """Connections it makes (a Conv's shared kernel counted at every output position, padding included)."""
        if self.conv is not None:
            return int(np.prod(self.conv.out_shape)) * int(np.prod(self.weights.shape[1:]))
        return int(self.weights.nnz) if sp.issparse(self.weights) else int(np.count_nonzero(self.weights))

    def float_weights(self) -> np.ndarray | sp.csr_matrix:
        """Weights for Lava's float Dense/Sparse, which ignore ``weight_exp``: ``w·2^weight_exp``.

        Uses the weights the fixed-point model would really apply (mixed-sign
        ones made even), so both precisions see the same synapses.
        """
        w = LOIHI2.lava_weights(self.weights, mode=self.sign_mode)  # a Conv's kernel: already in its synapses' mode
        return w.astype(np.float64) * 2.0**self.weight_exp


@dataclass(frozen=True)
class LoweringPlan:
    period: int
    samples: int
    input_population: str
    input_size: int
    input_bits: int  # 0 for binary (rate-coded) input, else graded payload width incl. sign
    neurons: tuple[NeuronPlan, ...]
    synapses: tuple[SynapsePlan, ...]
    schedule: Schedule = "periodic"  # ir/graph.py; pipelined lowers to stock LIFReset processes

    @property
    def steps(self) -> int:
        """Steps to run: pipelined, the last window ends ``window`` steps after the last period."""
        return self.period * self.samples + (max((n.window for n in self.neurons), default=0) if self.schedule == "pipelined" else 0)


# -- weights --------------------------------------------------------------


def _integer_values(name: str, what: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    if values.dtype.kind != "f" or not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise NeurocompileError(f"{name}: {what} must be integers (Lava's fixed-point models truncate floats silently); quantise the network first")
    return values.astype(np.int64)


def conv_is_exact(kernel: np.ndarray, conv: ConvSpec, weight_exp: int, max_payload: int) -> bool:
    """Whether Lava's stock Conv (fixed_pt) computes exactly what the IR's conv projection does.

    lava/proc/conv/models.py PyConvModelFixed: never applies ``weight_exp``,
    wraps messages at 24 bits (``signed_clamp``) and sums in float32
    (``utils.conv`` through torch), and keeps its geometry (kernel size,
    stride, padding, groups) in int8 Vars, which wrap from 128 on (groups = 128
    gave all-zero messages). So: exponent 0, a worst-case message within 24
    bits, geometry below 128 -- then it is the plain integer convolution the
    reference computes (tests/test_lava_stock.py holds the two against each other).
    ``kernel``: the weights Lava would use (``LOIHI2.synapse_weights``).
    """
    magnitude = np.abs(kernel)
    worst = int(magnitude.reshape(magnitude.shape[0], -1).sum(1).max()) * max_payload if kernel.size else 0
    geometry = [*kernel.shape[2:], *conv.stride, *conv.padding, conv.groups]
    return int(weight_exp) == 0 and worst <= CONV_MESSAGE_MAX and max(geometry) <= INT8_MAX


def _synapse_plan(net: Network, proj: Projection, input_bits: int, input_max: int) -> SynapsePlan:
    sf = net.synapse_fixed(proj.name)
    n_out, n_in = net.population(proj.target).size, net.population(proj.source).size
    source_max = input_max if proj.source == net.input else 1
    process: ConnProcess = "Dense" if proj.kind == "dense" else "Sparse"
    if proj.kind == "conv":
        raw = _integer_values(f"projection {proj.name!r}", "weights", sf.weight)
        if raw.ndim != 4 or raw.shape[0] != proj.conv.out_shape[0]:
            raise NeurocompileError(f"projection {proj.name!r}: conv kernel must be (out channels, in/groups, kh, kw), got shape {raw.shape}")
    if process == "Dense":
        w = _integer_values(f"projection {proj.name!r}", "weights", sf.weight)
        if w.ndim != 2:
            raise NeurocompileError(f"projection {proj.name!r}: dense weights must be 2-D (out, in), got shape {w.shape}")
        data = w
    else:
        m = proj.matrix(sf.weight)
        m.data = _integer_values(f"projection {proj.name!r}", "weights", m.data)
        w = m
        data = m.data
    if w.shape != (n_out, n_in):
        raise NeurocompileError(f"projection {proj.name!r} has weights of shape {w.shape}, expected {(n_out, n_in)} ({proj.target} × {proj.source})")
    # Lava infers the sign mode over the whole matrix; implicit zeros of a
    # sparse matrix never change the outcome (0 bounds every mode). A conv is
    # validated as the matrix Sparse would get, whichever process runs it.
    mode = LOIHI2.sign_mode(data)
    lo, hi = LOIHI2.clip_range[mode]
    if data.size and (data.min() < lo or data.max() > hi):
        raise NeurocompileError(
            f"projection {proj.name!r}: {mode} weight mantissas must lie in [{lo}, {hi}] (Loihi 2's {LOIHI2.format.weight_bits}-bit synapses; Lava would clip them), got [{data.min()}, {data.max()}]"
        )
    if isinstance(sf.exp, (bool, float)) or int(sf.exp) != sf.exp:
        raise NeurocompileError(f"projection {proj.name!r}: weight_exp must be an integer, got {sf.exp!r}")
    odd = int(np.count_nonzero(data % 2)) if mode == "mixed" else 0
    if proj.kind == "conv":
        kernel = LOIHI2.synapse_weights(proj, sf.weight, matrix=w)  # what Sparse would apply, in the kernel's layout
        if conv_is_exact(kernel, proj.conv, sf.exp, source_max):
            process, w = "Conv", kernel  # Lava's Conv neither truncates nor infers a sign mode itself
    if proj.source == net.input:
        bits = input_bits
    else:
        # binary spikes; on Sparse sent as 1-bit graded payloads: Sparse computes graded input
        # as one sparse dot product, which was measured faster than its binary path (lava-nc 0.10.0)
        bits = 1 if process == "Sparse" else 0
    w32 = w.astype(np.int32)
    if sp.issparse(w32):
        w32 = sp.csr_matrix(w32)
    return SynapsePlan(proj.name, proj.source, proj.target, proj.kind, process, w32, int(sf.exp), bits, mode, odd,
                       proj.conv if process == "Conv" else None)


# -- neurons --------------------------------------------------------------


def _per_neuron_ints(where: str, field: str, value, size: int, lo: int, hi: int, why: str) -> int | np.ndarray:
    """An integer parameter as one int (all neurons alike) or an int64 vector, each in [lo, hi]."""
    v = np.asarray(value)
    if v.ndim > 1 or (v.ndim == 1 and v.size not in (1, size)):
        raise NeurocompileError(f"{where}: {field} must be one value or {size} values, got shape {v.shape}")
    ints = _integer_values(where, field, v.reshape(-1))
    if ints.size and (ints.min() < lo or ints.max() > hi):
        raise NeurocompileError(f"{where}: {field} must be integers in [{lo}, {hi}] ({why}), got [{ints.min()}, {ints.max()}]")
    return int(ints[0]) if ints.size and bool(np.all(ints == ints[0])) else ints.astype(np.int64)


def _neuron_plan(net: Network, index: int, pop: Population, window: int = 0) -> NeuronPlan:
    if pop.kind not in ("spiking", "readout"):
        raise NeurocompileError(f"population {pop.name!r} has kind {pop.kind!r}; only the network's inputs may have kind 'input'")
    q = net.neuron_fixed(pop.name)
    where = f"population {pop.name!r}"
    decays = {f: _per_neuron_ints(where, f, getattr(q, f), pop.size, 0, DECAY_MAX,
                                  f"{LOIHI2.format.decay_bits}-bit decay") for f in ("du", "dv")}
    vth = _per_neuron_ints(where, "vth", q.vth, pop.size, 0, LOIHI2.param_ranges["vth"][1],
                           f"{LOIHI2.format.vth_bits} bits; Lava's vth << {LOIHI2.threshold_shift} misbehaves beyond")
    LOIHI2.check_neuron_params(pop.name, q, pop.size)  # what is left: one bias per neuron
    readout = pop.kind == "readout"
    if readout:
        bias = np.zeros(pop.size, np.int64)  # ir/graph.py: the decoder adds a readout's bias, not the chip
        bias_exp = 0
    else:
        bias = np.broadcast_to(_integer_values(where, "bias_mant", np.asarray(q.bias_mant)), (pop.size,)).copy()
        if bias.size and (bias.min() < INT16[0] or bias.max() > INT16[1]):
            raise NeurocompileError(
                f"{where}: bias_mant must fit 16 bits for Lava (its fixed-point LIF stores it as int16 and would wrap it), got [{bias.min()}, {bias.max()}]; raise bias_exp instead"
            )
        if int(q.bias_exp) != q.bias_exp or not -31 <= q.bias_exp <= 31:
            raise NeurocompileError(f"{where}: bias_exp must be an integer shift in [-31, 31], got {q.bias_exp!r}")
        bias_exp = int(q.bias_exp)
    return NeuronPlan(
        population=pop.name,
        label=f"p{index}",
        size=pop.size,
        readout=readout,
        record_v=pop.name == net.output,
        reset=pop.reset,
        du=decays["du"],
        dv=decays["dv"],
        vth=vth,
        bias_mant=bias,
        bias_exp=bias_exp,
        window=window,
    )


# -- input ----------------------------------------------------------------


def check_frames(net: Network, frames: np.ndarray) -> np.ndarray:
    """Frames as an int64 (samples, period, n_in) array, or a NeurocompileError saying what is wrong."""
    frames = np.asarray(frames)
    n_in = net.population(net.input).size
    if frames.ndim != 3 or frames.shape[0] < 1 or frames.shape[1] < 1 or frames.shape[2] != n_in:
        raise NeurocompileError(f"frames must have shape (samples ≥ 1, period ≥ 1, {n_in}), got {frames.shape}")
    frames = _integer_values("frames", "input payloads", frames)
    if frames.size and (frames.min() < INT32[0] or frames.max() > INT32[1]):
        raise NeurocompileError("frames: input payloads must fit 32-bit integers")
    return frames


def payload_bits(frames: np.ndarray) -> int:
    """0 when every payload is 0 or 1 (binary spikes), else the graded width in bits (sign included)."""
    if frames.size == 0 or (frames.min() >= 0 and frames.max() <= 1):
        return 0
    lo, hi = int(frames.min()), int(frames.max())
    return max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0) + (1 if lo < 0 else 0)


# -- the plan -------------------------------------------------------------


def plan_lowering(net: Network, frames: np.ndarray) -> LoweringPlan:
    """Validate ``net`` and ``frames`` and decide every Lava process and parameter."""
    net.validate()
    if not net.quantized:
        raise NeurocompileError("the network is not quantised; run the quantize pass before a Lava run")
    frames = check_frames(net, frames)
    bits = payload_bits(frames)
    schedule = net.settings.schedule
    windows = net.depths() if schedule == "pipelined" else {}
    neurons = tuple(_neuron_plan(net, i, p, windows.get(p.name, 0)) for i, p in enumerate(net.neurons, start=1))
    input_max = int(np.abs(frames).max()) if frames.size else 0
    synapses = tuple(_synapse_plan(net, pr, bits, input_max) for pr in net.projections)
    plan = LoweringPlan(
        period=int(frames.shape[1]),
        samples=int(frames.shape[0]),
        input_population=net.input,
        input_size=int(frames.shape[2]),
        input_bits=bits,
        neurons=neurons,
        synapses=synapses,
        schedule=schedule,
    )
    if schedule == "pipelined":
        check_stock(plan, input_max)
    return plan


# -- the pipelined schedule on stock processes ------------------------------

READOUT_VTH = LOIHI2.param_ranges["vth"][1]  # a stock LIFReset readout must never fire: the largest threshold


def check_stock(plan: LoweringPlan, input_max: int) -> None:
    """What Lava's stock ``LIFReset`` needs to run a pipelined plan exactly, or one NeurocompileError.

    LIFReset resets ``v`` to zero and takes one ``du``, ``dv`` and ``vth`` per
    process (lava/proc/lif/process.py); the readout is a LIFReset too, whose
    ``v`` must stay at or below ``READOUT_VTH << 6`` for a whole window so
    that it never fires (bounded as in the engine: with inputs of at most A,
    ``|u| <= 64·A·4096/(du+1)`` and ``|v| <= P·|u|``; its bias is the decoder's).
    """
    for n in plan.neurons:
        where = f"population {n.population!r}"
        if not n.readout and n.reset != "zero":
            raise NeurocompileError(f"{where} resets by subtraction, but the pipelined schedule lowers to Lava's LIFReset, "
                                    "which resets to zero; fine-tune with --reset zero or use the periodic schedule")
        for f in ("du", "dv", "vth"):
            if not isinstance(getattr(n, f), int):
                raise NeurocompileError(f"{where} has one {f} per neuron; Lava's LIFReset takes one per process (use the periodic schedule)")
        if n.readout:
            fan_in = sum(_row_bound(s, input_max if s.source == plan.input_population else 1)
                         for s in plan.synapses if s.target == n.population)
            u_max = 64 * fan_in * 4096 / (n.du + 1)
            if plan.period * u_max >= READOUT_VTH << 6:  # a readout's bias is the decoder's (0 here)
                raise NeurocompileError(f"{where}: the readout's v could reach the largest threshold ({READOUT_VTH} << 6) within a "
                                        f"window of {plan.period} steps, and a stock LIFReset readout would then fire; use the periodic schedule")


def _row_bound(s: SynapsePlan, payload: int) -> float:
    """The largest |message| the projection can send to one neuron: max row L1 of the weights Lava applies, times the payload."""
    w = LOIHI2.lava_weights(s.weights, mode=s.sign_mode)
    if s.process == "Conv":
        rows = np.abs(w).reshape(w.shape[0], -1).sum(1)
    else:
        rows = np.asarray(abs(w).sum(1)).ravel()
    return float(rows.max(initial=0)) * payload * 2.0**s.weight_exp
