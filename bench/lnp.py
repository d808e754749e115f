"""Lyapunov Noise Pruning against random and activity pruning on chaotic one-step prediction (issue 10's targets).

    python bench/lnp.py [--quick] [--neurons N] [--seeds S] [--neuron-sparsity 0.6] [--synapse-sparsity 0.9]
                        [--samples L] [--variants] [--same-fraction] [--tau-search] [--out bench/out/]

What is compared, per task (Lorenz, Rössler) and seed:

* the **dense** network: an untrained HRSNN (3 inputs, ``--neurons`` LIF neurons with gamma-distributed
  membrane τ, a 10 %-dense random recurrence, 3 readouts) whose readout alone is fitted by ridge
  regression (:func:`neurocompile.tasks.train_readout`, penalty picked on the validation split);
* three pruned versions of the *same* untrained network, all at equal sparsity (``--neuron-sparsity``
  of the neurons removed, then ``--synapse-sparsity`` of the recurrent synapses among the survivors),
  produced by the IR pass :func:`neurocompile.passes.prune.prune` on ``ingest_model(model)`` and applied
  with ``model.pruned(kept, pruned recurrent weights)``; each gets its own ridge readout the same way:

  - ``lnp``: Lyapunov Noise Pruning with the pass's default settings (task-agnostic, before training);
  - ``random``: uniformly random neurons, then random synapses among them;
  - ``rand-neur`` (a reference, not a competitor): the same random neurons with *every* synapse among
    them kept -- what removing the neurons alone costs. It is why target (a) is out of reach here: the
    readout sees only the hidden neurons' traces (not the input; the same for every method), so 60 %
    fewer neurons means 60 % fewer features, and on this network the recurrence carries almost
    nothing (``rand-neur`` ≈ ``random``, measured at 200 and 500 neurons);
  - ``activity``: the least active neurons go, then the smallest-|w| synapses. "Activity" is the mean
    spike rate (spikes per step) of each hidden neuron of the dense network over the task's *training*
    rows, recorded in the same streaming run its ridge readout is trained on (hidden spikes do not
    depend on the readout, so "after training" and "before" give the same rates here).

Score: test NRMSE of the one-step forecast (z-scored series, chronological 60/20/20 split, the model's
own streaming readout). Each seed changes the network (τ, mask, weights) and the stretch of the
attractor; the same seed is the pruning seed. Reported: mean ± std over seeds, the mean of the per-seed
ratios NRMSE / dense NRMSE, neurons and recurrent synapses kept (of the dense network's), and the
pass's before/after statistics: spectral radius of W and the largest Lyapunov exponent of the *spiking*
network as the pass estimates it (finite-size perturbation growth with Benettin renormalisation on the
population's own LIF neurons, frozen input noise: ``neurocompile.lnp.spiking_lyapunov``; per time step).
LNP is bit-reproducible (single-threaded eigensolves), so repeated runs give the same numbers.

Targets checked (issue 10): LNP within 2 % of the dense NRMSE with ≥ 60 % of the neurons and ≥ 90 % of
the synapses pruned; LNP's mean NRMSE below random's and activity's on every task; LNP's largest
Lyapunov exponent after pruning ≤ the dense network's (every seed). A plot of NRMSE per method per task
(error bars: std over seeds) is written to ``--out``/lnp.png.

"Equal sparsity" is the pass's convention: the same number of neurons kept, and the same fraction of the
recurrent synapses *among the survivors* removed. LNP keeps high-betweenness (well-connected) neurons, so
the same fraction would leave it more synapses than the baselines (20 % more at 200 neurons). So by
default each baseline gets the synapse sparsity that leaves exactly LNP's synapse count (same kept
neurons; LNP's count includes its delocalisation edges); ``--same-fraction`` gives every method the
same fraction instead. ``--variants`` adds two LNP variants, run through ``neurocompile.lnp`` directly
since the pass uses the defaults: ``lnp-sample`` (``LnpSettings(sampling="sample")``: Moore & Chaudhuri's
rule as published, survivors rescaled by 1/p, count right only in expectation -- the former default)
and ``lnp-priority`` (the same rule with an exact count). ``--tau-search`` applies LNP's step 5 to
every pruned network, LNP's and the baselines' alike: :func:`neurocompile.lnp.search_tau` (20 TPE
trials, task-agnostic objective) on the pruned recurrent weights, then the kept neurons' τ are
redrawn from the distribution found. Off by default: it re-draws every τ, so it changes the neuron
model as much as the pruning, and the dense network is not searched; the λspk (spiking network) and ρ columns are
still those of the pruned network with its original τ (the pass's record).

Sizes: ``--quick`` is 200 neurons, 2 seeds, 2,000 samples; the default (500 neurons, 5 seeds, 3,000
samples) is the issue's study, a few minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from neurocompile.frontend.rsnn import ingest_model
from neurocompile.ir import Network
from neurocompile.lnp import LnpSettings, TauSearchSettings, lnp_prune, search_tau
from neurocompile.nn import HRSNN
from neurocompile.nn.timescales import fraction_per_step
from neurocompile.passes.prune import prune
from neurocompile.tasks import (PredictionTask, ReadoutSettings, Series, SeriesSettings, lorenz, make_prediction_task,
                                rossler, train_readout)

METHODS = ("lnp", "random", "activity", "rand-neur")
#: LNP with other settings than the pass's defaults (--variants)
VARIANTS = {"lnp-sample": LnpSettings(sampling="sample"), "lnp-priority": LnpSettings(sampling="priority")}
TAU_SEARCH = TauSearchSettings(n_trials=20)
SYSTEMS: dict[str, tuple[Callable[[SeriesSettings], Series], float]] = {"lorenz": (lorenz, 0.02), "rossler": (rossler, 0.1)}
READOUT = ReadoutSettings(progress=False)


@dataclass(frozen=True)
class ModelSettings:
    """The HRSNN every seed draws (the settings tests/test_tasks.py shows beating persistence on Lorenz)."""

    neurons: int = 500
    tau_shape: float = 2.0
    tau_mean: float = 5.0
    recurrent_density: float = 0.1
    input_gain: float = 2.0
    bias_std: float = 0.5
    readout_leak: float = 0.2

    def build(self, seed: int) -> HRSNN:
        return HRSNN(3, self.neurons, 3, self.tau_shape, self.tau_mean, recurrent_density=self.recurrent_density,
                     input_gain=self.input_gain, bias_std=self.bias_std, readout_leak=self.readout_leak, seed=seed)


@dataclass(frozen=True)
class StudySettings:
    """The study: which network, how many seeds and samples, the sparsity every method prunes to, what is compared."""

    model: ModelSettings = field(default_factory=ModelSettings)
    seeds: int = 5
    samples: int = 3000
    neuron_sparsity: float = 0.6
    synapse_sparsity: float = 0.9
    tasks: tuple[str, ...] = ("lorenz", "rossler")
    methods: tuple[str, ...] = METHODS
    #: baselines get the synapse sparsity that leaves LNP's synapse count (same kept neurons)
    match_synapses: bool = True
    #: LNP's step 5 (τ search) on every pruned network
    tau_search: bool = False


@dataclass(frozen=True)
class Run:
    """One network's score and, for a pruned one, the pass's record."""

    task: str
    method: str
    seed: int
    nrmse: float
    dense_nrmse: float
    neurons: tuple[int, int] = (0, 0)  # (kept, dense)
    synapses: tuple[int, int] = (0, 0)
    lyapunov: tuple[float, float] = (np.nan, np.nan)  # (before, after)
    radius: tuple[float, float] = (np.nan, np.nan)
    seconds: float = 0.0


# -- one seed ----------------------------------------------------------------------


def make_task(name: str, samples: int, seed: int) -> PredictionTask:
    system, dt = SYSTEMS[name]
    return make_prediction_task(system(SeriesSettings(n_samples=samples, dt=dt, seed=seed)), horizon=1)


@torch.no_grad()
def training_rates(model: HRSNN, task: PredictionTask) -> np.ndarray:
    """Mean spikes per step of each hidden neuron over the training rows (the stream as train_readout runs it)."""
    spikes = model(READOUT.encoding(task.inputs)).spikes[0, model.depth:].double().numpy()
    return spikes[task.rows["train"]].mean(axis=0)


@dataclass(frozen=True)
class Pruned:
    """What a pruning produced, whichever path made it: kept neurons, their recurrent weights, before/after stats."""

    kept: np.ndarray
    weights: sp.spmatrix
    before: dict[str, float]
    after: dict[str, float]


def prune_pass(net: Network, method: str, seed: int, neuron_sparsity: float, synapse_sparsity: float,
               activity: np.ndarray) -> Pruned:
    """The IR pass (``lnp`` with its default settings, or a baseline)."""
    out = prune(net, method=method, neuron_sparsity=neuron_sparsity, synapse_sparsity=synapse_sparsity, seed=seed,
                activity=activity if method == "activity" else None)
    r = out.pruning
    return Pruned(np.asarray(r.kept), out.projection("hidden_to_hidden").weight, r.before, r.after)


def prune_lnp_variant(model: HRSNN, seed: int, neuron_sparsity: float, synapse_sparsity: float,
                      settings: LnpSettings) -> Pruned:
    """LNP with non-default ``settings`` on the model's recurrent core (as the pass reads it: τ ≥ 1 step)."""
    arrays = model.lnp_arrays()
    rows, cols = np.nonzero(arrays.mask)
    W = sp.csr_matrix((arrays.W[rows, cols], (rows, cols)), shape=arrays.W.shape)
    r = lnp_prune(W, np.maximum(arrays.tau, 1.0), neuron_sparsity=neuron_sparsity, synapse_sparsity=synapse_sparsity,
                  seed=seed, settings=settings)
    stats = lambda s: {k: float(v) for k, v in dataclasses.asdict(s).items()}  # noqa: E731
    return Pruned(np.asarray(r.kept), sp.csr_matrix(r.weights), stats(r.before), stats(r.after))


