"""Energy and time of one inference from counted events, independent of the IR.

Why a separate module: the costs depend only on *how many* events of each
kind a workload causes and on *where* the work lands (the slowest core, the
mesh), never on how the network is represented. Keeping it IR-free lets the
pipeline feed it through one adapter (:func:`workload_from_counts`) and lets
the tests feed it published workloads (``tests/silicon_workloads.py``) that
exist only as layer shapes and firing rates.

The model (every constant read from a :class:`~neurocompile.profiles.Profile`,
SI units; sums run over populations ``p``; ``S`` = steps per inference)::

    E_dyn = Σ_p [ synops_p·e_synop + active_p·e_update + idle_p·e_update_idle
                  + (msg_tile_p + msg_mesh_p)·e_spike_message + hops_p·e_mesh_hop ]
            + input_events·e_input_event
            + S·x86_share·e_x86_step
            + [baseline = "unbooted"] · P_board_overhead · latency

    t_step = t_barrier
             + max_p slowest_core_p          (the critical path after placement)
             + (input_events·t_input_event + host_syncs·t_host_step) / S
             + [x86_share > 0] · t_x86_step

    slowest_core_p = synops·t_synop + active·t_update + idle·t_update_idle
                     + messages·t_spike_message          (that core's work per step)

    latency = S · t_step            E_static = P_static · chips · latency

Terms a profile does not state are left out and named in ``notes`` (an idle
update falls back to the active cost, which over-counts, and says so).

Uncertainty: each constant's (low, high) comes from
:meth:`neurocompile.profiles.Quantity.bounds_si` (the label's band around the
value, widened to the profile's explicit ``range``). Every term above is
non-decreasing in every constant, so the estimate's range is the model
evaluated with all constants at their lows and at their highs. Activity is not
part of this range: a caller unsure of the firing rates evaluates the
workload at its activity bounds (as ``tests/silicon_workloads.py`` does).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

from ..errors import NeurocompileError
from ..profiles import Profile, Quantity

Baseline = Literal["booted", "unbooted"]
"""What a measured *dynamic* figure subtracted: the idle power of a booted
board (NxSDK's and Lava's probes), or of a board before boot (Blouw et al.
2019), in which case the booted system's overhead counts as dynamic."""


# -- the workload ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CoreStep:
    """The work of one core in one time step (used for the slowest core of a population)."""

    synops: float = 0.0
    active_updates: float = 0.0
    idle_updates: float = 0.0
    messages: float = 0.0


@dataclass(frozen=True)
class PopulationLoad:
    """What one population costs per inference, after placement.

    ``events``: spikes (or graded events) it sends; ``synops``: synaptic
    operations at its own cores (events of its sources x their synapses into
    it); ``messages_tile`` / ``messages_mesh``: spike messages it sends to
    destination cores in the same tile / across the mesh; ``mesh_hops``: router
    hops those cross-mesh messages take; ``slowest_core``: the most loaded of
    its ``cores`` in one step.
    """

    name: str
    neurons: int
    kind: str
    events: float
    synops: float
    active_updates: float
    idle_updates: float
    cores: int
    messages_tile: float = 0.0
    messages_mesh: float = 0.0
    mesh_hops: float = 0.0
    slowest_core: CoreStep = field(default_factory=CoreStep)

    @property
    def messages(self) -> float:
        return self.messages_tile + self.messages_mesh


@dataclass(frozen=True)
class Workload:
    """Counted events of one inference, and how the system around the chip is driven.

    ``input_events``: events the host (or embedded CPU) writes into the chip per
    inference; ``host_syncs``: host round trips per inference (the host in the
    loop, e.g. nengo-loihi without precompute); ``x86_share``: the share of one
    chip's per-step embedded-x86 work this inference uses (0 when no embedded
    program runs, 0.5 for one of two copies per chip, 1.5 when three CPUs serve
    two copies); ``chips``: chips powered for it.
    """

    name: str
    steps: int
    populations: tuple[PopulationLoad, ...]
    input_events: float = 0.0
    host_syncs: float = 0.0
    x86_share: float = 0.0
    chips: int = 1
    dynamic_baseline: Baseline = "booted"

    def __post_init__(self) -> None:
        if self.steps <= 0:
            raise NeurocompileError(f"workload {self.name!r}: steps must be positive, got {self.steps}")

    @property
    def cores(self) -> int:
        return sum(p.cores for p in self.populations)

    def total(self, attr: str) -> float:
        """Sum of one :class:`PopulationLoad` field over the populations."""
        return float(sum(getattr(p, attr) for p in self.populations))


