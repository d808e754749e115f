"""``build``: the whole pipeline, model file → report, as one Python call.

Each stage is a pure pass over the IR; this module only sequences them,
measures accuracy after each, and writes the outputs atomically (everything
goes to a temporary folder next to ``out`` that is renamed into place).
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import shutil
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from . import ir
from .ir import MAX_TIMESTEPS
from .backends import RunResult, get_backend
from .data import Dataset, check_seed, data_file, data_reference, load_dataset, shape_for_model
from .errors import NeurocompileError
from .frontend import ingest_program, sniff_format
from .frontend.load import program_batch_size
from .outputs import BuildFolder, build_folder, check_output_dir
from .passes.convert import METHODS as THRESHOLD_METHODS, convert
from .passes.finetune import FinetuneSettings, finetune_progressively, split_validation, warm_start_timesteps
from .passes.finetune.progressive import check_via
from .passes.map import map_to_cores
from .passes.quantize import FixedPointFormat, quantize
from .profiles import Profile, load_profile, load_profiles
from .report.energy import count_ops
from .report.tables import layer_table, spikes_per_sample
from .report.artifact import dumps
from .report.html import render_html
from .reporting import NETWORK_FILE, load_build, measured_sections
from .sim.ann import ann_forward
from .sim.encoding import ENCODINGS
from .sim.run import Evaluation, accuracy_vs_timesteps, decode, evaluate, frames_for, inference_steps, period

T_SWEEP = (4, 8, 16, 32, 64, 128)


_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("neurocompile_quiet", default=False)


def log(msg: str) -> None:
    if not _QUIET.get():
        print(f"[neurocompile] {msg}", file=sys.stderr, flush=True)


def _bar(name: str) -> str | None:
    """A progress bar's label, or None (no bar) in a quiet build."""
    return None if _QUIET.get() else name


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stage(acc: float, n: int, **extra) -> dict:
    return {"accuracy": round(float(acc), 6), "samples": int(n), **extra}


def _call_program(module: torch.nn.Module, x: np.ndarray, batch: int | None, dtype: torch.dtype) -> np.ndarray:
    """The exported module on ``x`` in its own dtype; a program exported for a fixed batch gets exactly that batch (zero-padded)."""
    step = batch or 1
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), step):
            chunk = torch.as_tensor(x[i : i + step]).to(dtype)
            if batch and len(chunk) < batch:
                chunk = torch.cat([chunk, chunk.new_zeros((batch - len(chunk), *chunk.shape[1:]))])
            outs.append(module(chunk).detach().float().numpy()[: len(x) - i])
    return np.concatenate(outs)[: len(x)]


