"""Which Lava processes a network lowers to, and whether each would run on stock Loihi 2.

Derived from the :class:`~neurocompile_lava.plan.LoweringPlan`, so it needs
no Lava import and says exactly what a build will instantiate. "Stock
Loihi 2" means: an existing Lava process with a model for Loihi 2 (via
lava-loihi) whose parameters fit the chip's registers; nothing here could be
checked on hardware (lava-loihi is not installed).
"""
from __future__ import annotations

import numpy as np

from neurocompile.ir import Network
from neurocompile.target import LOIHI2
from neurocompile_lava.plan import LoweringPlan, SynapsePlan, plan_lowering

# Loihi 2 widths that the CPU simulation does not enforce (reported, not rejected)
LOIHI2_BIAS_MANT = LOIHI2.bias_mant_range
LOIHI2_BIAS_EXP = LOIHI2.bias_exp_range
LOIHI2_VTH_MAX = LOIHI2.param_ranges["vth"][1]
LOIHI2_WEIGHT_EXP = LOIHI2.weight_exp_range
LOIHI2_MESSAGE_BITS = LOIHI2.message_bits
_FMT = LOIHI2.format


def _out_of(values: np.ndarray, lo: int, hi: int) -> bool:
    return bool(values.size) and (values.min() < lo or values.max() > hi)


def describe_lowering(net: Network, frames: np.ndarray | None = None) -> list[dict]:
    """Which Lava processes a build uses, how many, and whether each runs on stock Loihi 2.

    ``frames`` decide whether the input is binary or graded (and their period the
    pipelined readout's bound); without them the network's ``settings.encoding``
    is used ("rate" → binary) over one period of the network's schedule.
    Returns one dict per process class: ``process``, ``module``, ``count``,
    ``stock_loihi2`` and a one-paragraph ``note``.
    """
    if frames is None:
        graded = net.settings.encoding != "rate"
        n_in = net.population(net.input).size
        frames = np.full((1, net.period() if net.settings.timesteps else 1, n_in), 255 if graded else 1, np.int64)
    plan = plan_lowering(net, frames)
    rows = [_describe_source(plan)]
    if plan.schedule == "pipelined":
        rows += _describe_stock_neurons(plan)
    else:
        rows.append(_describe_neurons(plan))
    for process in ("Dense", "Sparse", "Conv"):
        syn = [s for s in plan.synapses if s.process == process]
        if syn:
            rows.append(_describe_synapses(process, syn, plan.input_population))
    return rows


def _describe_source(plan: LoweringPlan) -> dict:
    kind = "binary spikes" if plan.input_bits == 0 else f"graded {plan.input_bits}-bit payloads (num_message_bits={plan.input_bits} on its outgoing connections)"
    note = (
        f"stock lava.proc.io.source.RingBuffer replaying the encoded frames ({kind}); a host-side Python process: "
        "with Loihi2HwCfg Lava keeps it on the host CPU and sends its messages into the chip. Not verified here (lava-loihi is not installed)."
    )
    if plan.input_bits > LOIHI2_MESSAGE_BITS:
        note += f" Payloads need {plan.input_bits} bits, more than Loihi 2's {LOIHI2_MESSAGE_BITS}-bit graded spikes."
    return {"process": "RingBuffer", "module": "lava.proc.io.source", "count": 1, "stock_loihi2": plan.input_bits <= LOIHI2_MESSAGE_BITS, "note": note}


def _width_issues(plan: LoweringPlan) -> list[str]:
    """Loihi 2 register widths a plan's neurons exceed (the CPU simulation does not enforce them)."""
    issues = []
    for n in plan.neurons:
        if not n.readout and _out_of(n.bias_mant, *LOIHI2_BIAS_MANT):
            issues.append(f"{n.population}: bias_mant exceeds {_FMT.bias_mant_bits} bits")
        if not n.readout and not LOIHI2_BIAS_EXP[0] <= n.bias_exp <= LOIHI2_BIAS_EXP[1]:
            issues.append(f"{n.population}: bias_exp {n.bias_exp} outside [{LOIHI2_BIAS_EXP[0]}, {LOIHI2_BIAS_EXP[1]}]")
        if not n.readout and np.max(n.vth) > LOIHI2_VTH_MAX:
            issues.append(f"{n.population}: vth exceeds {_FMT.vth_bits} bits")
    return issues


