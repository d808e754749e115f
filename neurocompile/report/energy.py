"""Operation counts (NeuroBench's definitions) and energy per hardware profile.

Two steps, kept apart so each can be checked by hand:

1. :func:`count_ops` turns measured spike counts into operation counts that do
   not depend on any chip: synaptic operations, neuron updates, the equivalent
   ANN's MACs, sparsity. The definitions follow NeuroBench so a user can check
   the report against it:

   * synaptic operations: for every projection, each event of a source neuron
     costs one operation per outgoing synapse of that neuron (the column's
     nonzeros in ``proj.matrix()``). The input population's events are its
     nonzero frames. Events from a *graded* source (one whose messages carry a
     payload: the input under ``direct`` encoding) are NeuroBench's effective
     MACs; binary spikes are effective ACs.
   * neuron updates: every non-input neuron, every step of the period.
   * dense MACs: the equivalent ANN does one MAC per nonzero synapse per
     inference (pruned weights skipped; equal to NeuroBench's Dense count
     when nothing is pruned).
   * activation sparsity: 1 - spikes / (spiking neurons x steps).

2. :func:`estimate_energy` multiplies those counts by one profile's
   per-operation costs (``[energy]``, ``[time]`` in its TOML) and says where
   every constant came from. Neuromorphic profiles charge synaptic ops, neuron
   updates, spike messages (one per destination core), input events, and
   static power over the modelled latency. Which core each neuron sits on is
   given, not decided here: a placement per profile
   (:func:`neurocompile.passes.map.placements`, which the pipeline calls; a
   network that does not fit is costed with cores filled to the neuron limit
   and says so). Without one, the network's own mapping is read where it was
   made for that profile, else cores are taken as filled to the neuron limit
   (and the estimate says so). ANN
   profiles charge MACs and one 64-bit SRAM read per 64 bits of stored weights
   (each weight fetched once per inference); activation traffic and DRAM are
   excluded, which the profile file states.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import scipy.sparse as sp

from ..cores import chunks_of, destination_core_counts, neuron_limited_chunks, projection_matrices
from ..errors import NeurocompileError
from ..ir import Network
from ..profiles import Profile

SpikeCounts = Mapping[str, "float | np.ndarray"]


# -- counting ------------------------------------------------------------------------
def _events(net: Network, spikes_per_sample: SpikeCounts, name: str) -> np.ndarray | float:
    """Events per sample of population ``name``: a per-neuron vector, or a total."""
    pop = net.population(name)
    if name not in spikes_per_sample:
        if pop.kind == "readout":
            return 0.0
        what = "its nonzero input frames" if name == net.input else "its spikes"
        raise NeurocompileError(f"spikes_per_sample has no entry for population {name!r} (pass {what} per sample)")
    v = spikes_per_sample[name]
    if np.ndim(v) == 0:
        return float(v)
    v = np.asarray(v, dtype=np.float64).ravel()
    if v.size != pop.size:
        raise NeurocompileError(f"spikes_per_sample[{name!r}] has {v.size} entries; population {name!r} has {pop.size} neurons")
    return v


def _total(events: np.ndarray | float) -> float:
    return float(np.sum(events))


def _stored_weights(proj) -> tuple[int, int]:
    """(nonzero, total) weights as stored: a conv kernel once, a dense or sparse matrix entry-wise."""
    w = proj.weight
    if sp.issparse(w):
        return int(w.count_nonzero()), int(np.prod(w.shape))
    w = np.asarray(w)
    return int(np.count_nonzero(w)), int(w.size)


def count_ops(
    net: Network,
    spikes_per_sample: SpikeCounts,
    steps_per_sample: int,
    *,
    graded_sources: Iterable[str] | None = None,
    matrices: Mapping[str, sp.csr_matrix] | None = None,
) -> dict:
    """Chip-independent operation counts per sample (see the module docstring).

    ``spikes_per_sample``: per population, events per sample: a float (the
    population's total; synops then assume the events spread evenly over its
    neurons) or a per-neuron array (exact). Include the input population's
    nonzero frames. ``steps_per_sample``: the period (T + depth).
    ``graded_sources``: populations whose events carry a payload; default: the
    input when ``net.meta["encoding"]`` is ``direct`` (the default encoding).
    ``matrices``: the projections' CSR matrices if already built (saves rebuilding conv matrices).
    """
    if steps_per_sample <= 0:
        raise NeurocompileError(f"steps_per_sample must be positive, got {steps_per_sample}")
    if graded_sources is None:
        graded_sources = {net.input} if net.meta.get("encoding", "direct") == "direct" else set()
    graded = set(graded_sources)
    mats = matrices if matrices is not None else projection_matrices(net)

    per_projection: dict[str, dict] = {}
    acs = macs = 0.0
    dense_macs = parameters = total_weights = 0
    for pr in net.projections:
        m = mats[pr.name].copy()
        m.eliminate_zeros()
        fan_out = m.getnnz(axis=0)  # synapses per source neuron
        ev = _events(net, spikes_per_sample, pr.source)
        synops = float(fan_out @ ev) if isinstance(ev, np.ndarray) else ev * m.nnz / m.shape[1]
        if pr.source in graded:
            macs += synops
        else:
            acs += synops
        nz, tot = _stored_weights(pr)
        dense_macs += int(m.nnz)
        parameters += nz
        total_weights += tot
        per_projection[pr.name] = {
            "source": pr.source,
            "target": pr.target,
            "synapses": int(m.nnz),
            "mean_fan_out": float(m.nnz / m.shape[1]) if m.shape[1] else 0.0,
            "synops": synops,
            "graded": pr.source in graded,
        }

    per_population: dict[str, dict] = {}
    updates = spikes = spiking_neurons = 0.0
    input_events = 0.0
    for p in net.populations:
        ev = _total(_events(net, spikes_per_sample, p.name))
        rec = {"kind": p.kind, "neurons": p.size, "spikes": ev}
        if p.name == net.input:
            input_events = ev
        else:
            rec["updates"] = float(p.size * steps_per_sample)
            updates += rec["updates"]
            if p.kind == "spiking":
                spikes += ev
                spiking_neurons += p.size
        rec["rate_per_step"] = ev / (p.size * steps_per_sample)
        per_population[p.name] = rec

    return {
        "steps_per_sample": int(steps_per_sample),
        "synops": acs + macs,
        "effective_acs": acs,
        "effective_macs": macs,
        "neuron_updates": updates,
        "spikes": spikes,
        "input_events": input_events,
        "dense_macs": dense_macs,
        "parameters": parameters,
        "activation_sparsity": 1.0 - spikes / (spiking_neurons * steps_per_sample) if spiking_neurons else 1.0,
        "connection_sparsity": 1.0 - parameters / total_weights if total_weights else 0.0,
        "graded_sources": sorted(graded),
        "per_projection": per_projection,
        "per_population": per_population,
    }


# -- costing -------------------------------------------------------------------------
def _own_placement(net: Network, profile: Profile, mats) -> dict:
    """No placement given: the network's own mapping if made for ``profile``, else cores filled to the neuron limit (no mapping is run here)."""
    m = net.meta.get("mapping")
    if isinstance(m, dict) and m.get("profile") == profile.name:
        chunks, place = chunks_of(m), {"fits": True, "cores_used": m["cores_used"], "mapped_here": False}
    else:
        chunks = neuron_limited_chunks(net, profile.limit("neurons_per_core"))
        place = {"fits": None, "cores_used": sum(len(c) for c in chunks.values()), "mapped_here": False, "unmapped": True}
    sources = {pr.source for pr in net.projections}
    return {**place, "chunks": chunks, "destination_cores": {s: destination_core_counts(net, s, chunks, mats) for s in sources}}