def _program_input_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype the exported graph takes (an fp16 or fp64 model is fed its own precision; the IR is float32).

    In ``ExportedProgram.module()`` the placeholders are the user inputs only (weights are attributes).
    """
    graph = getattr(module, "graph", None)
    for node in graph.nodes if graph is not None else ():
        val = node.meta.get("val") if node.op == "placeholder" else None
        if isinstance(val, torch.Tensor) and val.is_floating_point():
            return val.dtype
    return torch.float32


def _ann_stage(st: BuildState, check: int = 16) -> None:
    """ANN accuracy of the captured IR, checked against the model file itself on ``check`` samples.

    Exported programs are often specialised to one batch size, and calling
    them sample by sample costs ~60 ms each; the IR runs the same arithmetic
    batched (tests/test_frontend.py holds it to the model within 1e-5), and the
    check below proves it on this very model.
    """
    net, x, y = st.ann, st.x_test, st.ds.y_test
    logits = ann_forward(net, torch.as_tensor(x))[net.output].numpy()
    if not np.all(np.isfinite(logits)):
        raise NeurocompileError(f"{st.model.name} produces NaN or infinite outputs on the test data; check its weights")
    module = st.program.module()
    dtype = _program_input_dtype(module)
    ref = _call_program(module, x[: min(check, len(x))], program_batch_size(st.program), dtype)
    diff = float(np.abs(ref.reshape(len(ref), -1) - logits[: len(ref)]).max())
    scale = float(np.abs(ref).max()) or 1.0
    # the IR computes in float32; an fp16 model's own outputs carry its ~1e-3 rounding
    tolerance = max(1e-4, 16 * torch.finfo(dtype).eps)
    if diff > tolerance * max(scale, 1.0):
        raise NeurocompileError(f"internal error: the captured network differs from {st.model.name} by {diff:.3g} (please report this model)")
    acc = (logits.argmax(1) == y).mean()
    st.stages["ann"] = _stage(acc, len(x), checked_against_model_file={"samples": len(ref), "max_abs_logit_diff": diff})
    log(f"ann accuracy {st.stages['ann']['accuracy']:.4f}")
    check_ann_outputs(logits, st.stages["ann"]["accuracy"], st.ds.num_classes, st.notes)


def check_classes(net: ir.Network, classes: int, notes: list[str]) -> None:
    """Refuse a model whose outputs cannot name the data's classes; warn where it has more outputs than classes."""
    n_out = net.population(net.output).size
    if n_out < 2:
        raise NeurocompileError(f"the model has {n_out} output; a classifier needs one output per class ({classes} for this data)")
    if classes > n_out:
        raise NeurocompileError(
            f"the data's labels go up to {classes - 1} but the model has only {n_out} outputs; "
            "give data whose labels are 0..N-1 for a model with N outputs"
        )
    if n_out > classes:
        _warn(notes, f"the model has {n_out} outputs but the data has only {classes} classes (labels 0..{classes - 1}); "
                     "predictions of the extra outputs count as errors")


def check_ann_outputs(logits: np.ndarray, acc: float, classes: int, notes: list[str]) -> None:
    """Refuse a model whose output ignores its input; warn when its accuracy is at chance level."""
    if len(logits) > 1 and float(np.ptp(logits, axis=0).max()) == 0.0:
        raise NeurocompileError(
            "the model gives the same output for every test sample (all-zero weights, or an untrained model?); "
            "give a trained model"
        )
    if classes >= 2 and acc <= 1.5 / classes:
        _warn(notes, f"ANN accuracy {acc:.3f} is at chance level for {classes} classes: "
                     "was the model trained on this data, with inputs in [0, 1] and no normalisation?")


def _warn(notes: list[str], msg: str) -> None:
    notes.append(f"warning: {msg}")
    log(f"warning: {msg}")


def run_lava_stage(net: ir.Network, x: np.ndarray, backend: str, timeout_s: float | None) -> tuple[dict, dict]:
    """The sampled cross-check: ``backend`` and the reference on the very same frames, compared neuron by neuron.

    Returns the report's stage (a function of the inputs alone) and its wall-clock figures (for timings.json).
    """
    frames = frames_for(net, x, fixed=True).numpy()
    check = compare_backends(net, frames, backend, timeout_s)
    result, ref = check.result, check.reference
    logits, ref_logits = decode(net, result.readout, fixed=True), decode(net, ref.readout, fixed=True)
    preds = logits.argmax(1)
    stage = {
        "platform": result.platform,
        "predictions": preds.tolist(),
        "agreement": {"predictions": float((preds == ref_logits.argmax(1)).mean()), **check.agreement},
        "steps": result.steps,
        "lowering": check.lowering,
    }
    return stage, check.timing


@dataclass(frozen=True)
class BackendCheck:
    """``backend`` and the reference run on the very same frames: both results and what agreed, bit for bit."""

    result: RunResult
    reference: RunResult
    agreement: dict[str, bool]
    timing: dict[str, object]
    lowering: list | None