# -- the answer -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """One line of a breakdown: count x constant, with the constant's provenance."""

    name: str
    count: float
    value: float
    low: float
    high: float
    constants: tuple[str, ...]


@dataclass(frozen=True)
class Estimate:
    """A modelled quantity (J or s) with its range, breakdown and provenance."""

    what: str
    unit: str
    value: float
    low: float
    high: float
    terms: tuple[Term, ...]
    provenance: Mapping[str, dict]
    notes: tuple[str, ...] = ()

    @property
    def width(self) -> float:
        """high / low: how many times the top of the range exceeds the bottom."""
        return self.high / self.low if self.low > 0 else float("inf")

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def as_dict(self) -> dict:
        return {
            "what": self.what, "unit": self.unit, "value": self.value, "range": [self.low, self.high],
            "breakdown": {t.name: {"count": t.count, "value": t.value, "range": [t.low, t.high], "constants": list(t.constants)} for t in self.terms},
            "provenance": dict(self.provenance), "notes": list(self.notes),
        }


# -- constants ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Constants:
    """A profile's charged constants at one corner (value, low or high), in SI."""

    energy: Mapping[str, float]
    time: Mapping[str, float]


def _corner(section: Mapping[str, Quantity], which: int) -> dict[str, float]:
    return {k: (q.si, *q.bounds_si())[which] for k, q in section.items()}


def _corners(profile: Profile) -> tuple[_Constants, _Constants, _Constants]:
    """(value, low, high) constants of ``profile``."""
    return tuple(_Constants(_corner(profile.energy, i), _corner(profile.time, i)) for i in range(3))  # type: ignore[return-value]


def _need_neuromorphic(profile: Profile) -> None:
    if profile.kind != "neuromorphic":
        raise NeurocompileError(f"the cost model needs a neuromorphic profile; {profile.name} is {profile.kind}")


def _estimate(what: str, unit: str, profile: Profile, lines: Sequence[tuple[str, float, tuple[str, ...], object]], notes: list[str]) -> Estimate:
    """Build an :class:`Estimate` from lines (name, count, constant keys, fn(constants) -> SI value)."""
    terms = []
    for name, count, keys, fn in lines:
        v, lo, hi = (fn(c) for c in _corners(profile))  # type: ignore[operator]
        terms.append(Term(name, float(count), float(v), float(lo), float(hi), keys))
    used = {k for t in terms for k in t.constants}
    prov = {k: profile.quantities()[k].as_dict() for k in sorted(used)}
    return Estimate(what, unit, sum(t.value for t in terms), sum(t.low for t in terms), sum(t.high for t in terms), tuple(terms), prov, tuple(notes))


# -- time -----------------------------------------------------------------------------------
def _update_time(c: _Constants) -> tuple[float, float]:
    active = c.time["neuron_update"]
    return active, c.time.get("neuron_update_idle", active)


def _core_time(core: CoreStep, c: _Constants) -> float:
    active, idle = _update_time(c)
    return (core.synops * c.time["synop"] + core.active_updates * active + core.idle_updates * idle
            + core.messages * c.time.get("spike_message", 0.0))


def core_time(core: CoreStep, profile: Profile) -> float:
    """Seconds one core needs for ``core``'s work in a step, at the profile's values (picks the slowest core)."""
    return _core_time(core, _corners(profile)[0])


def _slowest(workload: Workload, c: _Constants) -> float:
    return max((_core_time(p.slowest_core, c) for p in workload.populations), default=0.0)


