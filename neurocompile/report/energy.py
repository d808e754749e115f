"""Energy and latency per inference per hardware profile, from counted operations.

Two steps, kept apart so each can be checked by hand:

1. :func:`~neurocompile.report.counting.count_ops` (re-exported here) turns
   measured spike counts into chip-independent operation counts, as NeuroBench
   defines them.
2. :func:`estimate_energy` costs them on one profile. Neuromorphic profiles go
   through the cost model checked against measured silicon
   (:mod:`neurocompile.report.cost_model`, ``tests/test_silicon_model.py``):
   :mod:`neurocompile.report.workload` builds its :class:`Workload` from the
   counts and a placement (synaptic ops, active and idle neuron updates, spike
   messages within a tile and mesh hops, the slowest core's work per step, input
   events, the embedded CPUs' step program), and the estimate is dynamic energy
   + static power x latency, each with its breakdown, every constant's
   provenance, and a range: the constants at their label bounds (see
   :data:`neurocompile.profiles.LABEL_FACTORS`), widened to the all-updates-active
   workload (the activity bound). Which core each neuron sits on is given, not
   decided here: a placement per profile (:func:`neurocompile.passes.map.placements`);
   without one, the network's own mapping is read where it was made for that
   profile, else cores are taken as filled to the neuron limit (and the
   estimate says so). ANN profiles charge one MAC per nonzero synapse and one
   64-bit SRAM read per 64 bits of stored weights (activation traffic and DRAM
   excluded, as the profile files state).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import scipy.sparse as sp

from ..cores import chunks_of, mesh_layout, neuron_limited_chunks, projection_matrices, routes
from ..errors import NeurocompileError
from ..ir import Network
from ..profiles import Profile
from .cost_model import Estimate, dynamic_energy, latency, static_energy, time_per_step
from .counting import count_ops
from .workload import workloads

__all__ = ["count_ops", "estimate_energy", "energy_table"]


def _own_placement(net: Network, profile: Profile, mats) -> dict:
    """No placement given: the network's own mapping if made for ``profile``, else cores filled to the neuron limit (no mapping is run here)."""
    m = net.mapping
    if isinstance(m, dict) and m.get("profile") == profile.name:
        chunks, place = chunks_of(m), {"fits": True, "cores_used": m["cores_used"], "mapped_here": False}
    else:
        chunks = neuron_limited_chunks(net, profile.limit("neurons_per_core"))
        place = {"fits": None, "cores_used": sum(len(c) for c in chunks.values()), "mapped_here": False, "unmapped": True}
    layout = mesh_layout(profile)
    sources = {pr.source for pr in net.projections}
    place.update(chunks=chunks, layout=layout, chips_used=layout.chips_used(place["cores_used"]),
                 routes={s: routes(net, s, chunks, layout, mats) for s in sources})
    return place


def _placement_notes(profile: Profile, placement: Mapping) -> list[str]:
    if placement.get("unmapped"):
        return [f"not mapped onto {profile.name}: costed as if cores were filled to the neuron limit ({placement['cores_used']} cores)"]
    if not placement["fits"]:
        return [f"does not fit {profile.name}: {placement['why']}. Costed as if cores were filled to the neuron limit"]
    if placement.get("mapped_here"):
        return [f"mapped onto {profile.name} for this estimate: {placement['cores_used']} cores on {placement['chips_used']} chip(s)"]
    return []


def _range(*estimates: Estimate) -> list[float]:
    return [min(e.low for e in estimates), max(e.high for e in estimates)]


def _short(e: Estimate) -> dict:
    d = e.as_dict()
    d.pop("provenance")
    return d