def compare_backends(net: ir.Network, frames: np.ndarray, backend: str, timeout_s: float | None,
                     record: bool = False) -> BackendCheck:
    """Run ``frames`` on ``backend`` and on the reference; compare readouts and spikes per sample and neuron.

    ``record``: also compare every spike train step by step (``spike_trains_identical``).
    """
    be = get_backend(backend)
    result = be.run(net, frames, timeout_s=timeout_s, record=record)
    ref = get_backend("reference").run(net, frames, record=record)
    same = lambda a, b: set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in b)  # noqa: E731
    agreement = {
        "readout_identical": bool(np.array_equal(result.readout, ref.readout)),
        "spike_counts_identical": bool(same(result.spike_counts, ref.spike_counts)),  # per sample and per neuron
    }
    if record:
        agreement["spike_trains_identical"] = bool(same(result.spike_trains or {}, ref.spike_trains or {}))
    timing = {
        f"{backend}_wall_s": result.wall_s,
        f"{backend}_steps_per_s": result.steps / max(result.wall_s, 1e-9),
        f"{backend}_notes": result.notes,
    }
    return BackendCheck(result, ref, agreement, timing, be.describe(net, frames))


def _choose_cross_check_backend(backend: str, samples: int, notes: list[str]) -> str:
    """``auto``: Lava where it is installed, else skip the cross-check and say why; a named backend must work."""
    be = get_backend(backend) if backend not in ("none", "auto") else None  # an unknown name is an error even without samples
    if backend == "none" or not samples:
        return "none"
    if backend == "auto":
        try:
            ok, why = get_backend("lava").available()
        except NeurocompileError as e:
            ok, why = False, str(e)
        if not ok:
            notes.append(f"lava stage skipped: {why}")
            log(f"lava stage skipped: {why}")
            return "none"
        return "lava"
    ok, why = be.available()  # fail fast on a backend that cannot run here
    if not ok:
        raise NeurocompileError(f"backend {backend!r} is not usable here: {why}; pass --lava-samples 0 to skip it")
    return backend


def check_timesteps(values: tuple[int, ...] | list[int], option: str) -> None:
    """Time steps must be whole numbers in [1, MAX_TIMESTEPS]: one period's frames and state must fit in memory."""
    for T in values:
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or not 1 <= T <= MAX_TIMESTEPS:
            raise NeurocompileError(
                f"{option} {T!r} is out of range; accepted: whole numbers from 1 to {MAX_TIMESTEPS} "
                "(rate-coded conversion reaches the ANN's accuracy long before that)"
            )


def chip_profile(target: str):
    """The target's profile, refused when it is an ANN baseline rather than a chip."""
    profile = load_profile(target)
    if profile.kind != "neuromorphic":
        chips = ", ".join(n for n, p in load_profiles().items() if p.kind == "neuromorphic")
        raise NeurocompileError(f"--target {target} is an ANN baseline profile, not a chip; build for one of: {chips}")
    return profile


