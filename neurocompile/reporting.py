"""Measuring a built network for its report, and rebuilding a build folder's report.

Why a module of its own, above the passes: ``neurocompile build`` and
``neurocompile report OUT`` must write the same report from the same network,
so both call :func:`measured_sections` (placements on every profile, energy and
latency, one sample's raster recorded on the reference backend); :func:`rebuild`
recomputes every figure the network and its data determine (fixed-point accuracy,
spikes, operation counts, mapping, energy and latency per profile, the raster)
and keeps from the existing report.json only what the network cannot give back
(the accuracy of the passes before quantisation and accuracy vs T, which need
the source model). The report package itself only counts and lays out. A
recurrent build (``build --rsnn``) names a task, not a data set: its folder is read
back one layer up, by :mod:`neurocompile.rsnn_run`, with :func:`open_build`,
:func:`read_report` and :func:`write_report` from here.
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
from .frontend.rsnn import SOURCE_FORMAT as RSNN_FORMAT
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


def is_recurrent(net: Network) -> bool:
    """Whether ``net`` came from ``build --rsnn``: its inputs are a task recorded in report.json, not a data set it names."""
    return net.settings.source_format == RSNN_FORMAT


def open_build(out: str | Path) -> Network:
    """The built (converted, quantised) network of build folder ``out``, feed-forward or recurrent.

    Why apart from :func:`load_build`: ``run`` and ``report`` first learn which kind of build a
    folder holds, then hand it to the feed-forward or the recurrent code; a folder that is no
    build gets one line saying what is accepted.
    """
    out = Path(out)
    path = out / NETWORK_FILE
    if not path.is_file():
        raise NeurocompileError(f"{out} is not a build folder (no {NETWORK_FILE}); accepted: a folder written by "
                                "`neurocompile build` or `neurocompile build --rsnn`")
    net = ir.load(path)
    if not net.quantized or not net.converted or (net.settings.data is None and not is_recurrent(net)):
        raise NeurocompileError(f"{path} is not a built network (not converted and quantised); run `neurocompile build` first")
    return net


def load_build(out: str | Path) -> Network:
    """The built network of feed-forward build folder ``out`` (its data set named in it), or a one-line error."""
    net = open_build(out)
    if is_recurrent(net):
        raise NeurocompileError(f"{out} is a recurrent build (`build --rsnn`), whose task is recorded in its report.json, not a data "
                                "set: run it with `neurocompile run` (neurocompile.rsnn_run.run_recurrent)")
    return net


def read_report(out: str | Path, remedy: str) -> dict | None:
    """``OUT/report.json`` as a dict, or None where there is none; a file that is no JSON object is a one-line error ending in ``remedy``."""
    path = Path(out) / "report.json"
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NeurocompileError(f"{path} is not valid JSON ({e}); {remedy}") from None
    if not isinstance(report, dict):
        raise NeurocompileError(f"{path} is not a report (a JSON object); {remedy}")
    return report


def write_report(out: str | Path, report: dict) -> None:
    """Write ``OUT/report.json`` and ``OUT/report.html``: both rendered before either is replaced, each renamed into place."""
    out = Path(out)
    text, html = dumps(report), render_html(report)
    _write_atomic(out / "report.json", text)
    _write_atomic(out / "report.html", html)


def rebuild(out_dir: str | Path, *, quiet: bool = False) -> dict:
    """Rewrite ``OUT/report.json`` and ``OUT/report.html`` from ``OUT/network.ncnet`` and the data it names.

    Returns the report. Figures the network determines are recomputed; the
    earlier passes' accuracy and accuracy vs T are kept from the old report.json
    (they need the source model), and the notes say so when there is none.
    """
    out = Path(out_dir)
    net = load_build(out)
    old = read_report(out, "delete it to rebuild from the network alone") or {}
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
    write_report(out, report)
    return report
