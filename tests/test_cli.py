"""The command line end to end: a real build, and every refusal as a user sees it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from nc_testutils import export_pt2

from neurocompile.cli import main


def refuse(capsys, args: list[str], out: Path | None = None) -> str:
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = err.splitlines()
    # progress lines may come first; the error is one line, the last, and there is no traceback
    assert [l for l in lines if l.startswith("error: ")] == lines[-1:] and "Traceback" not in err, err
    if out is not None:
        assert not out.exists() and not list(out.parent.glob(f".{out.name}*")), "half-written output left behind"
    return lines[-1]


def test_build_with_reference_backend_and_run(tmp_path, trained_mlp, capsys):
    out = tmp_path / "build"
    code = main(["build", trained_mlp[0], "--data", "digits", "-o", str(out), "--backend", "reference", "--lava-samples", "10", "--sweep", "8,32"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    st = report["stages"]
    assert set(st) == {"ann", "snn_float", "snn_quantized", "reference_cross_check"}
    assert st["snn_float"]["accuracy"] >= st["ann"]["accuracy"] - 0.02
    assert abs(st["snn_quantized"]["accuracy"] - st["snn_float"]["accuracy"]) <= 0.02
    check = st["reference_cross_check"]
    # the cross-check re-encodes its samples itself: same seeds, same frames, same result as the full-set stage
    assert check["samples"] == 10 and check["accuracy"] == check["snn_quantized_accuracy_same_samples"]
    assert check["agreement"] == {"predictions": 1.0, "readout_identical": True, "spike_counts_identical": True}
    assert report["model"]["sha256"] and report["energy"].keys() >= {"loihi", "loihi2", "cmos45_fp32", "cmos45_int8"}
    assert [l["name"] for l in report["layers"]][-1] == "output"
    assert "<img" in (out / "report.html").read_text()
    capsys.readouterr()
    assert main(["run", str(out), "--backend", "reference", "--samples", "30", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert len(r["predictions"]) == 30 and 0.8 <= r["accuracy"] <= 1.0
    assert set(r["spikes_per_layer"]) == {l["name"] for l in report["layers"] if l["kind"] == "spiking"}
    # --steps cuts a recurrent build's series; a feed-forward build says so in one line
    assert "is a feed-forward build: give --samples N" in refuse(capsys, ["run", str(out), "--steps", "5"])
    # report re-renders the folder and prints the build's summary
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"snn_quantized  accuracy {st['snn_quantized']['accuracy']:.4f} on" in printed and "report:" in printed
    assert json.loads((out / "report.json").read_text())["stages"] == st


def test_refusals(tmp_path, capsys, trained_mlp):
    out = tmp_path / "out"
    model = trained_mlp[0]
    m = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10)).eval()
    torch.save(m, tmp_path / "pickle.pt")
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    mp = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32, 10))
    export_pt2(mp, tmp_path / "maxpool.pt2", (1, 8, 8))
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((3, 64)))
    cases = {
        "pickle": ([str(tmp_path / "pickle.pt")], "--trust-pickle"),
        "state_dict": ([str(tmp_path / "sd.pt")], "architecture"),
        "maxpool": ([str(tmp_path / "maxpool.pt2")], "max_pool2d"),
        "missing": ([str(tmp_path / "nope.pt2")], "does not exist"),
        "target": ([model, "--target", "truenorth9"], "loihi2"),
        "data": ([model, "--data", "cifar"], "digits"),
        "npz": ([model, "--data", str(tmp_path / "bad.npz")], "y_train"),
        "backend": ([model, "--backend", "spinnaker"], "reference"),
        "sweep": ([model, "--sweep", "8,x"], "--sweep"),
    }
    for name, (args, needle) in cases.items():
        msg = refuse(capsys, ["build", *args, "-o", str(out), "--sweep", "8"] if name != "sweep" else ["build", *args, "-o", str(out)], out)
        assert needle in msg, (name, msg)


def test_trusted_pickle_builds(tmp_path, capsys):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    torch.save(m, tmp_path / "m.pt")
    out = tmp_path / "b"
    code = main(["build", str(tmp_path / "m.pt"), "--trust-pickle", "-o", str(out), "--lava-samples", "0", "--sweep", ""])
    assert code == 0, capsys.readouterr().err
    assert (out / "report.json").exists()


def test_console_script_prints_one_line_and_exits_2(tmp_path):
    exe = Path(sys.executable).with_name("neurocompile")
    r = subprocess.run([str(exe), "build", str(tmp_path / "missing.pt2"), "-o", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "does not exist" in r.stderr
    r = subprocess.run([str(exe), "build", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Example" in r.stdout and "--timesteps" in r.stdout


def test_profiles_command(capsys):
    assert main(["profiles"]) == 0
    text = capsys.readouterr().out
    assert "loihi2" in text and "cmos45_int8" in text


def test_auto_backend_skips_the_lava_stage_with_a_note_when_lava_is_missing(tmp_path, trained_mlp, monkeypatch, capsys):
    import neurocompile.pipeline as pipeline
    from neurocompile.errors import NeurocompileError

    def no_lava(name):
        if name == "lava":
            raise NeurocompileError("unknown backend 'lava'; installed backends: reference")
        return real(name)

    real = pipeline.get_backend
    monkeypatch.setattr(pipeline, "get_backend", no_lava)
    out = tmp_path / "b"
    assert main(["build", trained_mlp[0], "-o", str(out), "--sweep", ""]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert "lava" not in report["stages"] and any("lava stage skipped" in n for n in report["notes"])
    assert main(["build", trained_mlp[0], "-o", str(tmp_path / "c"), "--backend", "lava", "--sweep", ""]) == 2


def test_a_failure_while_writing_leaves_no_output_and_keeps_the_old_one(tmp_path, trained_mlp, monkeypatch, capsys):
    import neurocompile.pipeline as pipeline
    from neurocompile.errors import NeurocompileError

    out = tmp_path / "b"
    out.mkdir()
    (out / "report.json").write_text('{"old": true}')
    (out / "network.ncnet").write_text("a previous build")
    (out / ".neurocompile-manifest.json").write_text('{"files": ["network.ncnet", "report.json"]}')

    def broken(report):
        raise NeurocompileError("disk full while rendering")

    monkeypatch.setattr(pipeline, "render_html", broken)
    assert main(["build", trained_mlp[0], "-o", str(out), "--lava-samples", "0", "--sweep", ""]) == 2
    assert "disk full" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temporary folders left behind
    assert json.loads((out / "report.json").read_text()) == {"old": True}  # the previous build is untouched


def test_output_folders_that_are_not_builds_are_never_replaced(tmp_path, trained_mlp, capsys, monkeypatch):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.txt").write_text("precious")
    msg = refuse(capsys, ["build", trained_mlp[0], "-o", str(victim), "--lava-samples", "0", "--sweep", ""])
    assert "did not write (notes.txt)" in msg and (victim / "notes.txt").read_text() == "precious"
    monkeypatch.chdir(victim)
    msg = refuse(capsys, ["build", trained_mlp[0], "-o", ".", "--lava-samples", "0", "--sweep", ""])
    assert "current folder" in msg and sorted(p.name for p in victim.iterdir()) == ["notes.txt"]


def test_an_ann_baseline_is_not_a_build_target(capsys, trained_mlp, tmp_path):
    msg = refuse(capsys, ["build", trained_mlp[0], "--target", "cmos45_int8", "-o", str(tmp_path / "o")], tmp_path / "o")
    assert "loihi2" in msg and "not a chip" in msg


def test_build_json_is_one_report_on_stdout_and_nothing_on_stderr(tmp_path, capfd):
    """For scripts: --json prints report.json (the same bytes as the file) and the build is quiet."""
    mlp = Path(__file__).parent / "golden" / "mlp.pt2"
    out = tmp_path / "b"
    capfd.readouterr()
    assert main(["build", str(mlp), "--data", "digits", "-T", "8", "--sweep", "4", "--lava-samples", "0", "--json", "-o", str(out)]) == 0
    got = capfd.readouterr()
    assert got.err == ""
    assert json.loads(got.out)["stages"]["snn_quantized"]["accuracy"] > 0.8
    assert got.out == (out / "report.json").read_text()
