"""``build``: the whole pipeline, model file → report, as one Python call.

Each stage is a pure pass over the IR; this module only sequences them,
measures accuracy after each, and writes the outputs atomically (everything
goes to a temporary folder next to ``out`` that is renamed into place).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from . import ir
from .backends import get_backend
from .data import load_dataset, shape_for_model
from .errors import NeurocompileError
from .frontend import ingest, load_program, sniff_format
from .passes.convert import convert
from .passes.map import map_to_cores
from .passes.quantize import FixedPointFormat, quantize
from .profiles import load_profile, load_profiles
from .report.energy import count_ops, energy_table
from .report.html import render_html
from .sim.ann import ann_forward
from .sim.run import Evaluation, decode, evaluate, frames_for, period

NETWORK_FILE = "network.ncnet"
T_SWEEP = (4, 8, 16, 32, 64, 128)


def log(msg: str) -> None:
    print(f"[neurocompile] {msg}", file=sys.stderr, flush=True)


def check_output_dir(out: Path) -> Path:
    """The resolved output folder, refused if replacing it could destroy something that is not a build."""
    out = Path(out).resolve()
    if out == Path.cwd().resolve() or out in Path.cwd().resolve().parents or out.parent == out:
        raise NeurocompileError(f"-o {out} is the current folder or one of its parents; give a new folder for the build")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / NETWORK_FILE).exists())):
        raise NeurocompileError(f"-o {out} exists and is not a neurocompile build folder; give a new folder or remove it")
    return out


@contextmanager
def atomic_dir(out: Path):
    """Yield a temporary folder that replaces ``out`` (an empty folder or a previous build) only if the block succeeds."""
    out = check_output_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        old = out.with_name(f".{out.name}.old-{time.time_ns()}") if out.exists() else None
        if old is not None:
            out.rename(old)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _data_ref(data: str) -> str:
    """Built-in set names stay as they are; a file is recorded by absolute path so `run` works from anywhere."""
    return str(Path(data).resolve()) if data.endswith(".npz") else data


def _stage(acc: float, n: int, **extra) -> dict:
    return {"accuracy": round(float(acc), 6), "samples": int(n), **extra}


def _ann_stage(model: Path, net: ir.Network, x: np.ndarray, y: np.ndarray, sample_shape, trust_pickle: bool, check: int = 16) -> dict:
    """ANN accuracy of the captured IR, checked against the model file itself on ``check`` samples.

    Exported programs are often specialised to a batch of one, and calling
    them sample by sample costs ~60 ms each; the IR runs the same arithmetic
    batched (tests/test_frontend.py holds it to the model within 1e-5), and the
    check below proves it on this very model.
    """
    logits = ann_forward(net, torch.as_tensor(x))[net.output].numpy()
    module = load_program(model, sample_shape=sample_shape, trust_pickle=trust_pickle).module()
    with torch.no_grad():
        ref = np.concatenate([module(torch.as_tensor(x[i : i + 1])).numpy() for i in range(min(check, len(x)))])
    diff = float(np.abs(ref - logits[: len(ref)]).max())
    scale = float(np.abs(ref).max()) or 1.0
    if diff > 1e-4 * max(scale, 1.0):
        raise NeurocompileError(f"internal error: the captured network differs from {model.name} by {diff:.3g} (please report this model)")
    return _stage((logits.argmax(1) == y).mean(), len(x), checked_against_model_file={"samples": len(ref), "max_abs_logit_diff": diff})


def layer_table(net: ir.Network, ev: Evaluation) -> list[dict]:
    rows = []
    for pop in net.populations[1:]:
        spikes = ev.spike_counts.get(pop.name)
        rows.append(
            {
                "name": pop.name,
                "kind": pop.kind,
                "shape": list(pop.shape),
                "neurons": pop.size,
                "synapses": int(sum(pr.n_synapses for pr in net.incoming(pop.name))),
                "threshold": float(pop.threshold) if pop.kind == "spiking" else None,
                "spikes_per_sample": float(spikes.mean()) if spikes is not None else 0.0,
            }
        )
    return rows


def spikes_per_sample(net: ir.Network, ev: Evaluation) -> dict[str, float]:
    per = {k: float(v.mean()) for k, v in ev.spike_counts.items()}
    per[net.input] = float(ev.input_events.mean())
    return per


def run_lava_stage(net: ir.Network, x: np.ndarray, backend: str, timeout_s: float | None) -> dict:
    """The sampled cross-check: ``backend`` and the reference on the very same frames, compared neuron by neuron."""
    be = get_backend(backend)
    frames = frames_for(net, x, fixed=True).numpy()
    result = be.run(net, frames, timeout_s=timeout_s)
    ref = get_backend("reference").run(net, frames)
    describe = getattr(be, "describe_lowering", None)
    logits, ref_logits = decode(net, result.readout, fixed=True), decode(net, ref.readout, fixed=True)
    preds = logits.argmax(1)
    counts_equal = set(result.spike_counts) == set(ref.spike_counts) and all(
        np.array_equal(result.spike_counts[k], ref.spike_counts[k]) for k in ref.spike_counts
    )
    return {
        "platform": result.platform,
        "predictions": preds.tolist(),
        "agreement": {
            "predictions": float((preds == ref_logits.argmax(1)).mean()),
            "readout_identical": bool(np.array_equal(result.readout, ref.readout)),
            "spike_counts_identical": bool(counts_equal),  # per sample and per neuron
        },
        "wall_s": round(result.wall_s, 3),
        "steps": result.steps,
        "steps_per_s": round(result.steps / max(result.wall_s, 1e-9), 1),
        "notes": result.notes,
        "lowering": describe(net, frames) if describe else None,
    }


def _choose_cross_check_backend(backend: str, samples: int, notes: list[str]) -> str:
    """``auto``: Lava where it is installed, else skip the cross-check and say why; a named backend must work."""
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
    ok, why = get_backend(backend).available()  # fail fast on a missing backend
    if not ok:
        raise NeurocompileError(f"backend {backend!r} is not usable here: {why}; pass --lava-samples 0 to skip it")
    return backend


def build(
    model: str | Path,
    *,
    target: str = "loihi2",
    data: str = "digits",
    out: str | Path = "build",
    timesteps: int = 32,
    seed: int = 0,
    lava_samples: int = 20,
    backend: str = "auto",
    encoding: str = "direct",
    threshold_method: str = "percentile",
    calibration_samples: int = 512,
    trust_pickle: bool = False,
    lava_timeout_s: float | None = None,
    t_sweep: tuple[int, ...] = T_SWEEP,
) -> dict:
    """Ingest → convert → quantise → map → run on Lava → report; returns the report dict."""
    t_start = time.perf_counter()
    model = Path(model)
    profile = load_profile(target)  # fail fast on a bad target, model file or output folder
    if profile.kind != "neuromorphic":
        chips = ", ".join(n for n, p in load_profiles().items() if p.kind == "neuromorphic")
        raise NeurocompileError(f"--target {target} is an ANN baseline profile, not a chip; build for one of: {chips}")
    sniff_format(model)
    check_output_dir(Path(out))
    if lava_samples < 0:
        raise NeurocompileError(f"--lava-samples must be ≥ 0 (got {lava_samples})")
    notes: list[str] = []
    backend = _choose_cross_check_backend(backend, lava_samples, notes)
    ds = load_dataset(data, seed=seed)
    log(f"data {ds.name}: {len(ds.x_train)} train / {len(ds.x_test)} test samples")
    net = ingest(model, sample_shape=ds.sample_shape, trust_pickle=trust_pickle)
    in_shape = net.population(net.input).shape
    x_train, x_test = shape_for_model(ds.x_train, in_shape), shape_for_model(ds.x_test, in_shape)
    log(f"ingested {model.name}: {len(net.populations) - 1} populations, {len(net.projections)} projections")

    stages: dict[str, dict] = {}
    stages["ann"] = _ann_stage(model, net, x_test, ds.y_test, ds.sample_shape, trust_pickle)
    log(f"ann accuracy {stages['ann']['accuracy']:.4f}")

    calib = x_train[:calibration_samples]
    snn = convert(net, calib, timesteps=timesteps, encoding=encoding, method=threshold_method)
    snn = snn.replace(meta={**snn.meta, "seed": seed, "data": _data_ref(data), "model": str(model.resolve())})
    ev_float = evaluate(snn, x_test, "float", progress="snn_float")
    stages["snn_float"] = _stage(ev_float.accuracy(ds.y_test), len(x_test), mode="float, same schedule as the chip")
    sweep = {}
    for T in t_sweep:
        s_T = snn.replace(meta={**snn.meta, "timesteps": T})
        sweep[T] = round(evaluate(s_T, x_test, "float").accuracy(ds.y_test), 6)
    log(f"snn_float accuracy {stages['snn_float']['accuracy']:.4f} at T={timesteps}; vs T: {sweep}")

    qnet = quantize(snn, FixedPointFormat.from_profile(profile))
    ev_q = evaluate(qnet, x_test, "fixed", progress="snn_quantized (reference backend)")
    stages["snn_quantized"] = _stage(ev_q.accuracy(ds.y_test), len(x_test), backend="reference (bit-exact Lava fixed point)")
    stages["snn_quantized"]["change_vs_float"] = round(stages["snn_quantized"]["accuracy"] - stages["snn_float"]["accuracy"], 6)
    stages["snn_quantized"]["prediction_agreement_vs_float"] = round(float((ev_q.logits.argmax(1) == ev_float.logits.argmax(1)).mean()), 6)
    log(f"snn_quantized accuracy {stages['snn_quantized']['accuracy']:.4f}")

    mapped = map_to_cores(qnet, profile)
    lowering = None
    n_lava = min(lava_samples, len(x_test))
    if backend != "none" and n_lava:
        log(f"running {n_lava} samples on backend {backend!r} ({n_lava * period(mapped)} steps)")
        lava = run_lava_stage(mapped, x_test[:n_lava], backend, lava_timeout_s)
        preds = np.asarray(lava.pop("predictions"))
        key = "lava" if backend == "lava" else f"{backend}_cross_check"
        lowering = lava.pop("lowering")
        stages[key] = _stage((preds == ds.y_test[:n_lava]).mean(), n_lava, **lava)
        same = (ev_q.logits[:n_lava].argmax(1) == ds.y_test[:n_lava]).mean()
        stages[key]["snn_quantized_accuracy_same_samples"] = round(float(same), 6)
        log(f"{key} accuracy {stages[key]['accuracy']:.4f} on {n_lava} samples; agreement {lava['agreement']}")
    elif not notes:
        notes.append("lava stage skipped (--lava-samples 0 or --backend none)")

    sps = spikes_per_sample(mapped, ev_q)
    ops = count_ops(mapped, sps, period(mapped))
    profiles = load_profiles()
    report = {
        "neurocompile_report": 1,
        "target": target,
        "model": {"file": str(model), "sha256": sha256(model), "format": net.meta.get("source_format")},
        "data": {"spec": data, "train": len(x_train), "test": len(x_test), "seed": seed},
        "timesteps": timesteps,
        "period_steps": period(mapped),
        "encoding": encoding,
        "threshold_method": snn.meta["threshold_method"],
        "stages": stages,
        "accuracy_vs_T": {str(k): v for k, v in sweep.items()},
        "layers": layer_table(mapped, ev_q),
        "ops_per_sample": ops,
        "energy": energy_table(mapped, ops, profiles),
        "mapping": mapped.meta.get("mapping"),
        "quantization": qnet.meta["quantization"],
        "lowering": lowering,
        "notes": notes,
        "build_seconds": None,
    }
    with atomic_dir(Path(out)) as tmp:
        ir.save(mapped, tmp / NETWORK_FILE)
        report["build_seconds"] = round(time.perf_counter() - t_start, 2)
        (tmp / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
        (tmp / "report.html").write_text(render_html(report))
    log(f"wrote {out}/report.json, {out}/report.html and {out}/{NETWORK_FILE} in {report['build_seconds']} s")
    return report


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def run_artifact(out: str | Path, backend: str = "reference", samples: int | None = None, timeout_s: float | None = None) -> dict:
    """Run a built artifact's network on the first ``samples`` test samples of its data set."""
    path = Path(out) / NETWORK_FILE
    if not path.exists():
        raise NeurocompileError(f"{out} is not a build folder (no {NETWORK_FILE}); run `neurocompile build` first")
    net = ir.load(path)
    ds = load_dataset(net.meta["data"], seed=int(net.meta.get("seed", 0)))
    n = len(ds.x_test) if samples is None else min(samples, len(ds.x_test))
    if n < 1:
        raise NeurocompileError(f"--samples must be ≥ 1 (got {samples})")
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
