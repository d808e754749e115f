"""``build --rsnn``: one command from a recurrent SNN to the report (issue 10).

The recurrent counterpart of :func:`neurocompile.pipeline.build`, with the same
stage manager, outputs and conventions (every option checked before any compute,
one atomic output folder, log lines and progress bars on stderr, one-line
errors). The stages:

1. ``model``: the given ``.rsnn`` file (:func:`neurocompile.nn.load_rsnn`) or a fresh,
   untrained :class:`~neurocompile.nn.HRSNN` drawn from the seed, and the task's data;
2. ``dense``: the dense network's ridge readout and test score (the baseline the pruned
   network is compared with; ``--prune activity`` takes its hidden neurons' mean spike
   rates over the training data, as ``bench/lnp.py`` does);
3. ``prune``: the IR pass :func:`neurocompile.passes.prune.prune` on the untrained network
   (task-agnostic), applied to the model with ``model.pruned(kept, W)``;
4. ``train``: the pruned model's ridge readout (:func:`neurocompile.tasks.train_readout`),
   scored on the test split by the model itself (``snn_float``);
5. ``snn_quantized``: the trained model ingested into the IR, quantised (per-neuron 12-bit
   decays) and scored bit-exactly on the reference backend;
6. ``map`` and the ``lava`` cross-check (spike trains compared step by step with the reference).

Inputs: a series' components are z-scored, so they exceed the 8-bit direct payload's
[-1, 1]; the input projection's weights are multiplied by ``input_scale`` (the largest
|input|) and the frames divided by it, which leaves the float network unchanged.
Prediction tasks stream the whole series as one sample (period ``T + depth``, ``T`` the
series length) and read the readout at every step; ``digits`` reads each sequence's last step.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import ir
from .data import check_seed
from .errors import NeurocompileError
from .frontend import sniff_format
from .frontend.rsnn import ingest_model
from .ir import MAX_TIMESTEPS
from .nn import HRSNN, RecurrentSNN, RSNNConfig, load_rsnn
from .outputs import build_folder, check_output_dir
from .passes.prune import METHODS as PRUNE_METHODS, prune, recurrent_population
from .passes.quantize import FixedPointFormat, quantize
from .pipeline import (BackendCheck, Stage, _bar, _choose_cross_check_backend, _map_stage, chip_profile, compare_backends, log,
                       network_sections, quiet_logs, run_stages, sha256, write_outputs)
from .profiles import Profile
from .sim.encoding import DIRECT_LEVELS
from .sim.engine import simulate
from .sim.run import Evaluation, decode
from .tasks import (ClassificationTask, EndToEndSettings, PredictionTask, ReadoutSettings, SeriesSettings, lorenz,
                    make_prediction_task, nrmse, rossler, sequential_digits, train_end_to_end, train_readout)

TASKS = ("lorenz", "rossler", "digits")
PRUNINGS = (*PRUNE_METHODS, "none")
SYSTEMS = {"lorenz": (lorenz, 0.02), "rossler": (rossler, 0.1)}  # integration step per sample (bench/lnp.py's)
SERIES_LENGTH = 2000
HORIZON = 1  # prediction tasks forecast the next sample
RASTER_STEPS = 256  # a streamed series' raster: its first steps


def fresh_model(n_in: int, n_out: int, neurons: int, *, streaming: bool, seed: int) -> HRSNN:
    """The untrained HRSNN built when no model file is given: bench/lnp.py's network (gamma τ of mean 5 steps, a
    10 %-dense recurrence), which beats persistence on Lorenz. Prediction reads a leaky readout at every step; a
    classifier's readout accumulates the whole sequence."""
    return HRSNN(n_in, neurons, n_out, 2.0, 5.0, recurrent_density=0.1, input_gain=2.0, bias_std=0.5,
                 readout_leak=0.2 if streaming else 0.0, seed=seed)