def _spike_messages(net: Network, ops: dict, placement: Mapping) -> dict[str, np.ndarray]:
    """Per population with outgoing synapses: expected messages per neuron per sample.

    Each event becomes one message per distinct destination core; events are
    spread evenly over a population's neurons (totals are exact, the split is not).
    """
    out = {}
    for name in {pr.source for pr in net.projections}:
        rec = ops["per_population"][name]
        out[name] = placement["destination_cores"][name] * (rec["spikes"] / rec["neurons"])
    return out


def _neuromorphic_counts(net: Network, ops: dict, profile: Profile, mats, placement: Mapping) -> tuple[dict, dict | None, list[str]]:
    notes: list[str] = []
    chunks = placement["chunks"]
    if placement.get("unmapped"):
        notes.append(f"not mapped onto {profile.name}: costed as if cores were filled to the neuron limit ({placement['cores_used']} cores)")
    elif not placement["fits"]:
        notes.append(f"does not fit {profile.name}: {placement['why']}. Costed as if cores were filled to the neuron limit")
    elif placement["mapped_here"]:
        notes.append(f"mapped onto {profile.name} for this estimate: {placement['cores_used']} cores")
    messages = _spike_messages(net, ops, placement)
    counts = {
        "synop": ops["synops"],
        "neuron_update": ops["neuron_updates"],
        "spike_message": float(sum(v.sum() for v in messages.values())),
        "input_event": ops["input_events"],
    }
    if not profile.has_timing:
        return counts, None, notes

    t = {k: q.si for k, q in profile.time.items()}
    steps = ops["steps_per_sample"]
    busiest = 0.0
    for pop in net.populations[1:]:
        inc = net.incoming(pop.name)
        msgs = messages.get(pop.name)
        for a, b in chunks.get(pop.name, []):
            synops = 0.0
            for pr in inc:
                m = mats[pr.name]
                share = (m.indptr[b] - m.indptr[a]) / m.nnz if m.nnz else 0.0
                synops += ops["per_projection"][pr.name]["synops"] * share
            work = synops * t["synop"] + (b - a) * steps * t["neuron_update"]
            if msgs is not None:
                work += float(msgs[a:b].sum()) * t.get("spike_message", 0.0)
            busiest = max(busiest, work)
    latency = {
        "busiest_core_s": busiest,
        "barrier_sync_s": steps * t.get("barrier_sync", 0.0),
        "input_s": ops["input_events"] * t.get("input_event", 0.0),
    }
    notes.append("latency = busiest core's work + a barrier per step + input events delivered one after another; work spread evenly over steps")
    if "input_event" not in profile.time:
        notes.append(f"{profile.name} has no input-event time: host I/O is not in the latency")
    return counts, latency, notes


