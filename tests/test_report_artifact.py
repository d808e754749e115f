"""``rebuild`` and ``compare`` on a real build (the stored golden MLP), and their CLI wrappers."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import neurocompile
from neurocompile.cli import main
from neurocompile.errors import NeurocompileError
from neurocompile.report import compare
from neurocompile.reporting import rebuild
from neurocompile.report.html import _si, render_html

MODEL = Path(__file__).resolve().parent / "golden" / "mlp.pt2"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "build"
    neurocompile.build(MODEL, target="loihi2", data="digits", out=out, timesteps=16, lava_samples=0, backend="none", t_sweep=(4, 16))
    return out


def test_rebuild_reproduces_the_build_byte_for_byte(built, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    before_json, before_html = (copy / "report.json").read_bytes(), (copy / "report.html").read_bytes()
    (copy / "report.html").unlink()
    report = rebuild(copy, quiet=True)
    assert (copy / "report.json").read_bytes() == before_json
    assert (copy / "report.html").read_bytes() == before_html
    assert report["stages"]["snn_quantized"]["accuracy"] == json.loads(before_json)["stages"]["snn_quantized"]["accuracy"]


def test_the_page_is_a_function_of_report_json(built):
    """Every number the page shows comes from report.json: rendering the JSON gives the page."""
    report = json.loads((built / "report.json").read_text())
    assert render_html(report) == (built / "report.html").read_text()
    for key in ("stages", "accuracy_vs_T", "layers", "raster", "energy", "mapping", "ops_per_sample"):
        assert report[key], key


def test_report_figures_by_hand(built):
    from neurocompile import ir
    from neurocompile.data import load_dataset, shape_for_model
    from neurocompile.sim.run import evaluate, period

    report = json.loads((built / "report.json").read_text())
    net = ir.load(built / "network.ncnet")
    steps = period(net)
    for layer in report["layers"]:
        assert layer["firing_rate"] == pytest.approx(layer["spikes_per_sample"] / (layer["neurons"] * steps))
    # the raster's spikes are sample 0's, as the batched evaluation counts them
    ds = load_dataset("digits", seed=0)
    ev = evaluate(net, shape_for_model(ds.x_test[:1], net.population(net.input).shape), "fixed")
    for name, rec in report["raster"]["populations"].items():
        assert rec["spikes_total"] == ev.spike_counts[name][0]
        assert len(rec["spikes"]) == rec["spikes_total"] or rec["shown"] < rec["neurons"]
    e = report["energy"]["loihi2"]
    assert e["cores_used"] == report["mapping"]["cores_used"] == len(report["mapping"]["cores"])
    assert e["joules_per_sample"] == pytest.approx(sum(e["breakdown"].values()))
    assert e["range_j"][0] < e["joules_per_sample"] < e["range_j"][1]
    assert e["latency_s"] == pytest.approx(steps * e["time_per_step_s"])
    assert set(report["energy"]) >= {"loihi", "loihi2", "kapoho_point", "hala_point", "cmos45_int8", "cmos45_fp32"}


def test_rebuild_without_a_report_json_says_what_it_cannot_recompute(built, tmp_path):
    copy = tmp_path / "bare"
    shutil.copytree(built, copy)
    (copy / "report.json").unlink()
    report = rebuild(copy, quiet=True)
    assert set(report["stages"]) == {"snn_quantized"}
    assert "need the source model" in report["notes"][0]
    assert report["energy"] == json.loads((built / "report.json").read_text())["energy"]


def test_rebuild_refuses_a_folder_without_a_network(tmp_path):
    with pytest.raises(NeurocompileError, match="is not a build folder"):
        rebuild(tmp_path)


def test_compare_table_by_hand(built):
    report = json.loads((built / "report.json").read_text())
    text = compare([built, built])
    lines = text.splitlines()
    assert lines[0].split() == ["build", "target", "accuracy", "T", "spikes/sample", "energy/inference", "latency/inference", "cores"]
    assert len(lines) == 4 and lines[2] == lines[3]
    spikes = sum(l["spikes_per_sample"] for l in report["layers"])
    e = report["energy"]["loihi2"]
    for cell in (f"{100 * report['stages']['snn_quantized']['accuracy']:.2f} %", f"{spikes:,.1f}", _si(e["joules_per_sample"], "J"),
                 f"({_si(e['range_j'][0], 'J')}–{_si(e['range_j'][1], 'J')})", _si(e["latency_s"], "s"), " 16 "):
        assert cell in lines[2], cell
    assert lines[2].rstrip().endswith(str(report["mapping"]["cores_used"]))


def test_compare_refuses_a_folder_without_a_report(tmp_path):
    with pytest.raises(NeurocompileError, match="has no report.json"):
        compare([tmp_path])


def test_cli_report_and_compare(built, tmp_path, capsys):
    copy = tmp_path / "cli"
    shutil.copytree(built, copy)
    assert main(["report", str(copy), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == json.loads((copy / "report.json").read_text())
    assert main(["report", str(copy), "--quiet"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert main(["compare", str(copy), str(built), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["cores"] for r in rows] == [3, 3] and rows[0]["energy_j"] == rows[1]["energy_j"]
    assert main(["compare", str(copy), "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["compare", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
