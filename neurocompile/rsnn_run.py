"""``neurocompile run`` and ``neurocompile report`` on a recurrent build folder (``build --rsnn``).

Why a module of its own: a feed-forward build's network names its data set, which
``run``/``report`` load again (:func:`neurocompile.pipeline.run_artifact`,
:func:`neurocompile.reporting.rebuild`). A recurrent build's inputs are a task instead,
which only its report.json records (task, seed, series length). This module reads that
record back, regenerates the task with the build's own :func:`~neurocompile.rsnn_build.make_task`
(Lorenz/Rössler integrated with scipy from the seed, sequential digits split with the seed;
nothing downloaded), checks that it is the data the network was built for (same shape,
same input scale), and then runs or re-measures the network with the build's own helpers,
so a reference run scores exactly what the build recorded.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ir
from .backends import RunResult, get_backend
from .errors import NeurocompileError
from .pipeline import network_sections, quiet_logs
from .reporting import is_recurrent, open_build, read_report, write_report
from .rsnn_build import (SYSTEMS, TASKS, RSNNBuildOptions, compare_on_task, cross_check_frames, evaluate_fixed, input_scale,
                         make_task, n_scored, predicted_classes, quantized_stage, raster_frames, sequences, series_nrmse,
                         stream_predictions, task_frames)
from .tasks import ClassificationTask, PredictionTask

REBUILD = "rebuild the folder with `neurocompile build --rsnn`"


@dataclass(frozen=True)
class RecurrentFolder:
    """A recurrent build folder read back: its network, its report and the task regenerated from that report."""

    out: Path
    net: ir.Network
    report: dict
    options: RSNNBuildOptions  # the task, seed and series length the report records
    task: PredictionTask | ClassificationTask
    input_scale: float


def open_recurrent(out: str | Path) -> RecurrentFolder:
    """Read recurrent build folder ``out`` and regenerate its task, or a one-line error naming what is wrong."""
    out = Path(out)
    net = open_build(out)
    if not is_recurrent(net):
        raise NeurocompileError(f"{out} is a feed-forward build, not a recurrent one (`build --rsnn`); "
                                "run it with `neurocompile run`/`report` or neurocompile.run")
    report = read_report(out, REBUILD)
    if report is None:
        raise NeurocompileError(f"{out} has no report.json, which records a recurrent build's task (lorenz, rossler or digits), "
                                f"seed and series length; {REBUILD}")
    options = task_options(out / "report.json", report)
    task = make_task(options)
    folder = RecurrentFolder(out, net, report, options, task, input_scale(task))
    check_fits(folder)
    return folder


def task_options(path: Path, report: dict) -> RSNNBuildOptions:
    """The task, seed and series length ``report`` records, checked as ``build --rsnn`` checks its options."""
    data = report.get("data")
    if report.get("kind") != "rsnn" or not isinstance(data, dict):
        raise NeurocompileError(f"{path} is not a recurrent build's report (no \"kind\": \"rsnn\" with a \"data\" section "
                                f"naming the task); {REBUILD}")
    task, seed = data.get("spec"), data.get("seed")
    if task not in TASKS:
        raise NeurocompileError(f"{path} records task {task!r}; accepted: {', '.join(TASKS)}")
    length = data.get("series_length") if task in SYSTEMS else None
    if task in SYSTEMS and length is None:
        raise NeurocompileError(f"{path} records no series_length for its {task} series; {REBUILD}")
    options = RSNNBuildOptions(task=task, seed=seed, timesteps=length)
    try:
        options.check()
    except NeurocompileError as e:
        raise NeurocompileError(f"{path}: {e}") from None
    return options


def check_fits(f: RecurrentFolder) -> None:
    """The regenerated task must be the data the network was built for: its seed, inputs, length and input scale."""
    net, task, path = f.net, f.task, f.out / "report.json"
    if f.options.seed != net.settings.seed:
        raise NeurocompileError(f"{path} records seed {f.options.seed}, but {f.out}/network.ncnet was built with seed "
                                f"{net.settings.seed}; {REBUILD}")
    steps = sequences(task).shape[1]
    got = (net.population(net.input).size, net.timesteps)
    if got != (task.n_in, steps):
        raise NeurocompileError(f"{f.out}/network.ncnet takes {got[0]} inputs over {got[1]} steps, but the {f.options.task} task "
                                f"that {path} records gives {task.n_in} inputs over {steps} steps; {REBUILD}")
    recorded = (f.report.get("encoding") or {}).get("input_scale")
    if recorded != f.input_scale:
        raise NeurocompileError(f"{path} records input scale {recorded!r}, but the regenerated {f.options.task} data gives "
                                f"{f.input_scale!r} (another scipy/numpy or an edited report?); {REBUILD}")


# -- run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    """``neurocompile run`` on a recurrent build: the backend and how much of the task to run.

    ``samples``: digits, the first N test sequences (default all). ``steps``: lorenz/rossler,
    the first N steps of the streamed series (default all; its score needs them all, the test
    rows being the series' last ones).
    """

    backend: str = "reference"
    samples: int | None = None
    steps: int | None = None
    timeout_s: float | None = None

    def check(self) -> None:
        for option, v in (("--samples", self.samples), ("--steps", self.steps)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise NeurocompileError(f"{option} must be a whole number ≥ 1 (got {v!r})")

    def check_for(self, f: RecurrentFolder) -> None:
        """``--samples`` counts digits sequences; a series is one streamed sample, cut with ``--steps``."""
        if f.options.streaming and self.samples is not None:
            raise NeurocompileError(f"{f.out} streams one {f.options.task} series as a single sample: give --steps N "
                                    "for its first N steps instead of --samples")
        if not f.options.streaming and self.steps is not None:
            raise NeurocompileError(f"{f.out} runs digits sequences of 8 steps: give --samples N for the first N test "
                                    "sequences instead of --steps")


@dataclass(frozen=True)
class RecurrentRun:
    """What ``neurocompile run`` prints for a recurrent build (``--json``: these fields).

    ``score``: ``metric`` over ``scored`` test rows or sequences, None with the reason in
    ``note`` where the run cannot give it. ``agreement``: against the reference, for any other backend.
    """

    backend: str
    platform: str
    task: str
    metric: str
    score: float | None
    scored: int
    samples: int
    steps: int
    spikes_per_layer: dict[str, int]
    spikes_per_sample: dict[str, float]
    wall_s: float
    agreement: dict[str, float | bool] | None = None
    predictions: list[int] | None = None
    note: str | None = None
    kind: str = "rsnn"


def run_recurrent(out: str | Path, options: RunOptions = RunOptions()) -> dict:
    """Run the built, quantised network of recurrent build folder ``out`` on ``options.backend``; the run as a dict."""
    options.check()
    f = open_recurrent(out)
    options.check_for(f)
    usable_backend(options.backend)
    run = _run_stream(f, options) if f.options.streaming else _run_sequences(f, options)
    return dataclasses.asdict(run)


def usable_backend(name: str) -> None:
    """Fail before any run on a backend that is not installed or cannot run here."""
    ok, why = get_backend(name).available()
    if not ok:
        raise NeurocompileError(f"backend {name!r} is not usable here: {why}; accepted: reference, or lava where lava-nc is installed")


def _spikes(counts: dict[str, np.ndarray]) -> dict:
    """Per spiking population, all spikes and spikes per sample, from (samples, neurons) counts."""
    return {"spikes_per_layer": {k: int(v.sum()) for k, v in counts.items()},
            "spikes_per_sample": {k: float(v.sum(1).mean()) for k, v in counts.items()}}


def _run_stream(f: RecurrentFolder, o: RunOptions) -> RecurrentRun:
    """The series streamed as one sample (its first ``o.steps`` steps); NRMSE over the test rows when it is run whole."""
    period = sequences(f.task).shape[1] + f.net.depth()
    net, frames = cross_check_frames(f.net, f.task, f.input_scale, o.steps or period)
    whole = frames.shape[1] == period
    t0 = time.perf_counter()
    if o.backend == "reference":
        pred, counts = stream_predictions(net, frames)
        wall, platform, agreement = time.perf_counter() - t0, get_backend("reference").available()[1], None
    else:
        check = compare_on_task(net, f.task, frames, o.backend, o.timeout_s)
        counts, wall, platform, agreement = check.result.spike_counts, check.result.wall_s, check.result.platform, check.agreement
        pred = stream_predictions(net, frames)[0] if whole and all(agreement.values()) else None
    score, note = _stream_score(f, o.backend, pred, whole)
    return RecurrentRun(o.backend, platform, f.options.task, "nrmse", score, 0 if score is None else n_scored(f.task), 1,
                        int(frames.shape[1]), **_spikes(counts), wall_s=round(wall, 4), agreement=agreement, note=note)


def _stream_score(f: RecurrentFolder, backend: str, pred: np.ndarray | None, whole: bool) -> tuple[float | None, str | None]:
    """The test NRMSE of per-step predictions and a note on where it comes from, or None and why not.

    A backend other than the reference reports the readout at the last step only; where its spike
    trains and final readout equal the reference's bit for bit, its per-step predictions are the reference's.
    """
    rows = f.task.rows["test"]
    if not whole:
        return None, (f"no nrmse: the test rows are the series' samples {rows[0]}–{rows[-1]} (counting from 0), past the steps "
                      "run; leave out --steps to run it whole")
    if pred is None:
        return None, f"no nrmse: {backend}'s spikes or readout differ from the reference's (see agreement)"
    note = None if backend == "reference" else (f"nrmse from the reference's per-step readout: {backend} reports the readout at "
                                                "the last step only, and its spike trains and readout equal the reference's")
    return series_nrmse(f.task, pred), note


def _run_sequences(f: RecurrentFolder, o: RunOptions) -> RecurrentRun:
    """The first ``o.samples`` digits test sequences; accuracy of the backend's own readout."""
    task = f.task
    n = len(task.y_test) if o.samples is None else min(o.samples, len(task.y_test))
    frames = task_frames(f.net, task.x_test[:n], f.input_scale)
    agreement = None
    if o.backend == "reference":
        result: RunResult = get_backend("reference").run(f.net, frames)
    else:
        check = compare_on_task(f.net, task, frames, o.backend, o.timeout_s)
        result, agreement = check.result, check.agreement
    preds = predicted_classes(f.net, result.readout)
    return RecurrentRun(o.backend, result.platform, f.options.task, "accuracy", float((preds == task.y_test[:n]).mean()), n, n,
                        result.steps, **_spikes(result.spike_counts), wall_s=round(result.wall_s, 4), agreement=agreement,
                        predictions=preds.tolist())


# -- report -----------------------------------------------------------------------------------


def rebuild_recurrent(out: str | Path, *, quiet: bool = False) -> dict:
    """Rewrite ``OUT/report.json`` and ``OUT/report.html`` of a recurrent build from its network and regenerated task.

    Returns the report. The bit-exact score and every section the network determines (layers,
    operations, energy and latency on every profile, the raster, mapping, fixed-point formats)
    are recomputed; what needs the source model (the float stages, pruning, the Lava cross-check)
    is kept from the old report.json. An unchanged folder's report comes back byte for byte.
    """
    f = open_recurrent(out)
    score, ev = evaluate_fixed(f.net, f.task, f.input_scale)
    report = dict(f.report)
    stages = dict(report.get("stages") or {})
    stages["snn_quantized"] = quantized_stage(f.options.metric, f.task, score, stages.get("snn_float"))
    with quiet_logs(quiet):
        sections = network_sections(f.net, ev, raster_frames(f.net, f.task, f.input_scale))
    report.update(stages=stages, timesteps=f.net.timesteps, period_steps=f.net.period(), metric=f.options.metric, **sections)
    write_report(f.out, report)
    return report
