"""Issue 7: bad input, faults and interruptions -- one line, non-zero exit, nothing half-written, no user file touched.

Every case runs the real command (``main`` in-process, or the console script in
a subprocess where a signal is involved) and checks what is on disk afterwards.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from nc_testutils import export_pt2

from neurocompile.cli import main
from neurocompile.outputs import MANIFEST

FAST = ["--lava-samples", "0", "--sweep", "", "-T", "8"]
EXE = str(Path(sys.executable).with_name("neurocompile"))


def refuse(capsys, args: list[str], code: int = 2) -> str:
    got = main(args)
    err = capsys.readouterr().err.strip()
    assert got == code, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == err.splitlines()[-1:] and "Traceback" not in err, err
    return errors[0]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}"))


# -- 2. outputs: never destroy what a build did not write ----------------------------------------
def test_a_folder_holding_network_ncnet_and_user_files_is_not_wiped(tmp_path, trained_mlp, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "network.ncnet").write_bytes(b"looks like a build")
    (out / "thesis.tex").write_text("precious")
    before = tree(out)
    msg = refuse(capsys, ["build", trained_mlp[0], "-o", str(out), *FAST])
    assert "did not write" in msg and tree(out) == before and siblings(out) == []


def test_inputs_inside_the_output_folder_are_refused_and_kept(tmp_path, trained_mlp, capsys, digits):
    out = tmp_path / "b"
    assert main(["build", trained_mlp[0], "-o", str(out), *FAST]) == 0, capsys.readouterr().err
    model = out / "model.pt2"  # the user moves the model into a previous build
    shutil.copy(trained_mlp[0], model)
    before = tree(out)
    msg = refuse(capsys, ["build", str(model), "-o", str(out), *FAST])
    assert "input" in msg and tree(out) == before
    data = out / "d.npz"
    model.unlink()
    np.savez(data, x_train=digits.x_train, y_train=digits.y_train, x_test=digits.x_test, y_test=digits.y_test)
    msg = refuse(capsys, ["build", trained_mlp[0], "--data", str(data), "-o", str(out), *FAST])
    assert "input" in msg and data.exists()


def test_a_previous_build_is_replaced_whole_and_its_manifest_lists_every_file(tmp_path, trained_mlp, capsys):
    out = tmp_path / "b"
    for _ in range(2):
        assert main(["build", trained_mlp[0], "-o", str(out), *FAST]) == 0, capsys.readouterr().err
    listed = json.loads((out / MANIFEST).read_text())["files"]
    assert sorted(listed) == sorted(p for p in tree(out) if p != MANIFEST) == ["network.ncnet", "report.html", "report.json", "timings.json"]
    assert siblings(out) == []
    mode = out.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask  # not mkdtemp's 0700


def test_pass_commands_never_overwrite_their_input_or_a_foreign_file(tmp_path, trained_mlp, capsys):
    model = tmp_path / "v.pt2"
    shutil.copy(trained_mlp[0], model)
    before = model.read_bytes()
    msg = refuse(capsys, ["ingest", str(model), "-o", str(model)])
    assert "input" in msg and model.read_bytes() == before
    notes = tmp_path / "notes.ncnet"
    notes.write_text("not an artifact")
    msg = refuse(capsys, ["ingest", str(model), "-o", str(notes)])
    assert "not a neurocompile network artifact" in msg and notes.read_text() == "not an artifact"
    ir_file = tmp_path / "m.ncnet"
    assert main(["ingest", str(model), "-o", str(ir_file)]) == 0
    assert main(["ingest", str(model), "-o", str(ir_file)]) == 0  # an artifact may be replaced
    capsys.readouterr()
    snn = tmp_path / "s.ncnet"
    msg = refuse(capsys, ["convert", str(ir_file), "-o", str(ir_file), "-T", "8"])
    assert "input" in msg
    assert main(["convert", str(ir_file), "-o", str(snn), "-T", "8"]) == 0
    capsys.readouterr()
    msg = refuse(capsys, ["quantize", str(snn), "--target", "cmos45_int8", "-o", str(tmp_path / "q.ncnet")])
    assert "not a chip" in msg and not (tmp_path / "q.ncnet").exists()
    msg = refuse(capsys, ["map", str(snn)])
    assert "not quantised" in msg
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_unwritable_destinations_fail_before_any_compute(tmp_path, trained_mlp, capsys, monkeypatch):
    import neurocompile.pipeline as pipeline

    called = []
    monkeypatch.setattr(pipeline, "convert", lambda *a, **k: called.append(1))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    msg = refuse(capsys, ["build", trained_mlp[0], "-o", str(blocker / "out"), *FAST])
    assert "is a file" in msg and not called
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        msg = refuse(capsys, ["build", trained_mlp[0], "-o", str(ro / "out"), *FAST])
        assert "permission denied" in msg and not called
        ro.chmod(0o700)


def test_a_full_disk_during_the_final_write_leaves_nothing(tmp_path, trained_mlp, capsys, monkeypatch):
    import neurocompile.pipeline as pipeline

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "b" / "report.html"))

    monkeypatch.setattr(pipeline, "render_html", full)
    out = tmp_path / "b"
    msg = refuse(capsys, ["build", trained_mlp[0], "-o", str(out), *FAST])
    assert "no space left" in msg and not out.exists() and siblings(out) == []


# -- 3. interruption: signals unwind, SIGKILL leftovers are reclaimed ---------------------------
def _start_build(model: str, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([EXE, "build", model, "-o", str(out), "--lava-samples", "0", "--backend", "none", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(pred, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_compute_unwinds_and_leaves_nothing(tmp_path, trained_mlp, sig):
    out = tmp_path / "b"
    proc = _start_build(trained_mlp[0], out, "-T", "256", "--sweep", "256,512,1024")
    assert _wait_for(lambda: siblings(out) != []), proc.communicate()  # the temporary folder exists: compute has started
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: "), err
    assert not out.exists() and siblings(out) == []


def test_sigkill_leftovers_are_reclaimed_by_the_next_build(tmp_path, trained_mlp, capsys):
    out = tmp_path / "b"
    proc = _start_build(trained_mlp[0], out, "-T", "256", "--sweep", "256,512,1024")
    assert _wait_for(lambda: siblings(out) != []), proc.communicate()
    proc.kill()
    proc.wait()
    assert siblings(out) != []  # SIGKILL cannot clean up ...
    assert main(["build", trained_mlp[0], "-o", str(out), *FAST]) == 0, capsys.readouterr().err
    assert siblings(out) == [] and (out / MANIFEST).exists()  # ... the next build does


def test_a_live_builds_temporary_folder_is_left_alone(tmp_path, trained_mlp, capsys):
    out = tmp_path / "b"
    proc = _start_build(trained_mlp[0], out, "-T", "256", "--sweep", "256,512,1024")
    try:
        assert _wait_for(lambda: siblings(out) != [])
        live = siblings(out)
        other = tmp_path / "other" / "b"  # a build beside a sibling: reclaims in its own parent only
        assert main(["build", trained_mlp[0], "-o", str(out.parent / "c"), *FAST]) == 0, capsys.readouterr().err
        from neurocompile.outputs import _reclaim

        assert proc.poll() is None, "the long build ended before the check"
        _reclaim(out.parent, out.name)  # what the next build of OUT does first
        assert set(live) <= set(siblings(out)), "a live build's temporary folder was removed"
        assert not other.exists()
    finally:
        proc.kill()
        proc.wait()


# -- 4. validation up front: one line before any compute ------------------------------------------
@pytest.mark.parametrize(
    "args, needle",
    [
        (["--seed", "-1"], "seed"),
        (["--seed", str(2**32)], "seed"),
        (["-T", "0"], "--timesteps"),
        (["-T", "1000000"], "--timesteps"),
        (["--sweep", "8,100000"], "--sweep"),
        (["--lava-samples", "-3"], "--lava-samples"),
        (["--data", "/dev/zero"], "data"),
    ],
)
def test_bad_options_are_refused_before_compute(tmp_path, trained_mlp, capsys, monkeypatch, args, needle):
    import neurocompile.pipeline as pipeline

    monkeypatch.setattr(pipeline, "ingest_program", lambda *a, **k: pytest.fail("loaded the model before validating options"))
    t0 = time.perf_counter()
    msg = refuse(capsys, ["build", trained_mlp[0], "-o", str(tmp_path / "o"), "--lava-samples", "0", "--sweep", "8", *args])
    assert needle in msg and time.perf_counter() - t0 < 10 and not (tmp_path / "o").exists()


def test_a_profile_with_zero_cores_is_refused(tmp_path, trained_mlp, capsys, monkeypatch):
    from neurocompile.profiles import profiles_dir

    folder = tmp_path / "profiles"
    shutil.copytree(profiles_dir(), folder)
    text = (folder / "loihi2.toml").read_text()
    start = text.index("[limits.cores]")
    value = text.index("value", start)
    end = text.index("\n", value)
    (folder / "loihi2.toml").write_text(text[:value] + "value = 0" + text[end:])
    monkeypatch.setenv("NEUROCOMPILE_PROFILES", str(folder))
    msg = refuse(capsys, ["build", trained_mlp[0], "-o", str(tmp_path / "o"), *FAST])
    assert "limits.cores" in msg and "≥ 1" in msg


def test_an_internal_error_is_one_line_unless_debug(tmp_path, trained_mlp, capsys, monkeypatch):
    import neurocompile.pipeline as pipeline

    def bug(*a, **k):
        raise ValueError("something impossible\nsecond line")

    monkeypatch.setattr(pipeline, "convert", bug)
    out = tmp_path / "o"
    msg = refuse(capsys, ["build", trained_mlp[0], "-o", str(out), *FAST], code=1)
    assert "internal error (ValueError: something impossible)" in msg and "--debug" in msg
    assert not out.exists() and siblings(out) == []
    assert main(["--debug", "build", trained_mlp[0], "-o", str(out), *FAST]) == 1
    assert "Traceback" in capsys.readouterr().err


# -- 5. wrong results without a word ------------------------------------------------------------
def _digits_model(tmp_path: Path, outputs: int, zero: bool = False) -> str:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, outputs))
    if zero:
        for p in m.parameters():
            p.data.zero_()
    return export_pt2(m, tmp_path / f"m{outputs}{'z' if zero else ''}.pt2", (1, 8, 8))


def test_outputs_and_classes_must_agree(tmp_path, capsys, digits, trained_mlp):
    msg = refuse(capsys, ["build", _digits_model(tmp_path, 1), "-o", str(tmp_path / "a"), *FAST])
    assert "1 output" in msg
    msg = refuse(capsys, ["build", _digits_model(tmp_path, 10, zero=True), "-o", str(tmp_path / "z"), *FAST])
    assert "same output for every test sample" in msg
    labels = tmp_path / "labels.npz"
    np.savez(labels, x_train=digits.x_train, y_train=digits.y_train * 11, x_test=digits.x_test, y_test=digits.y_test * 11)
    msg = refuse(capsys, ["build", trained_mlp[0], "--data", str(labels), "-o", str(tmp_path / "l"), *FAST])
    assert "labels go up to 99" in msg and "10 outputs" in msg
    out = tmp_path / "w"
    assert main(["build", _digits_model(tmp_path, 100), "-o", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    notes = json.loads((out / "report.json").read_text())["notes"]
    assert "100 outputs but the data has only 10 classes" in err and any("100 outputs" in n for n in notes)
    assert any("chance level" in n for n in notes)  # the untrained 100-way model is near 10 % as well


# -- determinism and the data path --------------------------------------------------------------
def test_builds_are_byte_identical_and_an_upper_case_npz_is_recorded_absolutely(tmp_path, trained_mlp, capsys, digits, monkeypatch):
    data = tmp_path / "D.NPZ"
    with open(data, "wb") as f:  # np.savez would append ".npz" to a name ending in ".NPZ"
        np.savez(f, x_train=digits.x_train, y_train=digits.y_train, x_test=digits.x_test, y_test=digits.y_test)
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.chdir(tmp_path)
    for out in (a, b):
        assert main(["build", trained_mlp[0], "--data", "D.NPZ", "-o", str(out), "--backend", "reference",
                     "--lava-samples", "5", "--sweep", "4,8", "-T", "8", "--encoding", "rate"]) == 0, capsys.readouterr().err
    ta, tb = tree(a), tree(b)
    assert ta.keys() == tb.keys()
    for name in ("report.json", "report.html", "network.ncnet", MANIFEST):
        assert ta[name] == tb[name], name
    assert json.loads(ta["report.json"])["stages"]["reference_cross_check"]["samples"] == 5
    monkeypatch.chdir("/")
    capsys.readouterr()
    assert main(["run", str(a), "--samples", "3", "--json"]) == 0, capsys.readouterr().err


@pytest.mark.lava
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_the_cli_during_the_lava_stage_leaves_no_process_folder_or_segment(tmp_path, trained_mlp, sig):
    pytest.importorskip("lava")
    psutil = pytest.importorskip("psutil")
    import tempfile

    from neurocompile_lava.runner import JOB_PREFIX, mapped_segments, shm_segments

    jobs_before = set(Path(tempfile.gettempdir()).glob(JOB_PREFIX + "*"))
    pymp_before = set(Path(tempfile.gettempdir()).glob("pymp-*"))
    shm_before = shm_segments()
    out = tmp_path / "b"
    proc = subprocess.Popen([EXE, "build", trained_mlp[0], "-o", str(out), "--backend", "lava", "--lava-samples", "300",
                             "--sweep", "", "-T", "16"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def lava_job():
        return [j for j in Path(tempfile.gettempdir()).glob(JOB_PREFIX + "*") if j not in jobs_before]

    def workers():
        return [p for p in psutil.process_iter(["cmdline"]) if any(str(j) in " ".join(p.info["cmdline"] or []) for j in jobs)]

    try:
        assert _wait_for(lambda: lava_job() and shm_segments() - shm_before, timeout=120), "the Lava stage never started"
        jobs = lava_job()
        assert workers()
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert _wait_for(lambda: not workers() and not lava_job(), timeout=15), "worker processes or job folder left"
        assert _wait_for(lambda: not (shm_segments() - shm_before - mapped_segments()), timeout=10), "segments left"
        assert not out.exists()
        assert not set(Path(tempfile.gettempdir()).glob("pymp-*")) - pymp_before  # multiprocessing's sockets went with the job
        if sig != signal.SIGKILL:
            assert siblings(out) == [] and "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()


# -- cases a new user's session found --------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_half_and_double_models_build(tmp_path, trained_mlp, capsys, dtype):
    module = trained_mlp[1]
    import copy

    m = copy.deepcopy(module).to(dtype)
    path = tmp_path / f"m-{dtype}.pt2"
    torch.export.save(torch.export.export(m.eval(), (torch.zeros(1, 1, 8, 8, dtype=dtype),)), str(path))
    out = tmp_path / "b"
    assert main(["build", str(path), "-o", str(out), *FAST]) == 0, capsys.readouterr().err
    assert json.loads((out / "report.json").read_text())["stages"]["ann"]["accuracy"] > 0.8


def test_an_artifact_asking_for_absurd_time_steps_is_refused(tmp_path, trained_mlp, capsys):
    from neurocompile import ir

    out = tmp_path / "b"
    assert main(["build", trained_mlp[0], "-o", str(out), *FAST]) == 0
    capsys.readouterr()
    net = ir.load(out / "network.ncnet")
    ir.save(net.with_settings(timesteps=10**9), out / "network.ncnet")
    t0 = time.perf_counter()
    msg = refuse(capsys, ["run", str(out), "-n", "5"])
    assert "timesteps" in msg and time.perf_counter() - t0 < 10


@pytest.mark.parametrize("args", [["build", "m.pt2", "--seed", "abc"], ["frobnicate"], ["build"], ["build", "m.pt2", "-T", "8.5"]])
def test_usage_errors_are_one_line(capsys, args):
    msg = refuse(capsys, args)
    assert "--help" in msg


def test_an_unknown_backend_is_refused_even_without_samples(tmp_path, trained_mlp, capsys):
    msg = refuse(capsys, ["build", trained_mlp[0], "-o", str(tmp_path / "o"), "--backend", "gpu", "--lava-samples", "0"])
    assert "gpu" in msg and "reference" in msg


def test_passes_in_the_wrong_order_name_the_missing_step(tmp_path, trained_mlp, capsys):
    ann = tmp_path / "a.ncnet"
    assert main(["ingest", trained_mlp[0], "-o", str(ann)]) == 0
    snn = tmp_path / "s.ncnet"
    assert main(["convert", str(ann), "-o", str(snn), "-T", "8"]) == 0
    capsys.readouterr()
    assert "quantize needs a converted spiking network (or one ingested as spiking, e.g. an RSNN); run `neurocompile convert` first" in refuse(
        capsys, ["quantize", str(ann), "-o", str(tmp_path / "q.ncnet")])
    assert "convert needs an ANN that is not converted yet" in refuse(capsys, ["convert", str(snn), "-o", str(tmp_path / "c.ncnet")])
    from neurocompile.passes.convert import convert
    from neurocompile.passes.quantize import quantize

    assert [p.need for p in quantize.preconditions] == ["a converted spiking network (or one ingested as spiking, e.g. an RSNN)"] and convert.preconditions


def test_folders_links_and_manifestless_content_are_strangers(tmp_path, trained_mlp, capsys):
    out = tmp_path / "b"
    out.mkdir()
    (out / "empty").mkdir()
    (tmp_path / "data").mkdir()
    (out / "link").symlink_to(tmp_path / "data")
    msg = refuse(capsys, ["build", trained_mlp[0], "-o", str(out), *FAST])
    assert "did not write" in msg and (out / "link").is_symlink() and (out / "empty").is_dir()
    (out / "empty").rmdir()
    (out / "link").unlink()
    (out / MANIFEST).write_text('{"files": ["../data", "report.json"]}')  # a manifest cannot claim what is outside
    (out / "report.json").mkdir()  # ... nor a folder under a file's name
    msg = refuse(capsys, ["build", trained_mlp[0], "-o", str(out), *FAST])
    assert "did not write (report.json)" in msg


def test_a_signal_during_the_commit_waits_until_the_new_build_is_in_place(tmp_path, trained_mlp, capsys, monkeypatch):
    out = tmp_path / "b"
    assert main(["build", trained_mlp[0], "-o", str(out), *FAST]) == 0
    real_rename = Path.rename

    def rename_then_signal(self, target):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives between the two renames of the commit
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename_then_signal)
    code = main(["build", trained_mlp[0], "-o", str(out), *FAST, "--seed", "1"])
    monkeypatch.setattr(Path, "rename", real_rename)
    assert code == 128 + signal.SIGTERM
    assert json.loads((out / "report.json").read_text())["data"]["seed"] == 1  # the new build, whole
    assert siblings(out) == [] and sorted(json.loads((out / MANIFEST).read_text())["files"]) == sorted(
        p for p in tree(out) if p != MANIFEST)


def test_a_build_killed_between_the_renames_is_put_back(tmp_path, trained_mlp, capsys):
    from neurocompile.outputs import BuildFolder, OWNER

    out = tmp_path / "b"
    assert main(["build", trained_mlp[0], "-o", str(out), *FAST]) == 0
    before = tree(out)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    from neurocompile.owners import owner_record

    old = tmp_path / ".b.nc-old-1-dead"
    out.rename(old)  # what a SIGKILL between the two renames leaves
    (old / OWNER).write_text(json.dumps(owner_record(int(dead.stdout))))
    BuildFolder(out).discard()  # the next build starts (and fails)
    assert tree(out) == before and siblings(out) == []