def _neuromorphic(net: Network, ops: dict, profile: Profile, mats, placement: Mapping) -> dict:
    notes = _placement_notes(profile, placement)
    w, w_all, traffic = workloads(net, ops, profile, placement, mats, placement["chips_used"])
    dyn, dyn_all = dynamic_energy(w, profile), dynamic_energy(w_all, profile)
    notes += list(dyn.notes)
    notes.append("events spread evenly over each population's neurons (totals exact); an update is active when the neuron "
                 "receives an event that step (Poisson estimate); the range's top charges every update as active")
    if w.x86_share:
        notes.append(f"the embedded CPUs' step program is charged once per chip used per step ({placement['chips_used']} chip(s))")
    breakdown = {t.name: t.value for t in dyn.terms}
    prov = dict(dyn.provenance)
    out: dict = {"dynamic_j": dyn.value, "estimates": {"dynamic": _short(dyn)}}
    lo_hi = [[dyn.low, dyn_all.high]]
    if profile.has_timing:
        lat, lat_all = latency(w, profile), latency(w_all, profile)
        step = time_per_step(w, profile)
        notes += [n for n in lat.notes if n not in notes]
        out.update(latency_s=lat.value, latency_range_s=_range(lat, lat_all), time_per_step_s=step.value,
                   latency_breakdown={t.name: t.value for t in lat.terms})
        out["estimates"]["latency"] = _short(lat)
        prov.update(lat.provenance)
        if "static_power" in profile.energy:
            st, st_all = static_energy(w, profile), static_energy(w_all, profile)
            breakdown["static"] = st.value
            out["static_j"] = st.value
            out["estimates"]["static"] = _short(st)
            prov.update(st.provenance)
            lo_hi.append([st.low, st_all.high])
            if profile.limit("chips") and profile.limit("chips") > placement["chips_used"]:
                notes.append(f"static power charged for the {placement['chips_used']} chip(s) used, not the system's {profile.limit('chips'):,}")
    else:
        out.update(latency_s=None, latency_range_s=None, time_per_step_s=None, latency_breakdown=None)
        if "static_power" in profile.energy:
            q = profile.energy["static_power"]
            notes.append(f"static power ({q.value:g} {q.unit}) excluded: {profile.name} gives no timing to charge it over")
    total = float(sum(breakdown.values()))
    out.update(
        joules_per_sample=total,
        range_j=[sum(lo for lo, _ in lo_hi), sum(hi for _, hi in lo_hi)],
        breakdown=breakdown,
        counts={
            "synop": w.total("synops"),
            "neuron_update": w.total("active_updates"),
            "neuron_update_idle": w.total("idle_updates"),
            "spike_message": traffic.within_tile + traffic.mesh,
            "mesh_hop": traffic.mesh_hops,
            "input_event": w.input_events,
            "x86_step": w.steps * w.x86_share,
        },
        traffic=traffic.as_dict(),
        fits=placement["fits"],
        cores_used=placement["cores_used"],
        chips_used=placement["chips_used"],
        provenance=prov,
    )
    if total > 0 and breakdown.get("static", 0.0) > 0.5 * total:
        notes.append(
            f"static power is {100 * breakdown['static'] / total:.0f} % of the total: it is charged for the modelled latency, "
            "which the slowest core and the input sets"
        )
    out["notes"] = notes
    return out


def _ann(ops: dict, profile: Profile) -> dict:
    counts = {"mac": float(ops["dense_macs"]), "sram_read_64b": ops["parameters"] * profile.weight_bits / 64.0}
    breakdown, lo, hi, prov = {}, 0.0, 0.0, {}
    for term, n in counts.items():
        if term in profile.energy:
            q = profile.energy[term]
            breakdown[term] = n * q.si
            b = q.bounds_si()
            lo, hi = lo + n * b[0], hi + n * b[1]
            prov[f"energy.{term}"] = q.as_dict()
    notes = ["ANN baseline: one MAC per nonzero synapse; each stored weight read once from SRAM; activation traffic, DRAM and static power excluded"]
    for term in profile.energy:
        if term not in counts:
            notes.append(f"energy.{term} is not charged for a {profile.kind} profile")
    return {"joules_per_sample": float(sum(breakdown.values())), "range_j": [lo, hi], "breakdown": breakdown, "counts": counts,
            "latency_s": None, "latency_range_s": None, "latency_breakdown": None, "fits": None, "cores_used": None,
            "chips_used": None, "provenance": prov, "notes": notes}


def estimate_energy(
    net: Network,
    ops: dict,
    profile: Profile,
    *,
    placement: Mapping | None = None,
    matrices: Mapping[str, sp.csr_matrix] | None = None,
) -> dict:
    """Joules and seconds per inference on ``profile``, with breakdown, range and every constant's provenance.

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
        est = _neuromorphic(net, ops, profile, mats, placement)
    elif profile.kind == "ann":
        est = _ann(ops, profile)
    else:  # pragma: no cover - parse_profile refuses other kinds
        raise NeurocompileError(f"profile {profile.name}: unknown kind {profile.kind!r}")
    for section in ("derivation", "calibration"):  # how estimated constants were obtained
        for key, q in getattr(profile, section).items():
            est["provenance"][f"{section}.{key}"] = q.as_dict()
    charged = [p for k, p in est["provenance"].items() if k.startswith(("energy.", "time."))]
    return {
        "profile": profile.name,
        "title": profile.title,
        "kind": profile.kind,
        **est,
        "labels": sorted({p["label"] for p in charged}),
        "uncertain": any(p.get("uncertain", False) for p in charged),
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