@dataclass(frozen=True)
class BuildOptions:
    """Every setting of a build, typed; :meth:`check` refuses bad ones before anything is loaded."""

    target: str = "loihi2"
    data: str = "digits"
    timesteps: int = 32
    seed: int = 0
    lava_samples: int = 20
    backend: str = "auto"
    encoding: str = "direct"
    threshold_method: str = "percentile"
    calibration_samples: int = 512
    trust_pickle: bool = False
    lava_timeout_s: float | None = None
    t_sweep: tuple[int, ...] = T_SWEEP
    # fine-tuning (STDB, passes/finetune): off with 0 epochs. A few epochs at small T need a larger
    # step than the paper's 1e-4 for 20 epochs (FinetuneSettings' docstring has the measurements)
    finetune_epochs: int = 0
    finetune_lr: float = 1e-3
    surrogate: str = "linear"
    reset: str = "subtract"
    # larger T fine-tuned first, each from the last (passes/finetune/progressive.py); None: 2 for T = 1, else none
    finetune_via: tuple[int, ...] | None = None

    def check(self) -> None:
        check_timesteps([self.timesteps], "--timesteps")
        check_timesteps(list(self.t_sweep), "--sweep")
        check_seed(self.seed)
        n = self.lava_samples
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise NeurocompileError(f"--lava-samples must be a whole number ≥ 0 (got {n!r})")
        if self.encoding not in ENCODINGS:
            raise NeurocompileError(f"unknown encoding {self.encoding!r}; accepted: {', '.join(ENCODINGS)}")
        if self.threshold_method not in THRESHOLD_METHODS:
            raise NeurocompileError(f"unknown threshold method {self.threshold_method!r}; accepted: {', '.join(THRESHOLD_METHODS)}")
        if not isinstance(self.calibration_samples, (int, np.integer)) or self.calibration_samples < 1:
            raise NeurocompileError(f"calibration_samples must be a whole number ≥ 1 (got {self.calibration_samples!r})")
        e = self.finetune_epochs
        if isinstance(e, bool) or not isinstance(e, (int, np.integer)) or e < 0:
            raise NeurocompileError(f"--finetune-epochs must be a whole number ≥ 0 (got {e!r})")
        if self.reset not in ("subtract", "zero"):
            raise NeurocompileError(f"unknown reset {self.reset!r}; accepted: subtract, zero")
        if self.reset == "zero" and not e:
            raise NeurocompileError("--reset zero re-targets the neurons during fine-tuning; give --finetune-epochs N (N ≥ 1)")
        if self.finetune_via is not None and not e:
            raise NeurocompileError("--finetune-via sets the T fine-tuned at first; give --finetune-epochs N (N ≥ 1)")
        if e:
            self.finetune_settings()  # its own checks (learning rate, surrogate)
            self.warm_start()  # --finetune-via

    def warm_start(self) -> tuple[int, ...]:
        """The T fine-tuned at before the build's T, largest first (``--finetune-via``, by default 2 when T = 1), checked."""
        return check_via(warm_start_timesteps(self.timesteps) if self.finetune_via is None else self.finetune_via, self.timesteps)

    def finetune_settings(self) -> FinetuneSettings:
        """The fine-tuning settings of this build (FinetuneSettings checks its own values: learning rate, surrogate)."""
        return FinetuneSettings(epochs=self.finetune_epochs, timesteps=self.timesteps, lr=self.finetune_lr,
                                surrogate=self.surrogate, reset=None if self.reset == "subtract" else self.reset, seed=self.seed)


@dataclass
class BuildState:
    """What the stages hand on to each other: the network after each pass, evaluations, records."""

    model: Path
    options: BuildOptions
    profile: Profile
    ds: Dataset
    backend: str
    notes: list[str] = field(default_factory=list)
    timings: dict[str, object] = field(default_factory=dict)
    stages: dict[str, dict] = field(default_factory=dict)
    program: object = None
    ann: ir.Network | None = None
    snn: ir.Network | None = None
    qnet: ir.Network | None = None
    mapped: ir.Network | None = None
    x_train: np.ndarray | None = None
    x_test: np.ndarray | None = None
    ev_float: Evaluation | None = None
    ev_q: Evaluation | None = None
    sweep: dict[int, float] = field(default_factory=dict)
    sweep_finetuned: dict[int, float] = field(default_factory=dict)
    lowering: list | None = None
    checkpoint_dir: Path | None = None  # fine-tuning's, beside the output folder: an interrupted build resumes from it


@dataclass(frozen=True)
class Stage:
    """One step of the build: a pass (IR → IR) and what is measured after it.

    A new pass (fine-tuning, pruning) is one more Stage in :data:`STAGES`; the
    manager times each stage, and each stage records its accuracy in ``state.stages``.
    """

    name: str
    run: Callable[[BuildState], None]


def _ingest_stage(st: BuildState) -> None:
    st.program, st.ann = ingest_program(st.model, st.ds.sample_shape, st.options.trust_pickle)
    check_classes(st.ann, st.ds.num_classes, st.notes)
    in_shape = st.ann.population(st.ann.input).shape
    st.x_train, st.x_test = shape_for_model(st.ds.x_train, in_shape), shape_for_model(st.ds.x_test, in_shape)
    log(f"ingested {st.model.name}: {len(st.ann.populations) - 1} populations, {len(st.ann.projections)} projections")


def _convert_stage(st: BuildState) -> None:
    o = st.options
    snn = convert(st.ann, st.x_train[: o.calibration_samples], timesteps=o.timesteps, encoding=o.encoding, method=o.threshold_method)
    st.snn = snn.with_settings(seed=o.seed, data=data_reference(o.data), model=str(st.model.resolve()))