def _whole(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


@dataclass(frozen=True)
class RSNNBuildOptions:
    """Every setting of a recurrent build, typed; :meth:`check` refuses bad ones before anything is loaded.

    ``timesteps``: the series length for lorenz/rossler (default :data:`SERIES_LENGTH`); digits
    sequences have 8 rows. ``lava_samples``: digits test sequences run on Lava; ``lava_steps``: the
    first steps of a streamed series run on Lava (0 skips the cross-check either way).
    """

    task: str = "lorenz"
    prune: str = "lnp"
    neuron_sparsity: float = 0.6
    synapse_sparsity: float = 0.9
    neurons: int = 200
    seed: int = 0
    timesteps: int | None = None
    target: str = "loihi2"
    lava_samples: int = 20
    lava_steps: int = 200
    backend: str = "auto"
    lava_timeout_s: float | None = None
    #: after the ridge readout, this many epochs of end-to-end BPTT with the surrogate gradient (0: the readout only)
    train_epochs: int = 0

    @property
    def streaming(self) -> bool:
        return self.task in SYSTEMS

    @property
    def metric(self) -> str:
        """The task's score: ``nrmse`` (lower is better) for a series, ``accuracy`` for digits."""
        return "nrmse" if self.streaming else "accuracy"

    def check(self) -> None:
        if self.task not in TASKS:
            raise NeurocompileError(f"unknown task {self.task!r}; accepted: {', '.join(TASKS)}")
        if self.prune not in PRUNINGS:
            raise NeurocompileError(f"unknown pruning {self.prune!r}; accepted: {', '.join(PRUNINGS)}")
        for name, v in (("--neuron-sparsity", self.neuron_sparsity), ("--synapse-sparsity", self.synapse_sparsity)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise NeurocompileError(f"{name} must be a fraction in [0, 1) (got {v!r})")
        if not _whole(self.neurons) or self.neurons < 2:
            raise NeurocompileError(f"--neurons must be a whole number ≥ 2 (got {self.neurons!r})")
        check_seed(self.seed)
        T = self.timesteps
        if T is not None and not self.streaming:
            raise NeurocompileError(f"-T {T!r}: digits sequences have 8 rows, one per step; leave -T out")
        if T is not None and (not _whole(T) or not 200 <= T <= MAX_TIMESTEPS - 2):
            raise NeurocompileError(f"-T {T!r}: the series length of {self.task}, a whole number from 200 to {MAX_TIMESTEPS - 2}")
        for name, v in (("--lava-samples", self.lava_samples), ("--lava-steps", self.lava_steps), ("--train-epochs", self.train_epochs)):
            if not _whole(v) or v < 0:
                raise NeurocompileError(f"{name} must be a whole number ≥ 0 (got {v!r})")

    @property
    def series_length(self) -> int:
        return SERIES_LENGTH if self.timesteps is None else int(self.timesteps)

    @property
    def cross_check_size(self) -> int:
        return self.lava_steps if self.streaming else self.lava_samples


@dataclass
class RSNNBuildState:
    """What the stages hand on to each other (the recurrent counterpart of ``pipeline.BuildState``)."""

    model_file: Path | None
    options: RSNNBuildOptions
    profile: Profile
    backend: str
    task: PredictionTask | ClassificationTask | None = None
    model: RecurrentSNN | None = None  # untrained until the train stage, pruned after the prune stage
    dense_config: RSNNConfig | None = None  # the model's before pruning
    activity: np.ndarray | None = None
    pruning: ir.PruningRecord | None = None
    input_scale: float = 1.0
    qnet: ir.Network | None = None
    mapped: ir.Network | None = None
    ev_q: Evaluation | None = None
    lowering: list | None = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, object] = field(default_factory=dict)
    stages: dict[str, dict] = field(default_factory=dict)


# -- the task's data on the chip -------------------------------------------------------------


def make_task(options: RSNNBuildOptions) -> PredictionTask | ClassificationTask:
    """The task's data, a function of the task, the seed and the series length alone.

    Why one function: ``neurocompile run``/``report`` on a build folder regenerate the build's
    data from what its report.json records, and must get exactly the frames the build ran.
    """
    if options.streaming:
        system, dt = SYSTEMS[options.task]
        return make_prediction_task(system(SeriesSettings(n_samples=options.series_length, dt=dt, seed=options.seed)), horizon=HORIZON)
    return sequential_digits(seed=options.seed)


def input_scale(task: PredictionTask | ClassificationTask) -> float:
    """The largest |input| of a z-scored series (at least 1), which the input weights absorb; 1 for digits (already in [0, 1])."""
    return max(float(np.abs(sequences(task)).max()), 1.0) if isinstance(task, PredictionTask) else 1.0


def n_scored(task: PredictionTask | ClassificationTask) -> int:
    """How many test rows (a series) or test sequences (digits) a score is over."""
    return len(task.rows["test"]) if isinstance(task, PredictionTask) else len(task.y_test)


def series_nrmse(task: PredictionTask, pred: np.ndarray) -> float:
    """The NRMSE of the per-step predictions ``pred`` (T, n_out) over the series' test rows."""
    rows = task.rows["test"]
    return nrmse(pred[rows], task.targets[rows])


def predicted_classes(net: ir.Network, readout: np.ndarray) -> np.ndarray:
    """The class each sequence's final fixed-point readout picks."""
    return decode(net, readout, fixed=True).argmax(1)


def sequences(task: PredictionTask | ClassificationTask) -> np.ndarray:
    """What the bit-exact stage runs, (samples, T, n_in): the whole series as one sample, or the test sequences."""
    return task.inputs[None] if isinstance(task, PredictionTask) else task.x_test


def task_frames(net: ir.Network, x: np.ndarray, input_scale: float) -> np.ndarray:
    """(samples, T, n_in) inputs → (samples, T + depth, n_in) 8-bit direct payloads of ``x / input_scale`` (zeros at the end)."""
    payload = np.round(np.asarray(x, dtype=np.float64) / input_scale * DIRECT_LEVELS).astype(np.int64)
    return np.pad(payload, ((0, 0), (0, net.depth()), (0, 0)))


def stream_predictions(net: ir.Network, frames: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One streamed series on the fixed-point engine: the prediction after each input sample (T, n_out), in the
    series' units (the decoder ``(v + bias) / σ`` at every step), and the spike counts (1, neurons) per population."""
    P = frames.shape[1]
    with torch.no_grad():
        r = simulate(net, torch.as_tensor(frames), "fixed", readout_steps=tuple(range(P)))
    v = torch.stack([r.readouts_at[t] for t in range(P)], 1)[0].double().numpy()
    q = net.neuron_fixed(net.output)
    bias = np.asarray(q.bias_mant, dtype=np.float64) * 2.0**q.bias_exp
    pred = (v[net.depth():] + bias) / net.fixed.v_units_per_float[net.output]
    return pred, {k: c.double().numpy() for k, c in r.spike_counts.items()}


def evaluate_fixed(net: ir.Network, task: PredictionTask | ClassificationTask, input_scale: float) -> tuple[float, Evaluation]:
    """The test score of the quantised ``net`` on the reference backend (NRMSE or accuracy) and its evaluation."""
    frames = task_frames(net, sequences(task), input_scale)
    events = (frames[:, :-1] != 0).sum((1, 2))  # frame t arrives at step t + 1: the last is never delivered
    if isinstance(task, PredictionTask):
        pred, counts = stream_predictions(net, frames)
        ev = Evaluation(pred, {k: c.sum(1) for k, c in counts.items()}, events)
        return series_nrmse(task, pred), ev
    from .backends import get_backend

    r = get_backend("reference").run(net, frames)
    ev = Evaluation(decode(net, r.readout, fixed=True), {k: c.sum(1).astype(np.float64) for k, c in r.spike_counts.items()}, events)
    return ev.accuracy(task.y_test), ev


def _score(metric: str, value: float, samples: int, **extra) -> dict:
    """A stage record: ``nrmse`` (lower is better) or ``accuracy``, as the feed-forward build's stages."""
    return {metric: round(float(value), 6), "samples": int(samples), **extra}


def quantized_stage(metric: str, task: PredictionTask | ClassificationTask, score: float, float_stage: dict | None) -> dict:
    """The ``snn_quantized`` stage record (the build's and ``neurocompile report``'s), with its change from the float stage."""
    rec = _score(metric, score, n_scored(task), backend="reference (bit-exact Lava fixed point)")
    if float_stage and metric in float_stage:
        rec["change_vs_float"] = round(rec[metric] - float_stage[metric], 6)
    return rec


def _readout(model: RecurrentSNN, task: PredictionTask | ClassificationTask) -> float:
    return train_readout(model, task, ReadoutSettings(progress=_bar("readout") is not None)).scores["test"]


# -- stages ---------------------------------------------------------------------------------------


def _model_stage(st: RSNNBuildState) -> None:
    o = st.options
    st.task = make_task(o)
    n_in, n_out = st.task.n_in, (st.task.n_out if o.streaming else st.task.n_classes)
    if st.model_file is None:
        st.model = fresh_model(n_in, n_out, o.neurons, streaming=o.streaming, seed=o.seed)
        log(f"fresh HRSNN: {n_in} inputs, {o.neurons} neurons, {n_out} outputs (seed {o.seed})")
    else:
        st.model = load_rsnn(st.model_file)
        log(f"loaded {st.model_file.name}: {st.model.n_hidden} neurons")
    cfg = st.dense_config = st.model.config
    if (cfg.n_in, cfg.n_out) != (n_in, n_out):
        raise NeurocompileError(f"the model maps {cfg.n_in} inputs to {cfg.n_out} outputs; task {o.task} needs {n_in} to {n_out}")


def _dense_stage(st: RSNNBuildState) -> None:
    """The dense network's readout and score: the baseline, and ``activity`` pruning's spike rates."""
    if st.options.prune == "none":
        return
    dense = copy.deepcopy(st.model)
    score = _readout(dense, st.task)
    st.stages["dense_float"] = _score(st.options.metric, score, n_scored(st.task), neurons=dense.n_hidden,
                                      mode="float, dense network before pruning")
    log(f"dense {st.options.metric} {score:.4f} ({dense.n_hidden} neurons)")
    if st.options.prune == "activity":
        st.activity = training_rates(dense, st.task)


@torch.no_grad()
def training_rates(model: RecurrentSNN, task: PredictionTask | ClassificationTask) -> np.ndarray:
    """Mean spikes per step of each hidden neuron over the training data (bench/lnp.py's activity)."""
    enc = ReadoutSettings().encoding
    if isinstance(task, PredictionTask):
        spikes = model(enc(task.inputs)).spikes[0, model.depth:].double().numpy()
        return spikes[task.rows["train"]].mean(axis=0)
    return model(enc(task.x_train)).spikes.double().mean(dim=(0, 1)).numpy()


def _prune_stage(st: RSNNBuildState) -> None:
    o = st.options
    if o.prune == "none":
        return
    net = ingest_model(st.model, timesteps=1, seed=o.seed)
    pruned = prune(net, method=o.prune, neuron_sparsity=o.neuron_sparsity, synapse_sparsity=o.synapse_sparsity, seed=o.seed,
                   activity=st.activity)
    r = pruned.pruning
    rec = recurrent_population(pruned, r.population)[1]
    st.model = st.model.pruned(np.asarray(r.kept), rec.weight)
    st.pruning = r
    log(f"pruned ({o.prune}): {int(r.before['neurons'])} → {int(r.after['neurons'])} neurons, "
        f"{int(r.before['synapses'])} → {int(r.after['synapses'])} recurrent synapses; largest Lyapunov exponent of the spiking network "
        f"{r.before['spiking_lyapunov_exponent']:.4g} → {r.after['spiking_lyapunov_exponent']:.4g}")


def _train_stage(st: RSNNBuildState) -> None:
    """The ridge readout; then, with ``train_epochs``, every trainable parameter end to end from it (BPTT, surrogate gradient)."""
    epochs = st.options.train_epochs
    score = _readout(st.model, st.task)
    extra: dict = {"training": "ridge readout"}
    if epochs:
        log(f"readout {st.options.metric} {score:.4f}; training end to end for {epochs} epochs")
        result = train_end_to_end(st.model, st.task, epochs,
                                  EndToEndSettings(seed=st.options.seed, progress=_bar("end to end") is not None))
        score = result.scores["test"]
        extra = {"training": f"ridge readout, then {epochs} epochs end to end (BPTT, surrogate gradient, Adam)",
                 "losses": [round(float(x), 6) for x in result.losses]}
    st.stages["snn_float"] = _score(st.options.metric, score, n_scored(st.task), neurons=st.model.n_hidden,
                                    mode="float, the trained model in the chip's schedule", **extra)
    log(f"snn_float {st.options.metric} {score:.4f}")


def scaled_inputs(net: ir.Network, scale: float) -> ir.Network:
    """``net`` for inputs divided by ``scale``: the input projections' weights multiplied by it."""
    projs = tuple(dataclasses.replace(pr, weight=pr.weight * scale) if pr.source == net.input else pr for pr in net.projections)
    return net.replace(projections=projs)


def _quantize_stage(st: RSNNBuildState) -> None:
    o, task = st.options, st.task
    st.input_scale = input_scale(task)
    net = ingest_model(st.model, timesteps=sequences(task).shape[1], seed=o.seed)
    net = scaled_inputs(net, st.input_scale).replace(pruning=st.pruning)
    net = net.with_settings(model=str(st.model_file.resolve()) if st.model_file else None)
    st.qnet = quantize(net, FixedPointFormat.from_profile(st.profile))
    score, st.ev_q = evaluate_fixed(st.qnet, task, st.input_scale)
    st.stages["snn_quantized"] = quantized_stage(o.metric, task, score, st.stages["snn_float"])
    log(f"snn_quantized {st.options.metric} {score:.4f}")


def cross_check_frames(net: ir.Network, task: PredictionTask | ClassificationTask, input_scale: float,
                       size: int) -> tuple[ir.Network, np.ndarray]:
    """The network and frames the cross-check runs: the first ``size`` steps of a series, or ``size`` test sequences."""
    frames = task_frames(net, sequences(task), input_scale)
    if isinstance(task, PredictionTask):
        steps = min(size, frames.shape[1])
        return net.with_settings(timesteps=max(steps - net.depth(), 1)), frames[:, :steps]
    return net, frames[:size]


def compare_on_task(net: ir.Network, task: PredictionTask | ClassificationTask, frames: np.ndarray, backend: str,
                    timeout_s: float | None) -> BackendCheck:
    """``backend`` and the reference on the same frames, spike train by spike train; for a classifier, also the
    fraction of sequences whose predicted class agrees (``agreement["predictions"]``)."""
    check = compare_backends(net, frames, backend, timeout_s, record=True)
    if isinstance(task, ClassificationTask):
        same = predicted_classes(net, check.result.readout) == predicted_classes(net, check.reference.readout)
        check.agreement["predictions"] = float(same.mean())
    return check


def _cross_check_stage(st: RSNNBuildState) -> None:
    size = st.options.cross_check_size
    if st.backend == "none" or not size:
        if not any("lava stage skipped" in note for note in st.notes):
            st.notes.append("lava stage skipped (--lava-samples/--lava-steps 0 or --backend none)")
        return
    net, frames = cross_check_frames(st.mapped, st.task, st.input_scale, size)
    log(f"running {frames.shape[0]} sample(s) of {frames.shape[1]} steps on backend {st.backend!r}")
    check = compare_on_task(net, st.task, frames, st.backend, st.options.lava_timeout_s)
    st.timings.update(check.timing)
    st.lowering = check.lowering
    key = "lava" if st.backend == "lava" else f"{st.backend}_cross_check"
    stage: dict = {"samples": int(frames.shape[0]), "steps": check.result.steps, "platform": check.result.platform}
    if isinstance(st.task, ClassificationTask):
        y = st.task.y_test[: frames.shape[0]]
        stage["accuracy"] = round(float((predicted_classes(net, check.result.readout) == y).mean()), 6)
        stage["snn_quantized_accuracy_same_samples"] = round(float((st.ev_q.logits[: len(y)].argmax(1) == y).mean()), 6)
    stage["agreement"] = check.agreement
    st.stages[key] = stage
    log(f"{key} on {frames.shape[0]} sample(s) of {frames.shape[1]} steps; agreement {check.agreement}")


RSNN_STAGES: tuple[Stage, ...] = (
    Stage("model", _model_stage),
    Stage("dense", _dense_stage),
    Stage("prune", _prune_stage),
    Stage("train", _train_stage),
    Stage("snn_quantized", _quantize_stage),
    Stage("map", _map_stage),  # the feed-forward build's: qnet → mapped, on st.profile
    Stage("cross_check", _cross_check_stage),
)


# -- the report and the build --------------------------------------------------------------------


def pruning_section(r: ir.PruningRecord | None) -> dict | None:
    """The prune pass's record for the report (kept neuron indices left in network.ncnet)."""
    if r is None:
        return None
    return {k: v for k, v in dataclasses.asdict(r).items() if k != "kept"}


def raster_frames(net: ir.Network, task: PredictionTask | ClassificationTask, input_scale: float) -> np.ndarray:
    """The frames of the report's raster: the first test sequence, or the series' first :data:`RASTER_STEPS` steps."""
    return task_frames(net, sequences(task)[:1], input_scale)[:, :RASTER_STEPS]


def _report(st: RSNNBuildState) -> dict:
    o, mapped, task = st.options, st.mapped, st.task
    raster = raster_frames(mapped, task, st.input_scale)
    model = ({"file": str(st.model_file.resolve()), "sha256": sha256(st.model_file)} if st.model_file else
             {"fresh": {"kind": "HRSNN", **dataclasses.asdict(st.dense_config)}})
    if isinstance(task, PredictionTask):
        data = {"spec": o.task, "series_length": len(task.inputs), "horizon": task.horizon,
                **{s: len(task.rows[s]) for s in ("train", "val", "test")}, "seed": o.seed,
                "sample": "the whole series, streamed as one sample; prediction read at every step"}
    else:
        data = {"spec": o.task, "train": len(task.y_train), "val": len(task.y_val), "test": len(task.y_test), "seed": o.seed}
    return {
        "neurocompile_report": 1,
        "kind": "rsnn",
        "target": o.target,
        "model": {**model, "format": mapped.settings.source_format, "task": o.task},
        "data": data,
        "timesteps": mapped.timesteps,
        "period_steps": mapped.period(),
        "encoding": {"kind": "direct", "input_scale": st.input_scale},
        "metric": st.options.metric,
        "stages": st.stages,
        "pruning": pruning_section(st.pruning),
        **network_sections(mapped, st.ev_q, raster),
        "lowering": st.lowering,
        "notes": st.notes,
    }


def build_rsnn(model: str | Path | None = None, *, out: str | Path = "build", quiet: bool = False, **options) -> dict:
    """Model (or a fresh HRSNN) → prune → train the readout → quantise → map → Lava → report; returns the report.

    ``options`` are the fields of :class:`RSNNBuildOptions`. Writes ``report.json``, ``report.html``,
    ``network.ncnet`` and ``timings.json`` to ``out``, atomically, as ``neurocompile build`` does.
    """
    with quiet_logs(quiet):
        return _build(model, out, options)


def _build(model: str | Path | None, out: str | Path, options: dict) -> dict:
    t_start = time.perf_counter()
    unknown = set(options) - {f.name for f in dataclasses.fields(RSNNBuildOptions)}
    if unknown:
        raise TypeError(f"build_rsnn() got unexpected option(s) {', '.join(sorted(unknown))}")
    opts = RSNNBuildOptions(**options)
    opts.check()
    profile = chip_profile(opts.target)
    model_file = Path(model) if model is not None else None
    if model_file is not None and sniff_format(model_file) != "rsnn":
        raise NeurocompileError(f"{model_file} is not a recurrent SNN (.rsnn saved by neurocompile.nn.save_rsnn); "
                                "build a feed-forward model without --rsnn")
    inputs = [model_file] if model_file is not None else []
    check_output_dir(Path(out), inputs)
    notes: list[str] = []
    backend = _choose_cross_check_backend(opts.backend, opts.cross_check_size, notes)
    with build_folder(out, inputs) as folder:
        state = run_stages(RSNNBuildState(model_file, opts, profile, backend, notes=notes), RSNN_STAGES)
        report = _report(state)
        write_outputs(folder, state.mapped, report, state.timings, t_start)
    log(f"wrote {out}/report.json, {out}/report.html, {out}/timings.json and {out}/network.ncnet in {state.timings['build_s']:.1f} s")
    return report