def equal_count_sparsity(net: Network, kept: np.ndarray, synapses: int) -> float:
    """The synapse sparsity among ``kept`` that leaves ``synapses`` recurrent synapses (for --match-synapses)."""
    among = sp.csr_matrix(net.projection("hidden_to_hidden").weight)[kept][:, kept].nnz
    return float(np.clip(1.0 - synapses / max(among, 1), 0.0, 1.0))


def scored(task_name: str, method: str, seed: int, model: HRSNN, task: PredictionTask, p: Pruned, dense_nrmse: float,
           seconds: float, tau_search: bool = False) -> Run:
    """Apply a pruning to the untrained model (and the τ search if asked), fit its ridge readout, keep the test score."""
    small = model.pruned(p.kept, p.weights)
    if tau_search:
        found = search_tau(sp.csr_matrix(p.weights), settings=TAU_SEARCH, seed=seed)
        with torch.no_grad():
            small.hidden.leak.copy_(torch.as_tensor(fraction_per_step(found.sample(len(p.kept), seed=seed))))
    score = train_readout(small, task, READOUT).scores["test"]
    b, a = p.before, p.after
    return Run(task_name, method, seed, score, dense_nrmse, (int(a["neurons"]), int(b["neurons"])),
               (int(a["synapses"]), int(b["synapses"])), (b["spiking_lyapunov_exponent"], a["spiking_lyapunov_exponent"]),
               (b["spectral_radius"], a["spectral_radius"]), seconds)


