"""Four published workloads measured on Loihi / Loihi 2 silicon, re-created as cost-model workloads.

Shapes, step counts, core counts and the measured figures come from the
publications and notebooks cited on each :class:`SiliconCase`. Activity (spike
counts) is NOT published for any of them, so it is **bounded, not simulated**:
each workload is built at a nominal firing rate and at a low and a high bound
(:data:`ACTIVITY`), each with its justification. Nothing here is fitted to the
measurement it is compared with; the only calibrated constants (the embedded
x86's per-step time and energy, ``hardware_profiles/loihi.toml``) come from the
LSNN run alone, and :func:`x86_calibration` recomputes them from it.

Measured numbers are the dynamic energy per inference and the time per step,
each as the source prints it (see ``measured`` on each case).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from neurocompile.report.cost_model import PopulationCounts, Workload, workload_from_counts

Level = Literal["low", "nominal", "high"]
LEVELS: tuple[Level, ...] = ("low", "nominal", "high")


@dataclass(frozen=True)
class Rate:
    """Spikes per neuron per step: nominal and bounds, with why."""

    nominal: float
    low: float
    high: float
    why: str

    def at(self, level: Level) -> float:
        return {"low": self.low, "nominal": self.nominal, "high": self.high}[level]


@dataclass(frozen=True)
class SiliconCase:
    name: str
    profile: str
    steps: int
    measured_energy_j: float  # dynamic, per inference
    measured_step_s: float
    source: str
    build: Callable[[Level], Workload]
    calibration: bool = False  # True: the profile's x86 constants were derived from this run


# -- activity assumptions ---------------------------------------------------------------------
ACTIVITY: dict[str, Rate] = {
    "pilotnet_input": Rate(0.2, 0.05, 0.5, "bias-driven LIF input layer (the frame is written as bias): rate follows pixel intensity; normalised dash-cam frames average mid-grey"),
    "pilotnet_hidden": Rate(0.1, 0.02, 0.3, "SLAYER-trained CUBA-LIF layers typically fire 0.02-0.3 per neuron per step; 0.1 nominal"),
    "kws_input": Rate(0.2, 0.05, 0.5, "nengo-loihi host-side encoding of 390 MFCC features as spikes; converted ReLU nets saturate near 0.4-0.5 per 1 ms step"),
    "kws_hidden": Rate(0.15, 0.05, 0.4, "converted ReLU layers (SpikingRectifiedLinear, max rates 200-400 Hz at dt = 1 ms): mean well below the maximum"),
    "lsnn_input": Rate(3000 / (80 * 840), 1000 / (80 * 840), 6000 / (80 * 840), "threshold-crossing encoding (Bellec et al. 2018): ~30 stroke edges x up to 60 levels x 2 directions, plus the 56-step cue: 1,000-6,000 input spikes per image, 3,000 nominal"),
    "lsnn_recurrent": Rate(0.015, 0.005, 0.05, "LSNN recurrent neurons fire 5-50 Hz at 1 ms steps (Bellec et al. 2018 regularise rates towards ~10-20 Hz)"),
    "braille_input": Rate(0.02, 0.005, 0.08, "event-based tactile data at threshold 10 (the sparsest encoding of Mueller-Cleve et al. 2022): few events per taxel per 270-step sample"),
    "braille_recurrent": Rate(0.02, 0.005, 0.08, "spytorch-trained recurrent LIF layer, rates regularised low; 0.5-8 % per step"),
}


def rate(key: str, level: Level) -> float:
    return ACTIVITY[key].at(level)


# -- shapes ---------------------------------------------------------------------------------
def conv_synapses(src: tuple[int, int, int], dst: tuple[int, int, int], stride: tuple[int, int], pad: tuple[int, int], k: int = 3) -> int:
    """Nonzero synapses of a k x k convolution (W, H, C shapes), taps outside the input excluded."""
    (wi, hi, ci), (wo, ho, co), (sx, sy), (px, py) = src, dst, stride, pad
    taps_x = sum(sum(0 <= x * sx - px + j < wi for j in range(k)) for x in range(wo))
    taps_y = sum(sum(0 <= y * sy - py + j < hi for j in range(k)) for y in range(ho))
    return taps_x * taps_y * ci * co


def _size(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


# PilotNet LIF (lava-dl netx pilotnet_snn/network.net, printed in benchmark.ipynb), with the
# cores per layer from the notebook's per-core distribution table (74 cores in all).
PILOTNET_LAYERS: tuple[tuple[str, tuple[int, int, int], int], ...] = (
    ("input", (200, 66, 3), 13),
    ("conv1", (99, 32, 24), 25),
    ("conv2", (49, 15, 36), 13),
    ("conv3", (24, 7, 48), 3),
    ("conv4", (22, 4, 64), 3),
    ("conv5", (20, 2, 64), 2),
    ("dense1", (1, 1, 100), 12),
    ("dense2", (1, 1, 50), 1),
    ("dense3", (1, 1, 10), 1),
    ("dense4", (1, 1, 1), 1),
)
PILOTNET_CONVS = {  # target: (stride, padding)
    "conv1": ((2, 2), (0, 0)), "conv2": ((2, 2), (0, 0)), "conv3": ((2, 2), (0, 0)),
    "conv4": ((1, 2), (0, 1)), "conv5": ((1, 1), (0, 0)),
}


def pilotnet_synapses() -> dict[str, int]:
    """Synapses into each PilotNet layer."""
    out: dict[str, int] = {}
    for (_, src, _), (name, dst, _) in zip(PILOTNET_LAYERS, PILOTNET_LAYERS[1:]):
        if name in PILOTNET_CONVS:
            out[name] = conv_synapses(src, dst, *PILOTNET_CONVS[name])
        else:
            out[name] = _size(src) * _size(dst)
    return out


# -- routing assumptions shared by the builders -------------------------------------------------
CORES_PER_TILE = 4  # Davies et al. 2018 (Loihi); taken the same for Loihi 2
MESH_HOPS = 3.0  # mean router hops of a message leaving its tile on a partly filled chip (estimate)


def _tile_fraction(dest_cores: float) -> float:
    """Share of one event's messages that stay in the sender's tile: at most the tile's other cores."""
    return min(1.0, (CORES_PER_TILE - 1) / dest_cores) if dest_cores > 0 else 1.0