def _describe_neurons(plan: LoweringPlan) -> dict:
    issues = _width_issues(plan)
    resets = sorted({n.reset for n in plan.neurons if not n.readout})
    note = (
        "custom process (neurocompile_lava.procs.periodic_lif) with Python models only: Lava's fixed-point LIF update bit for bit, "
        f"plus a reset of u and v at the start of every sample period, reset by {' and '.join(resets) or 'n/a'}, never-firing readouts and "
        "on-process spike counting written with np.save. Stock Loihi 2 has no model for it: a microcode NcProcModel would be needed "
        "(stock LIF resets v to 0 only, which loses up to 36 % of the spikes of a converted ANN)."
    )
    if issues:
        note += " Loihi 2 register widths exceeded: " + "; ".join(issues) + "."
    return {"process": "PeriodicLIF", "module": "neurocompile_lava.procs.periodic_lif.process", "count": len(plan.neurons), "stock_loihi2": False, "note": note}


def _describe_stock_neurons(plan: LoweringPlan) -> list[dict]:
    """The pipelined schedule: every population a stock LIFReset, plus the host-side probes that read it."""
    issues = _width_issues(plan)
    note = (
        f"stock lava.proc.lif.process LIFReset (reset to zero; u and v zeroed every {plan.period} steps, each population "
        "at its own offset, its depth in the network, so that its window trails its source's by the synaptic delay: "
        "the pipelined schedule). Loihi 2 runs it with lava-loihi's own LIF models, no custom microcode; "
        "not verified here (lava-loihi is not installed). The readout is a LIFReset whose threshold it provably never reaches."
    )
    if issues:
        note += " Loihi 2 register widths exceeded: " + "; ".join(issues) + "."
    neurons = {"process": "LIFReset", "module": "lava.proc.lif.process", "count": len(plan.neurons), "stock_loihi2": not issues, "note": note}
    probes = {
        "process": "SpikeRecorder + Read", "module": "neurocompile_lava.procs.spike_recorder, lava.proc.io.sink",
        "count": sum(not n.readout for n in plan.neurons) + 1, "stock_loihi2": "host probe",
        "note": "host-side probes, not chip processes: a spike recorder per spiking population (counts per window, saved with "
                "np.save; Lava's sink would be read back at ~26 k values/s) and Lava's stock Read of the readout's v at the "
                "last step of each window.",
    }
    return [neurons, probes]


def _describe_synapses(process: str, syn: list[SynapsePlan], input_population: str) -> dict:
    parts = []
    odd = sum(s.odd_mixed for s in syn)
    if odd:
        parts.append(f"{odd} odd mixed-sign weight mantissas are floored to even by Lava (num_weight_bits={_FMT.weight_bits}: a mixed-sign synapse spends one of its {_FMT.weight_bits} bits on the sign)")
    bad_exp = [s.projection for s in syn if not LOIHI2_WEIGHT_EXP[0] <= s.weight_exp <= LOIHI2_WEIGHT_EXP[1]]
    if bad_exp:
        parts.append(f"weight_exp outside [{LOIHI2_WEIGHT_EXP[0]}, {LOIHI2_WEIGHT_EXP[1]}] in {', '.join(bad_exp)}")
    convs = [s.projection for s in syn if s.ir_kind == "conv" and s.process != "Conv"]
    if convs:
        parts.append(f"conv projections ({', '.join(convs)}) are unrolled into Sparse matrices (every synapse stored, no weight sharing): "
                     f"Lava's fixed-point Conv ignores weight_exp and wraps messages at {LOIHI2_MESSAGE_BITS} bits, so it is used only where neither matters")
    shared = [s for s in syn if s.process == "Conv"]
    if shared:
        parts.append(f"{sum(int(s.weights.size) for s in shared)} shared kernel weights")
    graded = [s.projection for s in syn if s.source == input_population and s.num_message_bits > 0]
    if graded:
        parts.append(f"graded input on {', '.join(graded)}")
    synapses = sum(s.synapses for s in syn)
    note = f"stock lava.proc.{process.lower()} {process} ({synapses} synapses, {_FMT.weight_bits}-bit mantissas with a shared exponent)"
    if parts:
        note += "; " + "; ".join(parts)
    return {"process": process, "module": f"lava.proc.{process.lower()}.process", "count": len(syn), "stock_loihi2": not bad_exp, "note": note + "."}
