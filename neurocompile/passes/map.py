"""Partition every non-input population onto neuromorphic cores.

Why a mapping pass at all: a network that does not fit the chip should fail at
compile time with a number ("needs 300 cores, loihi has 128"), not on the
board; and the energy model needs to know which core each neuron sits on to
count spike messages and the busiest core's work.

The model (every figure comes from the profile's ``[limits]`` and ``[formats]``):

* A population is cut into contiguous runs of neurons, one run per core, each
  as long as the core's limits allow (greedy, which is optimal for contiguous
  runs because every cost below grows with the run). The input population is
  fed from the host and takes no core.
* Neurons per core: ``limits.neurons_per_core``.
* Memory per core: ``limits.synaptic_memory_bits_per_core`` must hold the
  run's incoming synapses, plus ``limits.shared_state_bits_per_neuron`` per
  neuron where the chip keeps neuron state in the same memory (Loihi 2).
  Synapses cost ``limits.stored_weight_bits`` each (``formats.weight_bits``
  when the profile does not say), stored the cheaper of two ways
  per incoming projection: a dense block (rows x used source columns x weight
  bits) or sparse entries (nonzero synapses x (weight bits +
  ``limits.synapse_index_bits``)). Convolutions store one copy of the kernel
  per output channel present on the core (shared-weight axons), so their cost
  does not grow with the image size.
* Fan-in: ``limits.fan_in_axons_per_core`` distinct source neurons may project
  into one core.
* Fan-out: ``limits.fan_out_axons_per_core``: every neuron on the core needs
  one output axon per distinct core it projects to.
* Limits a profile does not state are not checked; the mapping's ``notes`` say
  which.

The result is recorded in ``net.mapping`` (plain ints, lists, strings).
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import numpy as np
import scipy.sparse as sp

from ..cores import MeshLayout, chunks_of, destination_core_counts, mesh_layout, neuron_limited_chunks, projection_matrices, routes
from ..errors import NeurocompileError
from ..ir import Network, Population
from ..profiles import Profile

__all__ = ["CoreBudget", "Partition", "destination_core_counts", "map_to_cores", "partition", "placements"]  # destination_core_counts: from neurocompile.cores

# limit name in the profile -> the name a violation is reported under
_CHECKS = {
    "neurons_per_core": "neurons per core",
    "synaptic_memory_bits_per_core": "synaptic memory per core",
    "fan_in_axons_per_core": "fan-in axons per core",
    "fan_out_axons_per_core": "fan-out axons per core",
}


@dataclass(frozen=True)
class CoreBudget:
    """What one core offers, read from a profile. ``None``: not published, so not checked."""

    neurons: int
    memory_bits: int | None
    fan_in: int | None
    fan_out: int | None
    synapse_weight_bits: int  # bits one stored weight occupies
    index_bits: int
    state_bits: int
    cores_per_chip: int
    chips: int

    @property
    def cores(self) -> int:
        return self.cores_per_chip * self.chips

    @classmethod
    def from_profile(cls, profile: Profile, chips: int | None = None) -> "CoreBudget":
        if profile.kind != "neuromorphic":
            raise NeurocompileError(f"profile {profile.name!r} is an {profile.kind} baseline: it has no cores to map onto")
        neurons = profile.limit("neurons_per_core")
        index_bits = profile.limit("synapse_index_bits")
        return cls(
            neurons=neurons,
            memory_bits=profile.limit("synaptic_memory_bits_per_core"),
            fan_in=profile.limit("fan_in_axons_per_core"),
            fan_out=profile.limit("fan_out_axons_per_core"),
            synapse_weight_bits=profile.limit("stored_weight_bits") or profile.weight_bits,
            # without a stated figure, a sparse entry names one of the core's neurons
            index_bits=index_bits if index_bits is not None else max(1, math.ceil(math.log2(neurons))),
            state_bits=profile.limit("shared_state_bits_per_neuron") or 0,
            cores_per_chip=profile.limit("cores"),
            chips=chips if chips is not None else (profile.limit("chips") or 1),
        )


# -- the cost of putting rows [a, b) of one population on one core --------------------
def _distinct_columns(m: sp.csr_matrix, a: int, b: int) -> int:
    """Distinct columns with a nonzero in rows ``[a, b)`` (a mask, not a sort: this runs in the inner loop)."""
    seen = np.zeros(m.shape[1], dtype=bool)
    seen[m.indices[m.indptr[a]:m.indptr[b]]] = True
    return int(np.count_nonzero(seen))


class _RunCost:
    """Costs of a run of neurons ``[a, b)`` of one population; each grows with ``b``."""

    def __init__(self, net: Network, pop: Population, budget: CoreBudget, dest_counts: np.ndarray, matrices: dict[str, sp.csr_matrix]):
        self.n = pop.size
        self.budget = budget
        incoming = net.incoming(pop.name)
        wb, ib = budget.synapse_weight_bits, budget.index_bits
        # fan-in: one axon per distinct source neuron, however many projections it uses
        by_source: dict[str, sp.csr_matrix] = {}
        self.blocks: list[tuple[sp.csr_matrix, np.ndarray]] = []  # dense/sparse projections
        self.kernels: list[tuple[int, int]] = []  # conv: (neurons per output channel, kernel bits per channel)
        for pr in incoming:
            m = abs(matrices[pr.name]).tocsr()
            m.eliminate_zeros()
            by_source[pr.source] = m if pr.source not in by_source else (by_source[pr.source] + m).tocsr()
            if pr.kind == "conv":
                c_out, oh, ow = pr.conv.out_shape
                self.kernels.append((oh * ow, int(np.prod(np.shape(pr.weight)[1:])) * wb))
            else:
                self.blocks.append((m, np.concatenate([[0], np.cumsum(np.diff(m.indptr))])))
        self.fan_in_matrix = sp.hstack(list(by_source.values())).tocsr() if by_source else sp.csr_matrix((self.n, 0))
        self.entry_bits = wb + ib
        self.state_bits = budget.state_bits
        self.fan_out_prefix = np.concatenate([[0], np.cumsum(dest_counts)])

    def memory(self, a: int, b: int) -> int:
        bits = (b - a) * self.state_bits
        for m, nnz_prefix in self.blocks:
            nnz = int(nnz_prefix[b] - nnz_prefix[a])
            cols = _distinct_columns(m, a, b)
            bits += min((b - a) * cols * self.budget.synapse_weight_bits, nnz * self.entry_bits)
        for per_channel, kernel_bits in self.kernels:
            bits += ((b - 1) // per_channel - a // per_channel + 1) * kernel_bits
        return int(bits)

    def fan_in(self, a: int, b: int) -> int:
        return _distinct_columns(self.fan_in_matrix, a, b)

    def fan_out(self, a: int, b: int) -> int:
        return int(self.fan_out_prefix[b] - self.fan_out_prefix[a])

    def usage(self, a: int, b: int) -> dict[str, int]:
        return {
            "neurons_per_core": b - a,
            "synaptic_memory_bits_per_core": self.memory(a, b),
            "fan_in_axons_per_core": self.fan_in(a, b),
            "fan_out_axons_per_core": self.fan_out(a, b),
        }

    def capacity(self) -> dict[str, int | None]:
        bd = self.budget
        return {
            "neurons_per_core": bd.neurons,
            "synaptic_memory_bits_per_core": bd.memory_bits,
            "fan_in_axons_per_core": bd.fan_in,
            "fan_out_axons_per_core": bd.fan_out,
        }

    def violations(self, a: int, b: int) -> list[str]:
        use, cap = self.usage(a, b), self.capacity()
        return [k for k in _CHECKS if cap[k] is not None and use[k] > cap[k]]


def _partition(name: str, cost: _RunCost, budget: CoreBudget) -> tuple[list[tuple[int, int]], list[str]]:
    """Greedy longest runs; returns the runs and, per run, the limit that ended it."""
    runs, binding = [], []
    a = 0
    while a < cost.n:
        hi = min(cost.n, a + budget.neurons)
        if not cost.violations(a, hi):
            b = hi
        else:
            bad = cost.violations(a, a + 1)
            if bad:
                use, cap = cost.usage(a, a + 1), cost.capacity()
                k = bad[0]
                raise NeurocompileError(
                    f"neuron {a} of population {name!r} alone exceeds one core's {_CHECKS[k]}: "
                    f"needs {use[k]:,}, a core has {cap[k]:,} ({use[k] / cap[k]:.1f}x over)"
                )
            lo, up = a + 1, hi  # feasible at lo, infeasible at up
            while up - lo > 1:
                mid = (lo + up) // 2
                if cost.violations(a, mid):
                    up = mid
                else:
                    lo = mid
            b = lo
        if b == cost.n and b - a < budget.neurons:
            binding.append("end of population")
        elif b - a == budget.neurons:
            binding.append(_CHECKS["neurons_per_core"])
        else:
            binding.append(_CHECKS[cost.violations(a, b + 1)[0]])
        runs.append((a, b))
        a = b
    return runs, binding


def _plain(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:g}"


def _summary_binding(binding: list[str]) -> str:
    full = binding[:-1] or binding
    return Counter(full).most_common(1)[0][0] if len(binding) > 1 else "fits on one core"


@dataclass(frozen=True)
class Partition:
    """The cut of every population into per-core runs, and what each core uses.

    Depends only on the per-core limits (:meth:`CoreBudget.per_core`), not on
    how many cores or chips the system has: Loihi 2, Kapoho Point and Hala
    Point share one partition, computed once (see :func:`placements`).
    """

    chunks: dict[str, list[tuple[int, int]]]
    populations: dict[str, dict]
    cores: list[dict]  # per core: population, run, and what it uses of each limit

    @property
    def cores_used(self) -> int:
        return len(self.cores)


def partition(net: Network, budget: CoreBudget, matrices: Mapping[str, sp.csr_matrix] | None = None) -> Partition:
    """Cut every non-input population into the longest runs one core holds (see the module docstring)."""
    matrices = matrices if matrices is not None else projection_matrices(net)
    chunks: dict[str, list[tuple[int, int]]] = {}
    records: dict[str, dict] = {}
    usage: dict[str, list[dict[str, int]]] = {}
    # targets first: a population's fan-out depends on how its targets were cut
    for pop in reversed(net.neurons):
        dest = destination_core_counts(net, pop.name, chunks, matrices)
        cost = _RunCost(net, pop, budget, dest, matrices)
        runs, binding = _partition(pop.name, cost, budget)
        chunks[pop.name] = runs
        usage[pop.name] = use = [cost.usage(a, b) for a, b in runs]
        records[pop.name] = {
            "neurons": pop.size,
            "cores": len(runs),
            "binding": _summary_binding(binding),
            "chunks": [[a, b] for a, b in runs],
            "max_memory_bits": max(u["synaptic_memory_bits_per_core"] for u in use),
            "max_fan_in": max(u["fan_in_axons_per_core"] for u in use),
            "max_fan_out": max(u["fan_out_axons_per_core"] for u in use),
        }
    populations, cores = {}, []
    for pop in net.neurons:
        rec = records[pop.name]
        rec["first_core"] = len(cores)
        populations[pop.name] = rec
        for (a, b), u in zip(chunks[pop.name], usage[pop.name]):
            cores.append({"population": pop.name, "run": [a, b], **u})
    return Partition({p.name: chunks[p.name] for p in net.neurons}, populations, cores)


def _key(budget: CoreBudget) -> CoreBudget:
    return dataclasses.replace(budget, cores_per_chip=0, chips=0)


def _cached_partition(net: Network, budget: CoreBudget, matrices, cache: dict | None) -> Partition:
    if cache is None:
        return partition(net, budget, matrices)
    key = _key(budget)
    if key not in cache:
        try:
            cache[key] = partition(net, budget, matrices)
        except NeurocompileError as e:
            cache[key] = e
    hit = cache[key]
    if isinstance(hit, NeurocompileError):
        raise hit
    return hit


def _would_fit(net: Network, exclude: str, matrices, cache: dict | None) -> str:
    """Which profile in the profiles folder the network fits, smallest system first (failure path only)."""
    from ..profiles import load_profiles

    try:
        candidates = [p for p in load_profiles().values() if p.kind == "neuromorphic" and p.name != exclude]
    except NeurocompileError:
        return "no other profile to try"
    candidates.sort(key=lambda p: ((p.limit("cores") or 0) * (p.limit("chips") or 1), p.name))
    for p in candidates:
        budget = CoreBudget.from_profile(p)
        try:
            used = _cached_partition(net, budget, matrices, cache).cores_used
        except NeurocompileError:
            continue
        if used <= budget.cores:
            return f"{p.name} would fit ({used:,} of {budget.cores:,} cores)"
    return "no profile in the profiles folder fits it"


def _suggest_chips(needed: int, budget: CoreBudget) -> str:
    return f"it would fit on {math.ceil(needed / budget.cores_per_chip)} chips"


def _notes(profile: Profile, budget: CoreBudget, layout: MeshLayout) -> list[str]:
    notes = ["the input population is fed by the host (through chip 0's tile (0, 0)) and takes no core"]
    unchecked = [k for k, v in {
        "synaptic_memory_bits_per_core": budget.memory_bits,
        "fan_in_axons_per_core": budget.fan_in,
        "fan_out_axons_per_core": budget.fan_out,
    }.items() if v is None]
    if unchecked:
        notes.append(f"{profile.name} does not publish {', '.join(_CHECKS[k] for k in unchecked)}: not checked")
    if profile.limit("cores_per_tile") is None:
        notes.append(f"{profile.name} states no cores per tile: one core per tile assumed (every message counted as a mesh message)")
    if layout.chips > 1:
        notes.append(f"{layout.chips} chips laid on a grid {layout.chips_x} chips wide (arrangement not published); "
                     "chip-to-chip messages are counted, and charged as mesh hops only (no published chip-link cost)")
    for k, q in profile.limits.items():
        if q.uncertain:
            rng = f" (sources range {_plain(q.range[0])}-{_plain(q.range[1])} {q.unit})" if q.range else ""
            notes.append(f"{profile.name} {k.replace('_', ' ')} is uncertain: mapped with {_plain(q.value)} {q.unit}{rng}")
    return notes


MAX_CORE_RECORDS = 20_000
"""Per-core records kept in the mapping (JSON size); larger mappings keep per-population figures only."""


def _core_records(part: Partition, layout: MeshLayout) -> list[dict]:
    ids = np.arange(part.cores_used)
    chip, tile, x, y = layout.place(ids)
    return [{"core": int(i), **c, "chip": int(chip[i]), "tile": int(tile[i]), "x": int(x[i]), "y": int(y[i])}
            for i, c in enumerate(part.cores)]


def map_to_cores(
    net: Network,
    profile: Profile,
    *,
    chips: int | None = None,
    max_neurons_per_core: int | None = None,
    matrices: Mapping[str, sp.csr_matrix] | None = None,
    cache: dict | None = None,
) -> Network:
    """Partition ``net`` onto ``profile``'s cores and place the cores on tiles, the mesh and chips.

    Returns ``net`` with ``mapping`` set: cores and chips used, per-core use of
    each limit, the layout. ``max_neurons_per_core`` caps runs below the chip's
    limit: more cores, less work on the busiest one, so a shorter step (and
    less static energy). Raises :class:`NeurocompileError` (one line: the
    limit, by how much, and which profile would fit) when a neuron cannot fit a
    core or the network needs more cores than ``chips`` chips (default: the
    profile's ``limits.chips``) have. ``matrices`` and ``cache`` let
    :func:`placements` share work between profiles.
    """
    budget = CoreBudget.from_profile(profile, chips)
    if max_neurons_per_core is not None:
        if max_neurons_per_core < 1:
            raise NeurocompileError(f"max_neurons_per_core must be at least 1, got {max_neurons_per_core}")
        budget = dataclasses.replace(budget, neurons=min(budget.neurons, max_neurons_per_core))
    matrices = matrices if matrices is not None else projection_matrices(net)
    try:
        part = _cached_partition(net, budget, matrices, cache)
    except NeurocompileError as e:
        raise NeurocompileError(f"{e} on {profile.name}; {_would_fit(net, profile.name, matrices, cache)}, "
                                "or split or prune its incoming connections") from None
    needed, available = part.cores_used, budget.cores
    records = part.populations
    if needed > available:
        order = [p.name for p in net.neurons]
        worst = sorted(order, key=lambda n: -records[n]["cores"])[:3]
        detail = ", ".join(f"{n} {records[n]['cores']} cores ({records[n]['binding']})" for n in worst)
        raise NeurocompileError(
            f"the network needs {needed} cores, {profile.name} has {available} ({needed / available:.1f}x over); "
            f"largest: {detail}; {_suggest_chips(needed, budget)}, {_would_fit(net, profile.name, matrices, cache)}, or prune/shrink the model"
        )
    layout = mesh_layout(profile, budget.chips)
    chip, tile, _, _ = layout.place(np.arange(needed))
    mapping = {
        "profile": profile.name,
        "chips": budget.chips,
        "chips_used": int(chip.max()) + 1 if needed else 0,
        "tiles_used": int(len(np.unique(tile))),
        "cores_available": available,
        "cores_used": needed,
        "utilisation": needed / available,
        "limits": dataclasses.asdict(budget),
        "layout": layout.as_dict(),
        "checked": [_CHECKS[k] for k, v in (("synaptic_memory_bits_per_core", budget.memory_bits),
                                             ("fan_in_axons_per_core", budget.fan_in),
                                             ("fan_out_axons_per_core", budget.fan_out)) if v is not None],
        "populations": {k: dict(v) for k, v in records.items()},
        "cores": _core_records(part, layout) if needed <= MAX_CORE_RECORDS else None,
        "notes": _notes(profile, budget, layout),
    }
    mapping["checked"].insert(0, _CHECKS["neurons_per_core"])
    return net.replace(mapping=mapping)


def _own_partition(net: Network, profile: Profile) -> Partition | None:
    """The network's own mapping as a partition, when it was made for the same per-core limits (no cap)."""
    m = net.mapping
    if not isinstance(m, dict) or "limits" not in m or not m.get("cores"):
        return None
    try:
        same = _key(CoreBudget(**m["limits"])) == _key(CoreBudget.from_profile(profile))
    except TypeError:
        return None
    if not same:
        return None
    cores = [{k: c[k] for k in ("population", "run", *_CHECKS)} for c in m["cores"]]
    return Partition(chunks_of(m), {k: dict(v) for k, v in m["populations"].items()}, cores)


def placements(net: Network, profiles: Mapping[str, Profile] | Iterable[Profile],
               progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Where ``net`` sits on every neuromorphic profile's cores, for the energy model.

    A network built for one chip is costed on every profile, so each gets its
    own placement: the network's own mapping where it was made for that
    profile, else :func:`map_to_cores` onto it here (profiles with the same
    per-core limits share one partition, so a 1,152-chip system costs no more
    than one chip). One that does not fit is still placed (cores filled to
    the neuron limit) and says why. Per profile name: ``fits``, ``cores_used``,
    ``chips_used``, ``mapped_here``, ``why`` (only when it does not fit),
    ``chunks``, ``layout`` (:class:`~neurocompile.cores.MeshLayout`),
    ``routes`` (per source population, :class:`~neurocompile.cores.Routes`)
    and ``destination_cores``. ANN profiles have no cores and no entry.
    ``progress`` is called with each profile's name once it is done.
    """
    items = profiles.values() if isinstance(profiles, Mapping) else profiles
    matrices = projection_matrices(net)
    sources = [p.name for p in net.populations if any(pr.source == p.name for pr in net.projections)]
    cache: dict = {}
    out: dict[str, dict] = {}
    for profile in items:
        if progress is not None:
            progress(profile.name)
        if profile.kind != "neuromorphic":
            continue
        own = _own_partition(net, profile)
        if own is not None:
            cache.setdefault(_key(CoreBudget.from_profile(profile)), own)
        layout = mesh_layout(profile)
        m = net.mapping
        if isinstance(m, dict) and m.get("profile") == profile.name:
            chunks, place = chunks_of(m), {"fits": True, "cores_used": m["cores_used"], "mapped_here": False}
        else:
            try:
                mapped = map_to_cores(net, profile, matrices=matrices, cache=cache)
            except NeurocompileError as e:
                chunks = neuron_limited_chunks(net, profile.limit("neurons_per_core"))
                place = {"fits": False, "cores_used": sum(len(c) for c in chunks.values()), "mapped_here": True, "why": str(e)}
            else:
                chunks = chunks_of(mapped.mapping)
                place = {"fits": True, "cores_used": mapped.mapping["cores_used"], "mapped_here": True, "mapping": mapped.mapping}
        place["chips_used"] = layout.chips_used(place["cores_used"])
        place["chunks"] = chunks
        place["layout"] = layout
        place["routes"] = {s: routes(net, s, chunks, layout, matrices) for s in sources}
        place["destination_cores"] = {s: r.destinations for s, r in place["routes"].items()}
        out[profile.name] = place
    return out
