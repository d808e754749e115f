"""A Lava run dies with the process that started it and leaves nothing behind, however that process ends.

The supervising process (``neurocompile build``) may be SIGKILLed, or get
SIGTERM/SIGHUP -- turned into an exception by the CLI's handlers (its
``finally:`` blocks run) or with the default action (they do not). In every
case the worker's process group must be gone within seconds, and with it the
``neurocompile-lava-*`` job folder and the run's ``/dev/shm/psm_*`` segments.
What a run killed together with its worker leaves is reclaimed by the next run.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lava")
psutil = pytest.importorskip("psutil")
from neurocompile_lava.runner import (  # noqa: E402
    JOB_PREFIX,
    OWNER_FILE,
    group_members,
    mapped_segments,
    segments_mapped_by,
    shm_segments,
)
from test_lava_supervision import _net  # noqa: E402

from neurocompile.owners import owner_record  # noqa: E402

pytestmark = pytest.mark.lava

STARTUP_S = 60.0  # until the worker's Lava actors run (a few seconds on an idle machine)
CLEANUP_S = 10.0  # what the issue allows from the signal to a clean machine

# The parent: a process that runs a long Lava simulation (5000 × 100 steps, ~1 min)
# and installs the CLI's handlers when asked to.
PARENT = f"""
import signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
if sys.argv[1] == "handlers":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *a: sys.exit(129))
import numpy as np
from test_lava_supervision import _net
from neurocompile_lava.backend import LavaBackend
LavaBackend().run(_net(), np.ones((5000, 100, 2), np.int64), timeout_s=300)
"""


def _segment_path(shm: shared_memory.SharedMemory) -> str:
    return f"/dev/shm/{shm.name.lstrip('/')}"


def _wait(condition, timeout_s: float, step_s: float = 0.05) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(step_s)
    return condition()


def _running_worker(parent: subprocess.Popen) -> psutil.Process:
    """The parent's worker, once some Lava actor of its group maps a segment (the simulation is under way)."""
    found: list[psutil.Process] = []

    def actors_up() -> bool:
        assert parent.poll() is None, f"the parent exited early with status {parent.returncode}"
        if not found:
            for child in psutil.Process(parent.pid).children():
                try:
                    if "neurocompile_lava.worker" in child.cmdline():
                        found.append(child)
                except psutil.NoSuchProcess:
                    pass
        return bool(found) and bool(segments_mapped_by(set(group_members(found[0].pid)) - {found[0].pid}))

    assert _wait(actors_up, STARTUP_S, 0.1), "the Lava worker never started its actors"
    return found[0]


@pytest.mark.parametrize(
    "sig, handlers",
    [
        (signal.SIGKILL, False),  # no finally: the worker cleans up after its dead parent
        (signal.SIGTERM, False),  # the default action: same as SIGKILL
        (signal.SIGTERM, True),  # the CLI's handler: run_worker's finally stops the group
        (signal.SIGHUP, True),
    ],
    ids=["SIGKILL", "SIGTERM-default", "SIGTERM-handled", "SIGHUP-handled"],
)
def test_killing_the_parent_stops_the_worker_and_leaves_nothing(sig, handlers):
    before = shm_segments()
    parent = subprocess.Popen([sys.executable, "-c", PARENT, "handlers" if handlers else "default"], stdin=subprocess.DEVNULL)
    pgid, job, ours = None, None, set()
    try:
        worker = _running_worker(parent)
        pgid = worker.pid  # the worker leads its own group
        job = Path(worker.cmdline()[-2])
        assert job.name.startswith(JOB_PREFIX) and (job / OWNER_FILE).exists()
        ours = segments_mapped_by(group_members(pgid))
        assert ours
        parent.send_signal(sig)
        assert parent.wait(timeout=CLEANUP_S) == (128 + sig if handlers else -sig)
        _wait(lambda: not group_members(pgid) and not job.exists() and not ours & shm_segments(), CLEANUP_S)
        alive, folder_left, segments_left = group_members(pgid), job.exists(), ours & shm_segments()
        leaked = shm_segments() - before - mapped_segments()
    finally:  # whatever the outcome, leave the machine clean for the next test
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if pgid is not None and group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)
            _wait(lambda: not group_members(pgid), CLEANUP_S)
        if job is not None:
            shutil.rmtree(job, ignore_errors=True)
        for path in ours & shm_segments() - mapped_segments():
            os.unlink(path)
    assert alive == [], f"the worker's group is still alive {CLEANUP_S:.0f} s after {sig.name}"
    assert not folder_left, f"the job folder is still there {CLEANUP_S:.0f} s after {sig.name}"
    assert segments_left == set()
    assert leaked == set()


def test_a_worker_whose_parent_is_already_gone_cleans_up_and_exits(tmp_path):
    """The race before ``PR_SET_PDEATHSIG`` takes effect: the worker is not the child of the pid it was given."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    job = Path(tempfile.mkdtemp(prefix=JOB_PREFIX))
    try:
        (job / OWNER_FILE).write_text(json.dumps(owner_record(dead.pid)))
        worker = subprocess.run([sys.executable, "-m", "neurocompile_lava.worker", str(job), str(dead.pid)], timeout=30)
        assert worker.returncode == 128 + signal.SIGHUP
        assert not job.exists()
    finally:
        shutil.rmtree(job, ignore_errors=True)


def test_the_next_run_reclaims_what_dead_runs_left_and_nothing_else(backend):
    tmp = Path(tempfile.gettempdir())
    dead_proc = subprocess.Popen(["sleep", "30"])
    dead_owner = owner_record(dead_proc.pid)
    dead_proc.kill()
    dead_proc.wait()
    reused = dict(owner_record(), start=(owner_record()["start"] or 0) + 1)  # our pid, another process's start time

    def job_dir(owner) -> Path:
        d = Path(tempfile.mkdtemp(prefix=JOB_PREFIX, dir=tmp))
        (d / "frames.npy").write_bytes(b"x" * 1000)
        if owner is not None:
            (d / OWNER_FILE).write_text(json.dumps(owner))
        return d

    stale, pid_reused, live, ownerless = job_dir(dead_owner), job_dir(reused), job_dir(owner_record()), job_dir(None)

    old = time.time() - 60
    garbage = shared_memory.SharedMemory(create=True, size=64)  # unmapped and old: what a killed run leaves
    garbage.close()
    os.utime(_segment_path(garbage), (old, old))
    fresh = shared_memory.SharedMemory(create=True, size=64)  # unmapped but new: maybe being created right now
    fresh.close()
    in_use = shared_memory.SharedMemory(create=True, size=64)  # old but mapped: someone's live segment
    os.utime(_segment_path(in_use), (old, old))
    try:
        backend.run(_net(), np.ones((1, 4, 2), np.int64), timeout_s=60)
        assert not stale.exists() and not pid_reused.exists()
        assert live.exists() and ownerless.exists()
        assert not os.path.exists(_segment_path(garbage))
        assert os.path.exists(_segment_path(fresh)) and os.path.exists(_segment_path(in_use))
    finally:
        for d in (stale, pid_reused, live, ownerless):
            shutil.rmtree(d, ignore_errors=True)
        for shm in (garbage, fresh):
            try:
                shm.unlink()
            except FileNotFoundError:
                resource_tracker.unregister(shm._name, "shared_memory")  # already unlinked by the reclaim
        in_use.close()
        in_use.unlink()
