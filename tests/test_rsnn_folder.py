"""``neurocompile run`` and ``neurocompile report`` on a recurrent build folder (``build --rsnn``).

Two small builds made through the command line (a 60-neuron HRSNN on a 400-sample Lorenz
series, a 40-neuron one on sequential digits), then ``run`` and ``report`` on their folders.
The scores are checked against what the build recorded and against an evaluation written out
here from the network file and the regenerated data (not the build's helpers); Lava's spike
trains against the reference engine's, bit for bit.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from neurocompile import ir
from neurocompile.cli import main
from neurocompile.sim.engine import simulate
from neurocompile.tasks import SeriesSettings, lorenz, make_prediction_task, nrmse, sequential_digits

L, SEED, DEPTH = 400, 5, 2  # series length, seed; an HRSNN's input → hidden → readout is two steps deep


def _build(out: Path, *args: str) -> tuple[Path, dict]:
    assert main(["build", "--rsnn", *args, "--quiet", "-o", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def series_build(tmp_path_factory, one_thread):
    """Lorenz, LNP-pruned, no cross-check at build time (``run --backend lava`` is tested below)."""
    return _build(tmp_path_factory.mktemp("lorenz") / "b", "--task", "lorenz", "--neurons", "60", "-T", str(L), "--seed",
                  str(SEED), "--lava-steps", "0")


@pytest.fixture(scope="module")
def digits_build(tmp_path_factory, one_thread):
    return _build(tmp_path_factory.mktemp("digits") / "b", "--task", "digits", "--neurons", "40", "--prune", "random",
                  "--neuron-sparsity", "0.5", "--synapse-sparsity", "0.75", "--lava-samples", "0")


def run_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["run", *args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def series_frames(report: dict, steps: int | None = None) -> tuple[np.ndarray, object]:
    """The series the build streamed, made here: z-scored Lorenz, divided by the recorded input scale, 8-bit payloads."""
    task = make_prediction_task(lorenz(SeriesSettings(n_samples=L, dt=0.02, seed=SEED)), horizon=1)
    payload = np.round(task.inputs / report["encoding"]["input_scale"] * 255).astype(np.int64)
    frames = np.concatenate([payload, np.zeros((DEPTH, 3), np.int64)])[None]
    return frames[:, :steps], task


def test_run_scores_the_series_as_the_build_did(series_build, capsys):
    out, report = series_build
    r = run_json(capsys, str(out))
    recorded = report["stages"]["snn_quantized"]
    assert (r["kind"], r["task"], r["metric"], r["backend"]) == ("rsnn", "lorenz", "nrmse", "reference")
    assert round(r["score"], 6) == recorded["nrmse"] and r["scored"] == recorded["samples"] == 60
    assert r["steps"] == L + DEPTH and r["agreement"] is None
    assert r["spikes_per_layer"] == {"hidden": next(l["spikes_per_sample"] for l in report["layers"] if l["name"] == "hidden")}
    # independently: the network file on the engine, every step decoded by hand, scored on the test rows
    net = ir.load(out / "network.ncnet")
    frames, task = series_frames(report)
    P = frames.shape[1]
    sim = simulate(net, torch.as_tensor(frames), readout_steps=tuple(range(P)))
    v = np.stack([sim.readouts_at[t][0].double().numpy() for t in range(P)])
    q = net.neuron_fixed("readout")
    pred = (v[DEPTH:] + np.asarray(q.bias_mant) * 2.0**q.bias_exp) / net.fixed.v_units_per_float["readout"]
    rows = task.rows["test"]
    assert r["score"] == pytest.approx(nrmse(pred[rows], task.targets[rows]), rel=1e-12)
    assert r["spikes_per_layer"]["hidden"] == int(sim.spike_counts["hidden"].sum())
    assert 0 < r["score"] < 1  # it forecasts, better than the mean


def test_the_python_api_runs_recurrent_folders(series_build, digits_build, capsys):
    """``neurocompile.run`` is the command's function: the same run as ``run --json`` (all but its wall time)."""
    import neurocompile

    for out, _ in (series_build, digits_build):
        api, cli = neurocompile.run(out), run_json(capsys, str(out))
        assert api.pop("wall_s") > 0 and cli.pop("wall_s") > 0 and api == cli
    with pytest.raises(neurocompile.errors.NeurocompileError, match="digits sequences of 8 steps: give --samples N"):
        neurocompile.run(digits_build[0], steps=3)


