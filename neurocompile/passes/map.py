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

The result is recorded in ``net.meta["mapping"]`` (plain ints, lists, strings).
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import scipy.sparse as sp

from ..cores import chunks_of, destination_core_counts, neuron_limited_chunks, projection_matrices
from ..errors import NeurocompileError
from ..ir import Network, Population
from ..profiles import Profile

__all__ = ["CoreBudget", "destination_core_counts", "map_to_cores", "placements"]  # destination_core_counts: from neurocompile.cores

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
                    f"needs {use[k]:,}, a core has {cap[k]:,} ({use[k] / cap[k]:.1f}x over); "
                    "split or prune its incoming connections"
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


def map_to_cores(net: Network, profile: Profile, *, chips: int | None = None, max_neurons_per_core: int | None = None) -> Network:
    """Partition ``net`` onto ``profile``'s cores; returns it with ``meta["mapping"]``.

    ``max_neurons_per_core`` caps runs below the chip's limit: more cores, less
    work on the busiest one, so a shorter step (and less static energy).
    Raises :class:`NeurocompileError` saying by how much when the network needs
    more cores than ``chips`` chips (default: the profile's ``limits.chips``) have.
    """
    budget = CoreBudget.from_profile(profile, chips)
    if max_neurons_per_core is not None:
        if max_neurons_per_core < 1:
            raise NeurocompileError(f"max_neurons_per_core must be at least 1, got {max_neurons_per_core}")
        budget = dataclasses.replace(budget, neurons=min(budget.neurons, max_neurons_per_core))
    matrices = projection_matrices(net)
    chunks: dict[str, list[tuple[int, int]]] = {}
    records: dict[str, dict] = {}
    # targets first: a population's fan-out depends on how its targets were cut
    for pop in reversed(net.populations[1:]):
        dest = destination_core_counts(net, pop.name, chunks, matrices)
        cost = _RunCost(net, pop, budget, dest, matrices)
        runs, binding = _partition(pop.name, cost, budget)
        chunks[pop.name] = runs
        use = [cost.usage(a, b) for a, b in runs]
        records[pop.name] = {
            "neurons": pop.size,
            "cores": len(runs),
            "binding": _summary_binding(binding),
            "chunks": [[a, b] for a, b in runs],
            "max_memory_bits": max(u["synaptic_memory_bits_per_core"] for u in use),
            "max_fan_in": max(u["fan_in_axons_per_core"] for u in use),
            "max_fan_out": max(u["fan_out_axons_per_core"] for u in use),
        }
    order = [p.name for p in net.populations[1:]]
    first = 0
    populations = {}
    for name in order:
        rec = records[name]
        rec["first_core"] = first
        first += rec["cores"]
        populations[name] = rec

    needed, available = first, budget.cores
    if needed > available:
        worst = sorted(order, key=lambda n: -records[n]["cores"])[:3]
        detail = ", ".join(f"{n} {records[n]['cores']} cores ({records[n]['binding']})" for n in worst)
        chips_needed = math.ceil(needed / budget.cores_per_chip)
        raise NeurocompileError(
            f"the network needs {needed} cores, {profile.name} has {available} ({needed / available:.1f}x over); "
            f"largest: {detail}; it would fit on {chips_needed} chips, or prune/shrink the model"
        )

    notes = ["the input population is fed by the host and takes no core"]
    unchecked = [k for k, v in {
        "synaptic_memory_bits_per_core": budget.memory_bits,
        "fan_in_axons_per_core": budget.fan_in,
        "fan_out_axons_per_core": budget.fan_out,
    }.items() if v is None]
    if unchecked:
        notes.append(f"{profile.name} does not publish {', '.join(_CHECKS[k] for k in unchecked)}: not checked")
    for k, q in profile.limits.items():
        if q.uncertain:
            rng = f" (sources range {_plain(q.range[0])}-{_plain(q.range[1])} {q.unit})" if q.range else ""
            notes.append(f"{profile.name} {k.replace('_', ' ')} is uncertain: mapped with {_plain(q.value)} {q.unit}{rng}")

    mapping = {
        "profile": profile.name,
        "chips": budget.chips,
        "cores_available": available,
        "cores_used": needed,
        "utilisation": needed / available,
        "limits": dataclasses.asdict(budget),
        "checked": [_CHECKS[k] for k in _CHECKS if k not in unchecked],
        "populations": populations,
        "notes": notes,
    }
    return net.replace(meta={**net.meta, "mapping": mapping})


def placements(net: Network, profiles: Mapping[str, Profile] | Iterable[Profile]) -> dict[str, dict]:
    """Where ``net`` sits on every neuromorphic profile's cores, for the energy model.

    A network built for one chip is costed on every profile, so each gets its
    own partition: the network's own mapping where it was made for that
    profile, else :func:`map_to_cores` onto it here; one that does not fit is
    still placed (cores filled to the neuron limit) and says why. Per profile
    name: ``fits``, ``cores_used``, ``mapped_here`` (mapped for this estimate),
    ``why`` (only when it does not fit), ``chunks`` (population → runs of
    neurons per core) and ``destination_cores`` (per population with outgoing
    synapses, the cores each of its neurons' spikes reach). ANN profiles have
    no cores and no entry.
    """
    items = profiles.values() if isinstance(profiles, Mapping) else profiles
    matrices = projection_matrices(net)
    sources = [p.name for p in net.populations if any(pr.source == p.name for pr in net.projections)]
    out: dict[str, dict] = {}
    for profile in items:
        if profile.kind != "neuromorphic":
            continue
        own = net.meta.get("mapping")
        if isinstance(own, dict) and own.get("profile") == profile.name:
            chunks, place = chunks_of(own), {"fits": True, "cores_used": own["cores_used"], "mapped_here": False}
        else:
            try:
                mapped = map_to_cores(net, profile)
            except NeurocompileError as e:
                chunks = neuron_limited_chunks(net, profile.limit("neurons_per_core"))
                place = {"fits": False, "cores_used": sum(len(c) for c in chunks.values()), "mapped_here": True, "why": str(e)}
            else:
                chunks = chunks_of(mapped.meta["mapping"])
                place = {"fits": True, "cores_used": mapped.meta["mapping"]["cores_used"], "mapped_here": True}
        place["chunks"] = chunks
        place["destination_cores"] = {s: destination_core_counts(net, s, chunks, matrices) for s in sources}
        out[profile.name] = place
    return out
