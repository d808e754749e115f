"""The adapter from a built network to the cost model: counted events + a placement -> :class:`Workload`.

Why here and not in :mod:`cost_model`: the cost model stays IR-free (it is
checked against published silicon workloads that exist only as shapes and
rates); this module is the one place that reads a :class:`~neurocompile.ir.Network`,
its operation counts (:func:`neurocompile.report.counting.count_ops`) and
where its neurons sit (:func:`neurocompile.passes.map.placements`).

What it decides (each choice is named in the estimate's notes):

* Events spread evenly over a population's neurons (the pipeline counts
  totals per sample); each projection's synops are rescaled to
  ``count_ops``' exact total, so totals are exact and only the split is not.
* Active vs idle neuron updates: a neuron's update is *active* when it
  receives at least one event in the step (Davies et al. 2018; SANA-FE's
  active/inactive update). With ``λ`` events arriving per neuron per step,
  independent arrivals give ``1 - exp(-λ)`` (Poisson). State kept from earlier
  steps can also make an update active, so the *all-active* workload
  (:func:`workloads` returns both) bounds the estimate from above.
* Spike messages: one per destination core (:class:`~neurocompile.cores.Routes`),
  within the sender's tile or across the mesh, with the hops of the latter;
  between chips counted apart.
* The slowest core per population: each core's own synops, updates and sent
  messages per step, the one the profile's per-op times make slowest.
* System terms: one embedded-CPU step program per chip used per step (Lava and
  NxSDK run one; measured on Loihi for the LSNN run, transferred to Loihi 2 for
  PilotNet, see the profiles), input events from the host.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from ..cores import Routes
from ..ir import Network
from ..profiles import Profile
from .cost_model import CoreStep, PopulationLoad, Workload, core_time


@dataclass(frozen=True)
class Traffic:
    """Spike messages per inference by where they go (all of them, host input included)."""

    within_tile: float
    mesh: float
    mesh_hops: float
    between_chips: float

    def as_dict(self) -> dict[str, float]:
        return {"within_tile": self.within_tile, "mesh": self.mesh, "mesh_hops": self.mesh_hops, "between_chips": self.between_chips}


def _spread(total: float, n: int) -> np.ndarray:
    return np.full(n, total / n if n else 0.0)


def incoming_synops(net: Network, ops: dict, matrices: Mapping[str, sp.csr_matrix]) -> dict[str, np.ndarray]:
    """Per non-input population: synaptic operations per sample at each of its neurons."""
    out = {p.name: np.zeros(p.size) for p in net.neurons}
    for pr in net.projections:
        m = matrices[pr.name]
        structure = sp.csr_matrix((np.ones(len(m.data)), m.indices, m.indptr), shape=m.shape)
        structure.data[m.data == 0] = 0
        src = ops["per_population"][pr.source]
        per_neuron = structure @ _spread(src["spikes"], src["neurons"])
        total, want = per_neuron.sum(), ops["per_projection"][pr.name]["synops"]
        out[pr.target] += per_neuron * (want / total) if total > 0 else per_neuron
    return out


def _runs_sum(values: np.ndarray, runs: list[tuple[int, int]]) -> np.ndarray:
    return np.array([values[a:b].sum() for a, b in runs], dtype=np.float64)


def _load_key(profile: Profile):
    """How to pick a population's slowest core: by the profile's per-op times, else by operations."""
    if profile.has_timing:
        return lambda c: core_time(c, profile)
    return lambda c: c.synops + c.active_updates + c.idle_updates + c.messages


def workloads(
    net: Network,
    ops: dict,
    profile: Profile,
    placement: Mapping,
    matrices: Mapping[str, sp.csr_matrix],
    chips_used: int,
) -> tuple[Workload, Workload, Traffic]:
    """(nominal workload, all-updates-active workload, traffic) of one inference on ``profile``."""
    steps = ops["steps_per_sample"]
    syn_in = incoming_synops(net, ops, matrices)
    route_of: Mapping[str, Routes] = placement["routes"]
    nominal, active_all = [], []
    tile = mesh = hops = chips = 0.0
    for pop in net.populations:
        rec = ops["per_population"][pop.name]
        ev = _spread(rec["spikes"], pop.size)
        r = route_of.get(pop.name)
        msg = ev * r.destinations if r is not None else np.zeros(pop.size)
        m_tile, m_mesh = (float(ev @ r.tile), float(ev @ r.mesh)) if r is not None else (0.0, 0.0)
        m_hops, m_chip = (float(ev @ r.hops), float(ev @ r.chip)) if r is not None else (0.0, 0.0)
        tile, mesh, hops, chips = tile + m_tile, mesh + m_mesh, hops + m_hops, chips + m_chip
        if pop.name == net.input:
            load = PopulationLoad(pop.name, pop.size, pop.kind, rec["spikes"], 0.0, 0.0, 0.0, 0, m_tile, m_mesh, m_hops)
            nominal.append(load)
            active_all.append(load)
            continue
        runs = placement["chunks"][pop.name]
        lam = syn_in[pop.name] / steps
        active = steps * (1.0 - np.exp(-lam))
        per_core = {
            "syn": _runs_sum(syn_in[pop.name], runs), "msg": _runs_sum(msg, runs),
            "act": _runs_sum(active, runs), "all": np.array([(b - a) * steps for a, b in runs], dtype=np.float64),
        }
        for out, act in ((nominal, per_core["act"]), (active_all, per_core["all"])):
            idle = per_core["all"] - act
            steps_of = [CoreStep(s / steps, a / steps, i / steps, m / steps) for s, a, i, m in zip(per_core["syn"], act, idle, per_core["msg"])]
            slowest = max(steps_of, key=_load_key(profile)) if steps_of else CoreStep()
            out.append(PopulationLoad(pop.name, pop.size, pop.kind, rec["spikes"], float(syn_in[pop.name].sum()),
                                      float(act.sum()), float(idle.sum()), len(runs), m_tile, m_mesh, m_hops, slowest))
    x86 = float(chips_used) if "x86_step" in profile.energy else 0.0
    common = dict(input_events=ops["input_events"], x86_share=x86, chips=chips_used)
    return (Workload("network", steps, tuple(nominal), **common),
            Workload("all updates active", steps, tuple(active_all), **common),
            Traffic(tile, mesh, hops, chips))
