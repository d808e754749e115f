"""Measuring a built network for its report, and rebuilding a build folder's report.

Why a module of its own, above the passes: ``neurocompile build`` and
``neurocompile report OUT`` must write the same report from the same network,
so both call :func:`measured_sections` (placements on every profile, energy and
latency, one sample's raster recorded on the reference backend); :func:`rebuild`
recomputes every figure the network and its data determine (fixed-point accuracy,
spikes, operation counts, mapping, energy and latency per profile, the raster)
and keeps from the existing report.json only what the network cannot give back
(the accuracy of the passes before quantisation and accuracy vs T, which need
the source model). The report package itself only counts and lays out.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Mapping

import numpy as np

from . import ir
from .backends import get_backend
from .data import load_dataset, shape_for_model
from .errors import NeurocompileError
from .ir import Network
from .passes.map import placements
from .profiles import Profile, load_profiles
from .report.artifact import dumps
from .report.counting import count_ops
from .report.energy import energy_table
from .report.html import render_html
from .report.raster import spike_raster
from .report.tables import layer_table, spikes_per_sample
from .sim.run import evaluate, frames_for, inference_steps, period

NETWORK_FILE = "network.ncnet"


def _progress(total: int, desc: str, quiet: bool):
    """A tqdm bar on stderr (mapping onto a 1,152-chip system is the long step of a report)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=f"  {desc}", unit="profile", file=sys.stderr, leave=False, disable=quiet, mininterval=0.5)


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place (no half-written report)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def measured_sections(net: Network, ops: dict, x_one: np.ndarray | None, profiles: Mapping[str, Profile] | None = None, *,
                      quiet: bool = False, frames: np.ndarray | None = None) -> dict:
    """Energy and latency per profile (each on its own placement) and the raster of sample ``x_one`` (a batch of one).

    ``frames``: the raster sample's input frames themselves (1, steps, n_in), instead of ``x_one``
    (a recurrent network's sequence, which ``frames_for`` does not encode).
    """
    profiles = profiles if profiles is not None else load_profiles()
    with _progress(len(profiles), "mapping onto every profile", quiet) as bar:
        places = placements(net, profiles, progress=lambda name: bar.update(1))
    frames = frames_for(net, x_one[:1], fixed=True).numpy() if frames is None else np.asarray(frames)[:1]
    trains = get_backend("reference").run(net, frames, record=True).spike_trains or {}
    return {"energy": energy_table(net, ops, profiles, places), "raster": spike_raster(net, trains, frames.shape[1])}


def load_build(out: str | Path) -> Network:
    """The built (converted, quantised) network of build folder ``out``, or a one-line error saying what to run."""
    out = Path(out)
    path = out / NETWORK_FILE
    if not path.is_file():
        raise NeurocompileError(f"{out} is not a build folder (no {NETWORK_FILE}); run `neurocompile build` first")
    net = ir.load(path)
    if net.settings.source_format == "neurocompile-rsnn" and net.quantized:
        raise NeurocompileError(f"{out} is a recurrent build (`build --rsnn`): its task is not a data set this command can load; "
                                "rebuild it with `neurocompile build --rsnn`")
    if not net.quantized or net.settings.data is None or not net.converted:
        raise NeurocompileError(f"{path} is not a built network (not converted and quantised); run `neurocompile build` first")
    return net


def rebuild(out_dir: str | Path, *, quiet: bool = False) -> dict:
    """Rewrite ``OUT/report.json`` and ``OUT/report.html`` from ``OUT/network.ncnet`` and the data it names.

    Returns the report. Figures the network determines are recomputed; the
    earlier passes' accuracy and accuracy vs T are kept from the old report.json
    (they need the source model), and the notes say so when there is none.
    """
    out = Path(out_dir)
    net = load_build(out)
    old_path = out / "report.json"
    try:
        old = json.loads(old_path.read_text()) if old_path.is_file() else {}
    except json.JSONDecodeError as e:
        raise NeurocompileError(f"{old_path} is not valid JSON ({e}); delete it to rebuild from the network alone") from None
    ds = load_dataset(net.settings.data, seed=net.settings.seed)
    x = shape_for_model(ds.x_test, net.population(net.input).shape)
    ev = evaluate(net, x, "fixed", progress=None if quiet else "snn_quantized (reference backend)")
    ops = count_ops(net, spikes_per_sample(net, ev), inference_steps(net))
    report = dict(old) if old else {"neurocompile_report": 1, "target": (net.mapping or {}).get("profile"), "notes": [
        "rebuilt from network.ncnet alone: accuracy before quantisation and accuracy vs T need the source model"]}
    stages = dict(report.get("stages") or {})
    stages["snn_quantized"] = {**stages.get("snn_quantized", {}), "accuracy": round(ev.accuracy(ds.y_test), 6), "samples": len(x)}
    report.update(
        stages=stages,
        timesteps=net.settings.timesteps,
        period_steps=period(net),
        layers=layer_table(net, ev),
        ops_per_sample=ops,
        mapping=net.mapping,
        **measured_sections(net, ops, x[:1], quiet=quiet),
    )
    text = dumps(report)
    _write_atomic(old_path, text)
    _write_atomic(out / "report.html", render_html(report))
    return report