def prunings(model: HRSNN, net: Network, seed: int, settings: StudySettings,
             activity: np.ndarray) -> Iterator[tuple[str, Pruned, float]]:
    """Each method's pruning of the same network, with its wall time (LNP first: matching synapse counts needs its count)."""
    ns, ss = settings.neuron_sparsity, settings.synapse_sparsity
    lnp_synapses = None
    for method in settings.methods:
        start = time.perf_counter()
        if method in VARIANTS:
            p = prune_lnp_variant(model, seed, ns, ss, VARIANTS[method])
        elif method == "rand-neur":
            p = prune_pass(net, "random", seed, ns, 0.0, activity)
        else:
            p = prune_pass(net, method, seed, ns, ss, activity)
            if method == "lnp":
                lnp_synapses = int(p.after["synapses"])
            elif settings.match_synapses and lnp_synapses is not None:  # same kept neurons, LNP's synapse count
                p = prune_pass(net, method, seed, ns, equal_count_sparsity(net, p.kept, lnp_synapses), activity)
        yield method, p, time.perf_counter() - start


def one_seed(task_name: str, seed: int, settings: StudySettings) -> list[Run]:
    task = make_task(task_name, settings.samples, seed)
    model = settings.model.build(seed)
    dense = copy.deepcopy(model)
    dense_nrmse = train_readout(dense, task, READOUT).scores["test"]
    activity = training_rates(dense, task)
    net = ingest_model(model, timesteps=len(task.inputs))
    runs = [Run(task_name, "dense", seed, dense_nrmse, dense_nrmse)]
    for method, p, seconds in prunings(model, net, seed, settings, activity):
        r = scored(task_name, method, seed, model, task, p, dense_nrmse, seconds, settings.tau_search)
        runs.append(r)
        print(f"  {task_name:<8s} seed {seed} {method:<12s} NRMSE {r.nrmse:.4f} (dense {dense_nrmse:.4f}) "
              f"synapses {r.synapses[0]:5d}  λ {r.lyapunov[0]:+.4f} → {r.lyapunov[1]:+.4f}  prune {seconds:.1f} s",
              flush=True)
    return runs


