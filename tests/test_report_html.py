"""The HTML report: self-contained (PNG figures inline), shows provenance labels,
escapes what it is given, and renders whatever optional parts are missing."""
from __future__ import annotations

import base64
import re

import numpy as np

from neurocompile.ir import Network, Population, Projection, RunSettings
from neurocompile.passes.map import map_to_cores
from neurocompile.profiles import load_profile, load_profiles
from neurocompile.report import count_ops, energy_table, render_html

PNG = re.compile(r'<img alt="figure" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def small_net() -> Network:
    rng = np.random.default_rng(0)
    pops = (Population("in", (16,), "input"), Population("h", (8,), "spiking"), Population("out", (3,), "readout"))
    projs = (Projection("w1", "in", "h", "dense", rng.normal(size=(8, 16))), Projection("w2", "h", "out", "dense", rng.normal(size=(3, 8))))
    return Network(pops, projs, ("in",), ("out",), RunSettings(timesteps=16))


def full_report() -> dict:
    net = map_to_cores(small_net(), load_profile("loihi2"))
    ops = count_ops(net, {"in": 120.0, "h": 40.0}, 18)
    return {
        "target": "loihi2",
        "model": {"file": "mnist_mlp.pt2", "sha256": "0" * 64},
        "timesteps": 16,
        "stages": {
            "ann": {"accuracy": 0.981, "samples": 1000},
            "snn_float": {"accuracy": 0.975, "samples": 1000},
            "snn_quantized": {"accuracy": 0.972, "samples": 1000},
            "lava": {"accuracy": 0.97, "samples": 100, "agreement": 0.99},
        },
        "layers": [
            {"name": "h", "kind": "spiking", "neurons": 8, "synapses": 128, "spikes_per_sample": 40.0, "firing_rate": 40 / (8 * 18)},
            {"name": "out", "kind": "readout", "neurons": 3, "synapses": 24, "spikes_per_sample": 0.0, "firing_rate": 0.0},
        ],
        "raster": {"sample": 0, "steps": 18, "populations": {"h": {"neurons": 8, "shown": 8, "spikes_total": 3,
                                                                   "spikes": [[1, 0], [2, 5], [9, 7]]}}},
        "energy": energy_table(net, ops, load_profiles()),
        "mapping": net.mapping,
        "accuracy_vs_T": {"4": 0.80, "8": 0.95, "16": 0.975},
        "lowering": [{"process": "SubtractiveLIF", "count": 1, "stock_loihi2": False, "note": "custom microcode on silicon"}],
        "notes": ["energy figures are modelled, not measured <script>alert(1)</script>"],
    }


def test_full_report_is_self_contained_with_embedded_pngs():
    html = render_html(full_report())
    images = PNG.findall(html)
    assert len(images) == 6  # accuracy per stage, accuracy vs T, firing rate per layer, raster, energy, core map
    for data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_full_report_shows_every_section_and_provenance():
    html = render_html(full_report())
    for heading in ("Accuracy after every stage", "Accuracy vs time steps", "Layers and spikes",
                    "Energy per sample, per hardware profile", "Mapping onto cores", "Lava processes used", "Notes"):
        assert heading in html
    for name in ("loihi", "loihi2", "cmos45_fp32", "cmos45_int8"):
        assert name in html
    # labels are visible, and Loihi 2's uncertainty is flagged
    for label in ("estimated", "measured", "pre-silicon", "uncertain"):
        assert f">{label}</span>" in html
    assert "PilotNet" in html  # the calibration's source is shown next to the constant
    assert "0" * 64 in html and "97.20 %" in html and "99.00 %" in html  # sha256, fixed-point accuracy, agreement
    assert "&lt;script&gt;" in html  # notes are escaped
    assert "<td class=\"num\">0.2778</td>" in html  # h's firing rate: 40 spikes / (8 neurons x 18 steps)


def test_energy_shows_ranges_latency_and_traffic():
    report = full_report()
    html = render_html(report)
    e = report["energy"]["loihi2"]
    from neurocompile.report.html import _si

    lo, hi = e["range_j"]
    assert lo < e["joules_per_sample"] < hi
    assert f"({_si(lo, 'J')} – {_si(hi, 'J')})" in html
    lo_t, hi_t = e["latency_range_s"]
    assert f"({_si(lo_t, 's')} – {_si(hi_t, 's')})" in html
    assert "Cores, chips and spike traffic per inference" in html and "messages between chips" in html
    assert f"time: slowest_core {_si(e['latency_breakdown']['slowest_core'], 's')}, barrier_sync" in html
    assert "utilisation of each of the 2 cores" in html  # h and out on one core each


def test_minimal_report_renders_without_optional_parts():
    html = render_html({"target": "loihi2"})
    assert html.startswith("<!DOCTYPE html>") and "neurocompile report: loihi2" in html
    assert not PNG.findall(html)
    assert "Energy per sample" not in html and "Mapping onto cores" not in html


def test_partial_report_with_skipped_lava_and_missing_values():
    report = {
        "target": "loihi2",
        "stages": {"ann": {"accuracy": 0.9, "samples": 10}, "lava": {"skipped": "lava-nc is not installed"}},
        "layers": [{"name": "h", "neurons": 8}],
        "energy": {
            "cmos45_int8": {"kind": "ann", "joules_per_sample": 1e-9, "breakdown": {"mac": 1e-9}, "labels": ["pre-silicon"], "fits": None},
            "loihi": {"kind": "neuromorphic", "joules_per_sample": 2e-6, "breakdown": {"synop": 2e-6}, "labels": ["pre-silicon"],
                      "fits": False, "notes": ["does not fit loihi: fan-in"]},
        },
        "mapping": {"loihi": {"profile": "loihi", "cores_used": 1, "cores_available": 128, "populations": {"h": {"neurons": 8, "cores": 1}}}},
        "notes": [],
    }
    html = render_html(report)
    assert "lava-nc is not installed" in html
    assert len(PNG.findall(html)) == 2  # accuracy bars and the energy bar; no spike counts to plot
    assert "1 of 128 cores" in html
    assert '<span class="badge uncertain">no</span> (see notes)' in html and "does not fit loihi: fan-in" in html
    assert "2e+03×" in html  # loihi vs the cheapest ANN baseline


def test_an_rsnn_report_shows_its_nrmse_per_stage():
    """A time-series build scores NRMSE (lower is better): the stage table and chart use it, not an empty accuracy column."""
    report = {"target": "loihi2", "metric": "nrmse",
              "stages": {"dense_float": {"nrmse": 0.0644, "samples": 400}, "snn_float": {"nrmse": 0.0847, "samples": 400},
                         "snn_quantized": {"nrmse": 0.1024, "samples": 400}}}
    html = render_html(report)
    assert "Prediction error (NRMSE" in html and "dense RSNN, float" in html
    for value in ("0.0644", "0.0847", "0.1024"):
        assert f"<td>{value}</td>" in html or f">{value}<" in html
    assert html.count("data:image/png;base64,") >= 1