def _snn_float_stage(st: BuildState) -> None:
    st.ev_float = evaluate(st.snn, st.x_test, "float", progress=_bar("snn_float"))
    st.stages["snn_float"] = _stage(st.ev_float.accuracy(st.ds.y_test), len(st.x_test), mode="float, same schedule as the chip")
    log(f"snn_float accuracy {st.stages['snn_float']['accuracy']:.4f} at T={st.options.timesteps}")


def _sweep(st: BuildState, label: str) -> dict[int, float]:
    """Float accuracy of the current network at each T of the build's sweep (one run at the longest)."""
    acc = accuracy_vs_timesteps(st.snn, st.x_test, st.ds.y_test, tuple(st.options.t_sweep), progress=_bar(label))
    return {T: round(a, 6) for T, a in acc.items()}


def _sweep_stage(st: BuildState) -> None:
    st.sweep = _sweep(st, "accuracy vs T")
    if st.sweep:
        log(f"snn_float accuracy vs T: {st.sweep}")


def _finetune_stage(st: BuildState) -> None:
    """STDB fine-tuning at the build's T (held-out tenth of the training split measured per epoch), then its test accuracy."""
    o = st.options
    if not o.finetune_epochs:
        return
    settings = o.finetune_settings()
    train, val = split_validation(st.x_train, st.ds.y_train, 0.1)
    via = o.warm_start()
    first = f", first at T={', '.join(map(str, via))}" if via else ""
    log(f"fine-tuning {o.finetune_epochs} epochs at T={o.timesteps}{first} ({settings.surrogate} surrogate, lr {settings.lr:g})")
    result = finetune_progressively(st.snn, train, val, settings, via=via, checkpoint_dir=st.checkpoint_dir, progress=not _QUIET.get())
    st.snn = result.network
    st.ev_float = evaluate(st.snn, st.x_test, "float", progress=_bar("snn_finetuned"))
    st.stages["finetune"] = _stage(st.ev_float.accuracy(st.ds.y_test), len(st.x_test), epochs=o.finetune_epochs,
                                   mode="float, same schedule as the chip", warm_start_timesteps=list(via), **result.record())
    log(f"finetune accuracy {st.stages['finetune']['accuracy']:.4f} at T={o.timesteps}")
    st.sweep_finetuned = _sweep(st, "accuracy vs T (fine-tuned)")


def _quantize_stage(st: BuildState) -> None:
    st.qnet = quantize(st.snn, FixedPointFormat.from_profile(st.profile))
    st.ev_q = evaluate(st.qnet, st.x_test, "fixed", progress=_bar("snn_quantized (reference backend)"))
    rec = _stage(st.ev_q.accuracy(st.ds.y_test), len(st.x_test), backend="reference (bit-exact Lava fixed point)")
    before = st.stages["finetune" if "finetune" in st.stages else "snn_float"]  # the float network that was quantised
    rec["change_vs_float"] = round(rec["accuracy"] - before["accuracy"], 6)
    rec["prediction_agreement_vs_float"] = round(float((st.ev_q.logits.argmax(1) == st.ev_float.logits.argmax(1)).mean()), 6)
    st.stages["snn_quantized"] = rec
    log(f"snn_quantized accuracy {rec['accuracy']:.4f}")


def _map_stage(st: BuildState) -> None:
    st.mapped = map_to_cores(st.qnet, st.profile)
    m = st.mapped.mapping
    log(f"mapped onto {m['profile']}: {m['cores_used']} of {m['cores_available']} cores on {m['chips_used']} chip(s), {m['tiles_used']} tile(s)")