def _time_lines(workload: Workload, profile: Profile, notes: list[str]) -> list[tuple]:
    if not profile.has_timing:
        raise NeurocompileError(f"{profile.name} gives no time per synop and per neuron update: no time per step can be modelled")
    s = workload.steps
    core_keys = tuple(f"time.{k}" for k in ("synop", "neuron_update", "neuron_update_idle", "spike_message") if k in profile.time)
    lines: list[tuple] = [("slowest_core", 1, core_keys, lambda c: _slowest(workload, c))]
    if "barrier_sync" in profile.time:
        lines.append(("barrier_sync", 1, ("time.barrier_sync",), lambda c: c.time["barrier_sync"]))
    else:
        notes.append(f"{profile.name} states no barrier time: the step has no synchronisation cost")
    per_step_io = [("input_event", workload.input_events / s), ("host_step", workload.host_syncs / s)]
    for key, count in per_step_io:
        if count <= 0:
            continue
        if key in profile.time:
            lines.append((key, count, (f"time.{key}",), lambda c, k=key, n=count: n * c.time[k]))
        else:
            notes.append(f"{profile.name} states no time.{key}: {count:g} per step not timed")
    if workload.x86_share > 0:
        if "x86_step" in profile.time:
            lines.append(("x86_step", 1, ("time.x86_step",), lambda c: c.time["x86_step"]))
        else:
            notes.append(f"{profile.name} states no time.x86_step: the embedded CPUs' per-step work is not timed")
    if "neuron_update_idle" not in profile.time:
        notes.append("idle neuron updates timed at the active cost (the profile states no idle time): an over-count")
    return lines


def time_per_step(workload: Workload, profile: Profile) -> Estimate:
    """Seconds per time step: barrier + the slowest core's work + host and embedded-x86 I/O (see module docstring)."""
    _need_neuromorphic(profile)
    notes: list[str] = []
    lines = _time_lines(workload, profile, notes)
    return _estimate("time per step", "s", profile, lines, notes)


def latency(workload: Workload, profile: Profile) -> Estimate:
    """Seconds per inference: steps x :func:`time_per_step` (steps run one after another)."""
    t = time_per_step(workload, profile)
    s = workload.steps
    terms = tuple(Term(x.name, x.count * s, x.value * s, x.low * s, x.high * s, x.constants) for x in t.terms)
    return Estimate("latency per inference", "s", t.value * s, t.low * s, t.high * s, terms, t.provenance, t.notes)


# -- energy ---------------------------------------------------------------------------------
def _energy_lines(workload: Workload, profile: Profile, notes: list[str]) -> list[tuple]:
    e = profile.energy
    w = workload
    counts = {
        "synop": w.total("synops"),
        "neuron_update": w.total("active_updates"),
        "neuron_update_idle": w.total("idle_updates"),
        "spike_message": w.total("messages_tile") + w.total("messages_mesh"),
        "mesh_hop": w.total("mesh_hops"),
        "input_event": w.input_events,
        "x86_step": w.steps * w.x86_share,
    }
    if "neuron_update_idle" not in e and counts["neuron_update_idle"]:
        counts["neuron_update"] += counts.pop("neuron_update_idle")
        notes.append("idle neuron updates charged at the active cost (the profile states no idle cost): an over-count")
    lines: list[tuple] = []
    for key, n in counts.items():
        if n <= 0:
            continue
        if key in e:
            lines.append((key, n, (f"energy.{key}",), lambda c, k=key, n=n: n * c.energy[k]))
        elif key != "neuron_update_idle":
            notes.append(f"{profile.name} states no energy.{key}: {n:g} per inference not charged")
    if w.dynamic_baseline == "unbooted":
        if "board_overhead_power" in e:
            keys = ("energy.board_overhead_power",) + tuple(sorted(latency(w, profile).provenance))
            lines.append(("board_overhead", 1, keys,
                          lambda c: c.energy["board_overhead_power"] * w.steps * sum(_step_value(w, profile, c))))
        else:
            notes.append(f"{profile.name} states no board overhead power: a dynamic figure over an unbooted baseline is under-counted")
    return lines