def _layer(name: str, neurons: int, kind: str, spikes: float, synops_in: float, cores: int, dest_cores: float, active: float = 1.0) -> PopulationCounts:
    return PopulationCounts(name, neurons, kind, spikes, synops_in, cores, messages=spikes * dest_cores,
                            tile_fraction=_tile_fraction(dest_cores), hops_per_mesh_message=MESH_HOPS, active_fraction=active)


# -- the four workloads -----------------------------------------------------------------------
def pilotnet(level: Level = "nominal") -> Workload:
    """PilotNet CUBA-LIF on one Loihi 2 chip, 16 steps per frame, the frame held as the input layer's bias.

    Destination cores per spike: a conv neuron's 3x3 window reaches at most 2
    cores of the next conv layer (assumed); conv5 reaches all 12 dense1 cores.
    Every neuron is updated actively each step (CUBA state never settles to 0).
    """
    steps = 16
    syn = pilotnet_synapses()
    pops = []
    layers = PILOTNET_LAYERS
    for i, (name, shape, cores) in enumerate(layers):
        n = _size(shape)
        r = rate("pilotnet_input" if name == "input" else "pilotnet_hidden", level)
        spikes = n * r * steps
        prev = layers[i - 1] if i else None
        synops = 0.0 if prev is None else _size(prev[1]) * rate("pilotnet_input" if prev[0] == "input" else "pilotnet_hidden", level) * steps * syn[name] / _size(prev[1])
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        dest = 0.0 if nxt is None else (min(2.0, nxt[2]) if nxt[0] in PILOTNET_CONVS else float(nxt[2]))
        pops.append(_layer(name, n, "input" if name == "input" else "spiking", spikes, synops, cores, dest))
    return workload_from_counts("PilotNet LIF (Loihi 2)", steps, pops, x86_share=1.0)