# -- summary -----------------------------------------------------------------------


def select(runs: list[Run], task: str, method: str) -> list[Run]:
    return [r for r in runs if r.task == task and r.method == method]


def mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def table(runs: list[Run], settings: StudySettings) -> str:
    head = (f"{'task':<8s} {'method':<12s} {'test NRMSE':>17s} {'/ dense':>14s} {'neurons':>10s} {'synapses':>13s} "
            f"{'λspk before':>12s} {'λspk after':>11s} {'ρ before':>9s} {'ρ after':>8s}")
    lines = [head, "-" * len(head)]
    for task in settings.tasks:
        for method in ("dense",) + settings.methods:
            rs = select(runs, task, method)
            m, s = mean_std([r.nrmse for r in rs])
            rm, rsd = mean_std([r.nrmse / r.dense_nrmse for r in rs])
            if method == "dense":
                lines.append(f"{task:<8s} {method:<12s} {m:8.4f} ± {s:6.4f} {'1':>14s}")
                continue
            nk, nd = np.mean([r.neurons for r in rs], axis=0)
            sk, sd = np.mean([r.synapses for r in rs], axis=0)
            lb, la = np.mean([r.lyapunov for r in rs], axis=0)
            pb, pa = np.mean([r.radius for r in rs], axis=0)
            lines.append(f"{task:<8s} {method:<12s} {m:8.4f} ± {s:6.4f} {rm:6.3f} ± {rsd:5.3f} {nk:4.0f}/{nd:<5.0f} "
                         f"{sk:6.0f}/{sd:<6.0f} {lb:+12.4f} {la:+11.4f} {pb:9.3f} {pa:8.3f}")
    return "\n".join(lines)


