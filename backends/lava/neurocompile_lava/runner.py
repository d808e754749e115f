"""Supervise one Lava simulation in its own subprocess and leave nothing behind.

Lava 0.10 forks an actor per process plus a shared-memory manager, and a
failing ProcessModel can leave all of them (and ``/dev/shm/psm_*`` segments)
behind, or hang ``run()``/``stop()`` forever (LAVA.md, "Failures"). The one
pattern measured to be reliable is used here: the worker
(:mod:`neurocompile_lava.worker`) runs in a new session, so it and every actor
it forks share one process group; when it ends -- normally, by error or by
the wall-clock limit -- the group gets SIGTERM, SIGKILL after a grace period,
and shared-memory segments that appeared meanwhile and that no live process
maps any more are unlinked.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from neurocompile.errors import NeurocompileError

SHM_GLOB = "/dev/shm/psm_*"  # multiprocessing.shared_memory's default name prefix
GRACE_S = 2.0


def shm_segments() -> set[str]:
    return set(glob.glob(SHM_GLOB))


def mapped_segments() -> set[str]:
    """Shared-memory files some live process still maps (so they belong to someone)."""
    mapped: set[str] = set()
    for maps in glob.glob("/proc/[0-9]*/maps"):
        try:
            with open(maps) as f:
                mapped.update(line.split(None, 5)[5].strip() for line in f if "/dev/shm/psm_" in line)
        except (OSError, IndexError):
            continue
    return mapped


def remove_leaked_segments(before: set[str]) -> list[str]:
    """Unlink segments created since ``before`` that no process maps; returns what was removed.

    Checking the mappings keeps a concurrent Lava run (another test, another
    user) from losing its live segments.
    """
    removed = []
    new = shm_segments() - before
    if not new:
        return removed
    in_use = mapped_segments()
    for path in sorted(new - in_use):
        try:
            os.unlink(path)
            removed.append(path)
        except OSError:  # gone already, or another user's segment in the sticky /dev/shm
            pass
    return removed


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``, read from /proc.

    ``killpg(pgid, 0)`` is not enough: it also succeeds for zombies, which a
    container's init may never reap. Without /proc (macOS) it is the fallback,
    reporting the group leader's id for a group that still exists.
    """
    if not os.path.isdir("/proc"):
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    pids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            pids.append(int(stat.split("/")[2]))
    return pids


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate_group(proc: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM the worker's process group, SIGKILL what is left after ``grace_s``, reap the worker."""
    pgid = proc.pid  # start_new_session=True: the worker leads its own group
    if group_members(pgid):
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while group_members(pgid) and time.monotonic() < deadline:
            proc.poll()  # reap the worker as soon as it exits
            time.sleep(0.02)
        if group_members(pgid):
            _signal_group(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while group_members(pgid) and time.monotonic() < deadline:
                proc.poll()
                time.sleep(0.02)
    proc.wait()


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def run_worker(job_dir: Path, timeout_s: float, on_start: Optional[Callable[[int], None]] = None) -> dict:
    """Run ``python -m neurocompile_lava.worker job_dir`` under a wall-clock limit.

    Returns the worker's ``result.json``. Raises :class:`NeurocompileError`
    with a one-line cause on timeout or failure. ``on_start`` receives the
    worker's pid (= its process group id), e.g. for tests that check cleanup.
    """
    before = shm_segments()
    log = job_dir / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "neurocompile_lava.worker", str(job_dir)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    timed_out = False
    try:
        if on_start is not None:
            on_start(proc.pid)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
    finally:  # also on KeyboardInterrupt in the caller
        terminate_group(proc)
        remove_leaked_segments(before)
    if timed_out:
        raise NeurocompileError(f"the Lava run exceeded its wall-clock limit of {timeout_s:.0f} s and was stopped (pass a larger timeout_s)")
    error = job_dir / "error.json"
    if error.exists():
        raise NeurocompileError(json.loads(error.read_text())["cause"])
    result = job_dir / "result.json"
    if proc.returncode != 0 or not result.exists():
        raise NeurocompileError(f"the Lava worker exited with status {proc.returncode}: {_last_line(log) or 'no output'}")
    return json.loads(result.read_text())