def keyword_spotting(level: Level = "nominal") -> Workload:
    """Blouw et al. 2019: 390-256-256-29 spiking net under nengo-loihi, ~10 steps per inference, host in the loop.

    Input spikes come from the host each step (input events + one host round
    trip per step). Cores: 390 x 256 synapses exceed one core's 1 Mbit at ~16
    bits per synapse, so hidden1 takes 2 cores; hidden2 and the output 1 each.
    The dynamic figure is running power minus idle power *before boot*, so the
    booted board's overhead counts as dynamic (baseline "unbooted").
    """
    steps = 10
    r_in, r_h = rate("kws_input", level), rate("kws_hidden", level)
    inp = 390 * r_in * steps
    h1, h2 = 256 * r_h * steps, 256 * r_h * steps
    pops = [
        _layer("hidden1", 256, "spiking", h1, inp * 256, 2, 1.0),
        _layer("hidden2", 256, "spiking", h2, h1 * 256, 1, 1.0),
        _layer("output", 29, "readout", 0.0, h2 * 29, 1, 0.0),
    ]
    return workload_from_counts("keyword spotting (Loihi)", steps, pops, input_events=inp, host_syncs=steps,
                                x86_share=1.0, dynamic_baseline="unbooted")


LSNN_SYNAPSES = {"w_in": 4263, "w_rec": 10566, "w_out": 846}
"""Nonzero weights of the benchmarked LSNN (intel-nrc-ecosystem models, lsnn/apps/seqmnist/benchmark/weights/v25_94per:
w_in 80x240, w_rec 240x240, w_out 240x10), counted from the published .npy files."""


def lsnn(level: Level = "nominal") -> Workload:
    """Sequential MNIST LSNN on one Loihi core, 840 steps (784 pixels + 56 cue), input injected by the embedded x86.

    One population holds the whole core (so its slowest core is the core):
    140 LIF + 100 adaptive LIF + 10 outputs, each adaptive neuron taking a
    second compartment for its threshold (assumed): 350 compartments, all
    updated actively (leaky state).
    """
    steps = 840
    inp = 80 * rate("lsnn_input", level) * steps
    rec = 240 * rate("lsnn_recurrent", level) * steps
    synops = inp * LSNN_SYNAPSES["w_in"] / 80 + rec * (LSNN_SYNAPSES["w_rec"] + LSNN_SYNAPSES["w_out"]) / 240
    core = PopulationCounts("lsnn_core", 350, "spiking", rec, synops, 1, messages=rec)
    return workload_from_counts("sequential MNIST LSNN (Loihi)", steps, [core], input_events=inp, x86_share=1.0)


def braille(level: Level = "nominal") -> Workload:
    """Braille reading, 48-450-28 recurrent LIF (spytorch2loihi), 270 steps, 10 neurons per core (54 cores per copy).

    Two copies per chip share 3 embedded x86 CPUs that stream the input from
    their memory (streamOnce): x86 share 3 / 2 = 1.5 of the single CPU the
    LSNN run used. The 48 input neurons relay injected events; they are active
    only on steps they receive one.
    """
    steps = 270
    r_in, r_rec = rate("braille_input", level), rate("braille_recurrent", level)
    inp = 48 * r_in * steps
    rec = 450 * r_rec * steps
    pops = [
        _layer("input", 48, "input", inp, inp, 5, 45.0, active=min(1.0, r_in)),
        _layer("recurrent", 450, "spiking", rec, inp * 450 + rec * 450, 45, 47.0),
        _layer("output", 28, "readout", 0.0, rec * 28, 2, 0.0),
    ]
    return workload_from_counts("Braille recurrent SNN (Loihi)", steps, pops, input_events=inp, x86_share=1.5)