def targets(runs: list[Run], settings: StudySettings) -> list[str]:
    out = []
    for task in settings.tasks:
        lnp = select(runs, task, "lnp")
        ratio = float(np.mean([r.nrmse / r.dense_nrmse for r in lnp]))
        neurons_pruned = 1 - np.mean([r.neurons[0] / r.neurons[1] for r in lnp])
        synapses_pruned = 1 - np.mean([r.synapses[0] / r.synapses[1] for r in lnp])
        ok = ratio <= 1.02 and neurons_pruned >= 0.6 and synapses_pruned >= 0.9
        out.append(f"[{'HOLDS' if ok else 'FAILS'}] {task}: LNP within 2 % of dense at ≥60 % neurons / ≥90 % synapses "
                   f"pruned: NRMSE ratio {ratio:.3f}, {neurons_pruned:.1%} neurons and {synapses_pruned:.1%} of the "
                   f"dense network's synapses pruned")
        m = {method: float(np.mean([r.nrmse for r in select(runs, task, method)])) for method in settings.methods}
        ok = m["lnp"] < m["random"] and m["lnp"] < m["activity"]
        wins = {b: sum(l.nrmse < r.nrmse for l, r in zip(lnp, select(runs, task, b))) for b in ("random", "activity")}
        out.append(f"[{'HOLDS' if ok else 'FAILS'}] {task}: LNP better than random and activity (mean NRMSE "
                   f"{m['lnp']:.4f} vs {m['random']:.4f} / {m['activity']:.4f}; LNP wins {wins['random']}/{len(lnp)} "
                   f"seeds vs random, {wins['activity']}/{len(lnp)} vs activity)")
        stable = sum(r.lyapunov[1] <= r.lyapunov[0] for r in lnp)
        out.append(f"[{'HOLDS' if stable == len(lnp) else 'FAILS'}] {task}: LNP largest Lyapunov exponent after ≤ before "
                   f"on {stable}/{len(lnp)} seeds")
    return out


def plot(runs: list[Run], settings: StudySettings, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = ("dense",) + settings.methods
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(settings.tasks))
    for i, method in enumerate(methods):
        stats = [mean_std([r.nrmse for r in select(runs, t, method)]) for t in settings.tasks]
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, [m for m, _ in stats], width, yerr=[s for _, s in stats],
               capsize=3, label=method)
    ax.set_xticks(x, settings.tasks)
    ax.set_ylabel("test NRMSE (one step ahead)")
    ax.set_title(f"HRSNN {settings.model.neurons} neurons, {settings.neuron_sparsity:.0%} neurons / "
                 f"{settings.synapse_sparsity:.0%} synapses pruned, {settings.seeds} seeds")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- entry -------------------------------------------------------------------------


def parse() -> tuple[StudySettings, Path]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="200 neurons, 2 seeds, 2,000 samples")
    p.add_argument("--neurons", type=int, default=None)
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--neuron-sparsity", type=float, default=0.6)
    p.add_argument("--synapse-sparsity", type=float, default=0.9)
    p.add_argument("--variants", action="store_true",
                   help="also LNP with sampling='sample' (as published, the former default) and sampling='priority'")
    p.add_argument("--same-fraction", action="store_true",
                   help="every method removes the same fraction of the synapses among its survivors "
                        "(default: the baselines keep exactly as many recurrent synapses as LNP)")
    p.add_argument("--tau-search", action="store_true", help="LNP's step 5 (τ search) on every pruned network")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    a = p.parse_args()
    neurons, seeds, samples = (200, 2, 2000) if a.quick else (500, 5, 3000)
    model = ModelSettings(neurons=a.neurons or neurons)
    methods = METHODS + (tuple(VARIANTS) if a.variants else ())
    return StudySettings(model, a.seeds or seeds, a.samples or samples, a.neuron_sparsity, a.synapse_sparsity,
                         methods=methods, match_synapses=not a.same_fraction, tau_search=a.tau_search), a.out


def main() -> None:
    settings, out = parse()
    torch.set_num_threads(1)
    start = time.perf_counter()
    runs = [r for task in settings.tasks for seed in range(settings.seeds) for r in one_seed(task, seed, settings)]
    print()
    print(table(runs, settings))
    print()
    print("\n".join(targets(runs, settings)))
    plot(runs, settings, out / "lnp.png")
    print(f"\nplot: {out / 'lnp.png'}; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