def test_run_prints_the_score_and_spikes(series_build, capsys):
    out, report = series_build
    capsys.readouterr()
    assert main(["run", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"nrmse {report['stages']['snn_quantized']['nrmse']:.4f} over the 60 test rows of the lorenz series" in lines[0]
    assert lines[1].split()[0] == "hidden" and lines[1].endswith("spikes/sample")


def test_a_short_stream_has_spikes_but_no_score(series_build, capsys):
    out, report = series_build
    r = run_json(capsys, str(out), "--steps", "50")
    frames, _ = series_frames(report, 50)
    net = ir.load(out / "network.ncnet").with_settings(timesteps=50 - DEPTH)
    sim = simulate(net, torch.as_tensor(frames))
    assert r["score"] is None and r["scored"] == 0 and "leave out --steps" in r["note"] and r["steps"] == 50
    assert r["spikes_per_layer"]["hidden"] == int(sim.spike_counts["hidden"].sum()) > 0


def test_run_scores_the_digits_as_the_build_did(digits_build, capsys):
    out, report = digits_build
    r = run_json(capsys, str(out))
    assert r["metric"] == "accuracy" and round(r["score"], 6) == report["stages"]["snn_quantized"]["accuracy"]
    assert r["scored"] == r["samples"] == 360
    # independently: the test sequences (rows of the 8x8 digits, one per step) on the engine, arg-max of the readout
    net = ir.load(out / "network.ncnet")
    task = sequential_digits(seed=0)
    frames = np.pad(np.round(task.x_test * 255).astype(np.int64), ((0, 0), (0, DEPTH), (0, 0)))
    readout = simulate(net, torch.as_tensor(frames)).readout.double().numpy()
    q = net.neuron_fixed("readout")
    preds = (readout + net.timesteps * np.asarray(q.bias_mant) * 2.0**q.bias_exp).argmax(1)
    assert r["predictions"] == preds.tolist()
    assert r["score"] == float((preds == task.y_test).mean())
    first = run_json(capsys, str(out), "-n", "7")
    assert first["predictions"] == preds[:7].tolist() and first["samples"] == 7


def _copy(src: Path, tmp_path: Path, name: str = "copy") -> Path:
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("which", ["series_build", "digits_build"])
def test_report_rebuilds_the_folder_byte_for_byte(which, request, tmp_path, capsys):
    out, report = request.getfixturevalue(which)
    copy = _copy(out, tmp_path)
    (copy / "report.html").unlink()
    capsys.readouterr()
    assert main(["report", str(copy)]) == 0
    printed = capsys.readouterr().out
    assert (copy / "report.json").read_bytes() == (out / "report.json").read_bytes()
    assert (copy / "report.html").read_bytes() == (out / "report.html").read_bytes()
    metric = report["metric"]
    assert f"snn_quantized  {metric:8s} {report['stages']['snn_quantized'][metric]:.4f}" in printed and "report:" in printed
    assert main(["report", str(copy), "--json"]) == 0
    assert capsys.readouterr().out == (out / "report.json").read_text()


def test_report_recomputes_what_the_network_determines(series_build, tmp_path):
    """A stale figure in report.json is replaced by the network's; what needs the source model is kept."""
    out, report = series_build
    copy = _copy(out, tmp_path)
    stale = json.loads((copy / "report.json").read_text())
    stale["stages"]["snn_quantized"]["nrmse"] = 9.0
    stale["layers"] = []
    stale["stages"]["snn_float"]["nrmse"] = 0.5
    (copy / "report.json").write_text(json.dumps(stale))
    assert main(["report", str(copy), "--quiet"]) == 0
    again = json.loads((copy / "report.json").read_text())
    assert again["stages"]["snn_quantized"]["nrmse"] == report["stages"]["snn_quantized"]["nrmse"]
    assert again["layers"] == report["layers"] and again["energy"] == report["energy"]
    assert again["stages"]["snn_float"]["nrmse"] == 0.5  # kept: the float model is not in the folder
    assert again["stages"]["snn_quantized"]["change_vs_float"] == round(report["stages"]["snn_quantized"]["nrmse"] - 0.5, 6)


@pytest.mark.lava
def test_lava_runs_a_short_stream_spike_for_spike(series_build, backend, capsys):
    out, report = series_build
    r = run_json(capsys, str(out), "--backend", "lava", "--steps", "40")
    ref = run_json(capsys, str(out), "--steps", "40")
    assert r["agreement"] == {"readout_identical": True, "spike_counts_identical": True, "spike_trains_identical": True}
    assert r["spikes_per_layer"] == ref["spikes_per_layer"] and r["steps"] == 40 and "lava" in r["platform"]
    # bit for bit, independently of the command: the Lava backend and the engine on frames made here
    frames, _ = series_frames(report, 40)
    net = ir.load(out / "network.ncnet").with_settings(timesteps=40 - DEPTH)
    lava = backend.run(net, frames, record=True)
    sim = simulate(net, torch.as_tensor(frames), record=True)
    assert np.array_equal(lava.spike_trains["hidden"], sim.spike_trains["hidden"].numpy())
    assert int(lava.spike_counts["hidden"].sum()) == r["spikes_per_layer"]["hidden"] > 0


@pytest.mark.lava
def test_lava_classifies_digits_as_the_reference(digits_build, backend, capsys):
    out, _ = digits_build
    r = run_json(capsys, str(out), "--backend", "lava", "-n", "3")
    ref = run_json(capsys, str(out), "-n", "3")
    assert all(r["agreement"].values()) and r["agreement"]["predictions"] == 1.0
    assert r["predictions"] == ref["predictions"] and r["score"] == ref["score"]
    assert r["spikes_per_layer"] == ref["spikes_per_layer"]


# -- refusals ---------------------------------------------------------------------------------------


def refuse(capsys, args: list[str]) -> str:
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.splitlines() == [err] and err.startswith("error: ") and "Traceback" not in err, err
    return err


def _edit_report(folder: Path, edit) -> None:
    r = json.loads((folder / "report.json").read_text())
    edit(r)
    (folder / "report.json").write_text(json.dumps(r))


BROKEN = {
    "unknown task": (lambda f: _edit_report(f, lambda r: r["data"].update(spec="mackey")),
                     "records task 'mackey'; accepted: lorenz, rossler, digits"),
    "other seed": (lambda f: _edit_report(f, lambda r: r["data"].update(seed=SEED + 1)), f"records seed {SEED + 1}"),
    "other length": (lambda f: _edit_report(f, lambda r: r["data"].update(series_length=L + 100)), f"over {L + 100} steps"),
    "no network": (lambda f: (f / "network.ncnet").unlink(), "is not a build folder (no network.ncnet); accepted:"),
    "no report": (lambda f: (f / "report.json").unlink(), "has no report.json, which records a recurrent build's task"),
    "not json": (lambda f: (f / "report.json").write_text("{"), "report.json is not valid JSON"),
    "not a report": (lambda f: _edit_report(f, lambda r: r.pop("kind")), "is not a recurrent build's report"),
}


@pytest.mark.parametrize("case", BROKEN)
@pytest.mark.parametrize("command", ["run", "report"])
def test_a_broken_folder_is_one_line_and_nothing_is_written(series_build, tmp_path, capsys, case, command):
    break_it, message = BROKEN[case]
    folder = _copy(series_build[0], tmp_path)
    break_it(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert message in refuse(capsys, [command, str(folder)])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no half-written report, no temporary file


def test_refused_options_and_folders(series_build, digits_build, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in ("run", "report"):
        assert "is not a build folder" in refuse(capsys, [command, str(empty)])
        assert "is not a build folder" in refuse(capsys, [command, str(tmp_path / "missing")])
    assert list(empty.iterdir()) == [] and not (tmp_path / "missing").exists()
    assert "give --steps N" in refuse(capsys, ["run", str(series_build[0]), "--samples", "3"])
    assert "give --samples N" in refuse(capsys, ["run", str(digits_build[0]), "--steps", "3"])
    assert "--steps must be a whole number ≥ 1" in refuse(capsys, ["run", str(series_build[0]), "--steps", "0"])
    assert "unknown backend 'spinnaker'" in refuse(capsys, ["run", str(series_build[0]), "--backend", "spinnaker"])