CASES: tuple[SiliconCase, ...] = (
    SiliconCase("pilotnet", "loihi2", 16, 1.093544e-3, 1 / (408.91 * 16),
                "lava-dl tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb: 408.91 fps at 16 steps per frame, dynamic 1.0935 mJ per inference", pilotnet),
    SiliconCase("keyword_spotting", "loihi", 10, (0.110 - 0.029) / 296, 1 / (296 * 10),
                "Blouw et al. 2019, Table 1: 296 inf/s, 0.110 W running, 0.029 W idle; ~10 steps per inference (issue 11)", keyword_spotting),
    SiliconCase("lsnn", "loihi", 840, 24.778585e-3 * 13.98556e-3, 16.649476e-6,
                "intel-nrc-ecosystem models, sMNIST_Loihi_performance_measurements.ipynb: 24.78 mW dynamic (23.20 x86 + 1.58 neurocore), 16.65 us per step", lsnn, calibration=True),
    SiliconCase("braille", "loihi", 270, 132.406e-6, 6.640671e-6,
                "intel-nrc-ecosystem models, spytorch2loihi_import_energy-delay.ipynb: 73.85 mW dynamic per copy, 6.64 us per step, 132.4 uJ per sample", braille),
)

LSNN_CORE_DYNAMIC_POWER_W = 1.5834606e-3
"""The LSNN notebook's neurocore-only dynamic power: checks the neurocore part of the model with no x86 in it."""


def case(name: str) -> SiliconCase:
    return next(c for c in CASES if c.name == name)


# -- the one calibration ------------------------------------------------------------------------
LSNN_X86_DYNAMIC_POWER_W = 23.195125e-3
"""The LSNN notebook's embedded-x86 dynamic power (one CPU injecting the input and running the step's management)."""


def x86_calibration(profile, level: Level = "nominal") -> tuple[float, float]:
    """(energy, time) of one step of the embedded x86 program, derived from the LSNN run alone.

    energy = measured x86 dynamic power x measured time per step (a direct split of the measurement);
    time   = measured time per step - the model's neurocore time (slowest core + barrier) for the LSNN.
    """
    from neurocompile.report.cost_model import time_per_step

    c = case("lsnn")
    t = time_per_step(c.build(level), profile)
    neurocore = sum(x.value for x in t.terms if x.name in ("slowest_core", "barrier_sync"))
    return LSNN_X86_DYNAMIC_POWER_W * c.measured_step_s, c.measured_step_s - neurocore


# -- model vs measured --------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """One metric of one case: the model at nominal activity, its full range, and the measurement.

    ``low`` / ``high``: the model at the low (high) activity bound with every
    constant at its low (high) end (the label rule of neurocompile.profiles).
    """

    case: str
    metric: str  # "dynamic energy per inference" | "time per step"
    unit: str
    model: float
    low: float
    high: float
    measured: float

    @property
    def ratio(self) -> float:
        return self.model / self.measured

    @property
    def within_2x(self) -> bool:
        return 0.5 <= self.ratio <= 2.0

    @property
    def in_range(self) -> bool:
        return self.low <= self.measured <= self.high

    @property
    def width(self) -> float:
        return self.high / self.low


def compare(c: SiliconCase, profile) -> tuple[Comparison, Comparison]:
    """(energy, time-per-step) comparisons of one case on ``profile``."""
    from neurocompile.report.cost_model import dynamic_energy, time_per_step

    out = []
    for metric, fn, unit, measured in (("dynamic energy per inference", dynamic_energy, "J", c.measured_energy_j),
                                       ("time per step", time_per_step, "s", c.measured_step_s)):
        nominal, low, high = (fn(c.build(level), profile) for level in ("nominal", "low", "high"))
        out.append(Comparison(c.name, metric, unit, nominal.value, low.low, high.high, measured))
    return out[0], out[1]