def _ann_counts(ops: dict, profile: Profile) -> tuple[dict, None, list[str]]:
    counts = {
        "mac": float(ops["dense_macs"]),
        "sram_read_64b": ops["parameters"] * profile.weight_bits / 64.0,
    }
    notes = ["ANN baseline: one MAC per nonzero synapse; each stored weight read once from SRAM; activation traffic, DRAM and static power excluded"]
    return counts, None, notes


def estimate_energy(
    net: Network,
    ops: dict,
    profile: Profile,
    *,
    placement: Mapping | None = None,
    matrices: Mapping[str, sp.csr_matrix] | None = None,
) -> dict:
    """Joules per sample on ``profile``, with the breakdown and every constant's provenance.

    ``ops`` is what :func:`count_ops` returned for ``net``. ``placement``:
    where ``net`` sits on ``profile``'s cores (one entry of
    :func:`neurocompile.passes.map.placements`); without it see the module
    docstring. ``latency_s`` is None when the profile gives no timing;
    ``fits`` is whether the network fits the chip (None for ANN baselines,
    and when no placement was given and the network was not mapped for it).
    """
    if profile.kind == "neuromorphic":
        mats = matrices if matrices is not None else projection_matrices(net)
        placement = placement if placement is not None else _own_placement(net, profile, mats)
        counts, latency, notes = _neuromorphic_counts(net, ops, profile, mats, placement)
    else:
        counts, latency, notes = _ann_counts(ops, profile)
        placement = {"fits": None, "cores_used": None}

    breakdown: dict[str, float] = {}
    provenance: dict[str, dict] = {}
    for term, q in profile.energy.items():
        if term == "static_power":
            continue
        if term not in counts:
            notes.append(f"energy.{term} is not charged for a {profile.kind} profile")
            continue
        breakdown[term] = counts[term] * q.si
        provenance[f"energy.{term}"] = q.as_dict()

    latency_s = sum(latency.values()) if latency is not None else None
    if "static_power" in profile.energy:
        q = profile.energy["static_power"]
        if latency_s is None:
            notes.append(f"static power ({q.value:g} {q.unit}) excluded: {profile.name} gives no timing to charge it over")
        else:
            breakdown["static"] = q.si * latency_s
            provenance["energy.static_power"] = q.as_dict()
    if latency is not None:
        for term, q in profile.time.items():
            provenance[f"time.{term}"] = q.as_dict()
    for section in ("derivation", "calibration"):  # how estimated constants were obtained
        for key, q in getattr(profile, section).items():
            provenance[f"{section}.{key}"] = q.as_dict()

    total = float(sum(breakdown.values()))
    if total > 0 and breakdown.get("static", 0.0) > 0.5 * total:
        notes.append(
            f"static power is {100 * breakdown['static'] / total:.0f} % of the total: it is charged for the modelled latency, "
            "which the busiest core sets; spreading the network over more cores would shorten it"
        )
    charged = [p for k, p in provenance.items() if k.startswith(("energy.", "time."))]
    return {
        "profile": profile.name,
        "title": profile.title,
        "kind": profile.kind,
        "joules_per_sample": total,
        "breakdown": breakdown,
        "counts": counts,
        "latency_s": latency_s,
        "latency_breakdown": latency,
        "fits": placement["fits"],
        "cores_used": placement["cores_used"],
        "labels": sorted({p["label"] for p in charged}),
        "uncertain": any(p.get("uncertain", False) for p in charged),
        "provenance": provenance,
        "notes": notes,
    }


def energy_table(
    net: Network,
    ops: dict,
    profiles: Mapping[str, Profile] | Iterable[Profile],
    placements: Mapping[str, Mapping] | None = None,
) -> dict[str, dict]:
    """:func:`estimate_energy` for every profile, keyed by profile name.

    ``placements``: per neuromorphic profile name, where ``net`` sits on its
    cores (:func:`neurocompile.passes.map.placements`).
    """
    items = profiles.values() if isinstance(profiles, Mapping) else profiles
    mats = projection_matrices(net)
    given = placements or {}
    return {p.name: estimate_energy(net, ops, p, placement=given.get(p.name), matrices=mats) for p in items}