def _step_value(workload: Workload, profile: Profile, c: _Constants) -> list[float]:
    """The time-per-step terms evaluated at one corner of the constants."""
    return [fn(c) for _, _, _, fn in _time_lines(workload, profile, [])]


def dynamic_energy(workload: Workload, profile: Profile) -> Estimate:
    """Joules per inference above the idle baseline: counted events x per-event costs, plus system terms."""
    _need_neuromorphic(profile)
    notes: list[str] = []
    return _estimate("dynamic energy per inference", "J", profile, _energy_lines(workload, profile, notes), notes)


def static_energy(workload: Workload, profile: Profile) -> Estimate:
    """Joules per inference of static (leakage and idle) power of the chips used, over the latency."""
    _need_neuromorphic(profile)
    if "static_power" not in profile.energy:
        raise NeurocompileError(f"{profile.name} states no static power")
    keys = ("energy.static_power",) + tuple(sorted(latency(workload, profile).provenance))
    line = ("static", workload.chips, keys,
            lambda c: c.energy["static_power"] * workload.chips * workload.steps * sum(_step_value(workload, profile, c)))
    return _estimate("static energy per inference", "J", profile, [line], [])


# -- the adapter ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PopulationCounts:
    """Plain per-population numbers, per inference, as a pipeline or a paper gives them.

    ``synops_in``: synaptic operations at this population's cores;
    ``messages``: spike messages it sends (events x destination cores; default
    one per event); ``tile_fraction``: share of them that stay in the tile;
    ``hops_per_mesh_message``: mean router hops of the others;
    ``active_fraction``: share of its neuron updates that are active (the
    neuron received input or has non-zero state); ``imbalance``: the slowest
    core's load over the mean core's (1 = work spread evenly).
    """

    name: str
    neurons: int
    kind: str
    events: float
    synops_in: float
    cores: int
    messages: float | None = None
    tile_fraction: float = 1.0
    hops_per_mesh_message: float = 0.0
    active_fraction: float = 1.0
    imbalance: float = 1.0


def _load(pc: PopulationCounts, steps: int) -> PopulationLoad:
    if pc.cores <= 0:
        raise NeurocompileError(f"population {pc.name!r}: cores must be positive, got {pc.cores}")
    if not (0.0 <= pc.tile_fraction <= 1.0 and 0.0 <= pc.active_fraction <= 1.0):
        raise NeurocompileError(f"population {pc.name!r}: tile_fraction and active_fraction must lie in [0, 1]")
    messages = pc.events if pc.messages is None else pc.messages
    updates = pc.neurons * steps
    active, idle = updates * pc.active_fraction, updates * (1.0 - pc.active_fraction)
    mesh = messages * (1.0 - pc.tile_fraction)
    per_core_step = pc.imbalance / (pc.cores * steps)
    slowest = CoreStep(pc.synops_in * per_core_step, active * per_core_step, idle * per_core_step, messages * per_core_step)
    return PopulationLoad(pc.name, pc.neurons, pc.kind, pc.events, pc.synops_in, active, idle, pc.cores,
                          messages - mesh, mesh, mesh * pc.hops_per_mesh_message, slowest)


def workload_from_counts(
    name: str,
    steps: int,
    populations: Sequence[PopulationCounts],
    *,
    input_events: float = 0.0,
    host_syncs: float = 0.0,
    x86_share: float = 0.0,
    chips: int = 1,
    dynamic_baseline: Baseline = "booted",
) -> Workload:
    """A :class:`Workload` from plain per-population numbers (no Network needed).

    The slowest core of a population is taken as its mean core times
    ``imbalance`` (work spread over its cores and over the steps).
    """
    if steps <= 0:
        raise NeurocompileError(f"workload {name!r}: steps must be positive, got {steps}")
    loads = tuple(_load(pc, steps) for pc in populations)
    return Workload(name, steps, loads, input_events, host_syncs, x86_share, chips, dynamic_baseline)