def _cross_check_stage(st: BuildState) -> None:
    n = min(st.options.lava_samples, len(st.x_test))
    if st.backend == "none" or not n:
        if not any("lava stage skipped" in note for note in st.notes):
            st.notes.append("lava stage skipped (--lava-samples 0 or --backend none)")
        return
    log(f"running {n} samples on backend {st.backend!r} ({n * period(st.mapped)} steps)")
    lava, timing = run_lava_stage(st.mapped, st.x_test[:n], st.backend, st.options.lava_timeout_s)
    st.timings.update(timing)
    preds = np.asarray(lava.pop("predictions"))
    key = "lava" if st.backend == "lava" else f"{st.backend}_cross_check"
    st.lowering = lava.pop("lowering")
    y = st.ds.y_test[:n]
    st.stages[key] = _stage((preds == y).mean(), n, **lava)
    st.stages[key]["snn_quantized_accuracy_same_samples"] = round(float((st.ev_q.logits[:n].argmax(1) == y).mean()), 6)
    log(f"{key} accuracy {st.stages[key]['accuracy']:.4f} on {n} samples; agreement {lava['agreement']}")


STAGES: tuple[Stage, ...] = (
    Stage("ingest", _ingest_stage),
    Stage("ann", _ann_stage),
    Stage("convert", _convert_stage),
    Stage("snn_float", _snn_float_stage),
    Stage("accuracy_vs_T", _sweep_stage),
    Stage("finetune", _finetune_stage),
    Stage("snn_quantized", _quantize_stage),
    Stage("map", _map_stage),
    Stage("cross_check", _cross_check_stage),
)


def run_stages(state: BuildState, stages: tuple[Stage, ...] = STAGES) -> BuildState:
    """Run ``stages`` in order, timing each (``state.timings[name + "_s"]``)."""
    for stage in stages:
        t0 = time.perf_counter()
        stage.run(state)
        state.timings[f"{stage.name}_s"] = time.perf_counter() - t0
    return state


def _report(st: BuildState) -> dict:
    """The report: a function of the inputs alone (no wall-clock figures; those go to timings.json)."""
    o, mapped = st.options, st.mapped
    return {
        "neurocompile_report": 1,
        "target": o.target,
        "model": {"file": str(st.model.resolve()), "sha256": sha256(st.model), "format": st.ann.settings.source_format},
        "data": {"spec": o.data, "train": len(st.x_train), "test": len(st.x_test), "seed": o.seed},
        "timesteps": o.timesteps,
        "period_steps": period(mapped),
        "encoding": o.encoding,
        "threshold_method": st.snn.conversion.threshold_method,
        "stages": st.stages,
        "accuracy_vs_T": {str(k): v for k, v in st.sweep.items()},
        **({"accuracy_vs_T_finetuned": {str(k): v for k, v in st.sweep_finetuned.items()}} if st.sweep_finetuned else {}),
        **network_sections(mapped, st.ev_q, frames_for(mapped, st.x_test[:1], fixed=True).numpy()),
        "lowering": st.lowering,
        "notes": st.notes,
    }


def network_sections(mapped: ir.Network, ev_q: Evaluation, raster_frames: np.ndarray) -> dict:
    """The report's sections the built network and its bit-exact evaluation determine, in the report's order.

    Layers, operations per sample, energy and latency per profile, the raster of ``raster_frames``
    (one sample's frames), the mapping and the fixed-point formats.
    """
    ops = count_ops(mapped, spikes_per_sample(mapped, ev_q), inference_steps(mapped))
    return {
        "layers": layer_table(mapped, ev_q),
        "ops_per_sample": ops,
        **measured_sections(mapped, ops, None, load_profiles(), quiet=_QUIET.get(), frames=raster_frames),
        "mapping": mapped.mapping,
        "quantization": {"format": mapped.fixed.format, "v_units_per_float": mapped.fixed.v_units_per_float},
    }


@contextlib.contextmanager
def quiet_logs(quiet: bool) -> Iterator[None]:
    """No log lines and no progress bars on stderr inside the block when ``quiet``."""
    token = _QUIET.set(bool(quiet))
    try:
        yield
    finally:
        _QUIET.reset(token)


def write_outputs(folder: BuildFolder, mapped: ir.Network, report: dict, timings: dict[str, object], t_start: float) -> None:
    """A build's files: the network, report.json, report.html and timings.json (wall clock, with the total)."""
    ir.save(mapped, folder.file(NETWORK_FILE))
    folder.file("report.json").write_text(dumps(report))
    folder.file("report.html").write_text(render_html(report))
    timings["build_s"] = time.perf_counter() - t_start
    folder.file("timings.json").write_text(dumps(timings))


def build(model: str | Path, *, out: str | Path = "build", quiet: bool = False, **options) -> dict:
    """Ingest → convert → quantise → map → run on Lava → report; returns the report dict.

    ``options`` are the fields of :class:`BuildOptions`; ``quiet``: no log lines and no progress
    bars on stderr (the outputs are the same). Every option, the
    target, the model file and the output folder are checked before any
    compute. Outputs: ``report.json``, ``report.html`` and ``network.ncnet`` are
    a function of the inputs alone (byte-identical for the same model, data,
    seed and options); wall-clock figures go to ``timings.json``.
    """
    with quiet_logs(quiet):
        return _build(model, out, options)


def _build(model: str | Path, out: str | Path, options: dict) -> dict:
    t_start = time.perf_counter()
    unknown = set(options) - {f.name for f in fields(BuildOptions)}
    if unknown:
        raise TypeError(f"build() got unexpected option(s) {', '.join(sorted(unknown))}")
    opts = BuildOptions(**{**options, "t_sweep": tuple(options.get("t_sweep", T_SWEEP))})
    model = Path(model)
    opts.check()
    profile = chip_profile(opts.target)
    if sniff_format(model) == "rsnn":
        raise NeurocompileError(f"{model} is a recurrent SNN: build it with `neurocompile build --rsnn {model} --task TASK` "
                                "(README 'Recurrent networks')")
    inputs = [model, *filter(None, [data_file(opts.data)])]
    check_output_dir(Path(out), inputs)
    notes: list[str] = []
    backend = _choose_cross_check_backend(opts.backend, opts.lava_samples, notes)
    ds = load_dataset(opts.data, seed=opts.seed)
    log(f"data {ds.name}: {len(ds.x_train)} train / {len(ds.x_test)} test samples")
    checkpoint = Path(out).with_name(Path(out).name + ".finetune-checkpoint") if opts.finetune_epochs else None
    with build_folder(out, inputs) as folder:  # created now: an unwritable -o fails before any compute
        state = run_stages(BuildState(model, opts, profile, ds, backend, notes=notes, checkpoint_dir=checkpoint))
        report = _report(state)
        write_outputs(folder, state.mapped, report, state.timings, t_start)
    if checkpoint is not None:  # the build is in place: nothing left to resume
        shutil.rmtree(checkpoint, ignore_errors=True)
    log(f"wrote {out}/report.json, {out}/report.html, {out}/timings.json and {out}/{NETWORK_FILE} in {state.timings['build_s']:.1f} s")
    return report


def run_artifact(out: str | Path, backend: str = "reference", samples: int | None = None, timeout_s: float | None = None) -> dict:
    """Run a built artifact's network on the first ``samples`` test samples of its data set."""
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1):
        raise NeurocompileError(f"--samples must be a whole number ≥ 1 (got {samples!r})")
    net = load_build(out)
    ds = load_dataset(net.settings.data, seed=net.settings.seed)
    n = len(ds.x_test) if samples is None else min(samples, len(ds.x_test))
    x = shape_for_model(ds.x_test[:n], net.population(net.input).shape)
    be = get_backend(backend)
    ok, why = be.available()
    if not ok:
        raise NeurocompileError(f"backend {backend!r} is not usable here: {why}")
    result = be.run(net, frames_for(net, x, fixed=True).numpy(), timeout_s=timeout_s)
    preds = decode(net, result.readout, fixed=True).argmax(1)
    return {
        "backend": backend,
        "platform": result.platform,
        "samples": n,
        "accuracy": float((preds == ds.y_test[:n]).mean()),
        "predictions": preds.tolist(),
        "spikes_per_layer": {k: int(v.sum()) for k, v in result.spike_counts.items()},
        "spikes_per_sample": {k: float(v.sum(1).mean()) for k, v in result.spike_counts.items()},
        "wall_s": round(result.wall_s, 4),
        "steps": result.steps,
    }

