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

The supervising process itself may die without running any ``finally:``
(SIGKILL, or SIGTERM/SIGHUP with the default action). Three things keep that
from leaking a busy worker group, a job folder of up to a few hundred MB and
``psm_*`` segments:

* the worker dies with its parent: it gets ``PR_SET_PDEATHSIG`` and watches
  its parent pid, and when the parent is gone it kills its own group, unlinks
  the segments of its run and removes the job folder (see
  :mod:`neurocompile_lava.worker`);
* every job folder (:func:`job_directory`) names its owner (pid, start time,
  boot id), and each new run removes ``neurocompile-lava-*`` folders of ours
  whose owner is dead -- what is left if the worker died with the parent;
* each new run unlinks our ``psm_*`` segments that no live process maps and
  that are older than a few seconds (:func:`reclaim_stale_segments`).
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator, Optional

from neurocompile.errors import NeurocompileError
from neurocompile.owners import abandoned, write_owner

SHM_GLOB = "/dev/shm/psm_*"  # multiprocessing.shared_memory's default name prefix
GRACE_S = 2.0
JOB_PREFIX = "neurocompile-lava-"
OWNER_FILE = "owner.json"
STALE_SEGMENT_AGE_S = 5.0  # an unmapped segment younger than this may be being created right now


def shm_segments() -> set[str]:
    return set(glob.glob(SHM_GLOB))


def _maps_of(pid: int | str) -> set[str]:
    try:
        with open(f"/proc/{pid}/maps") as f:
            return {line.split(None, 5)[5].strip() for line in f if "/dev/shm/psm_" in line}
    except (OSError, IndexError):  # gone, or not ours to read
        return set()


def mapped_segments(exclude: Iterable[int] = ()) -> set[str]:
    """Shared-memory files some live process (other than ``exclude``) still maps (so they belong to someone)."""
    skip = {str(pid) for pid in exclude}
    mapped: set[str] = set()
    for maps in glob.glob("/proc/[0-9]*/maps"):
        pid = maps.split("/")[2]
        if pid not in skip:
            mapped |= _maps_of(pid)
    return mapped


def segments_mapped_by(pids: Iterable[int]) -> set[str]:
    """Shared-memory files mapped by ``pids`` (e.g. a worker's group: those segments are its run's)."""
    found: set[str] = set()
    for pid in pids:
        found |= _maps_of(pid)
    return found


def reclaim_stale_segments(min_age_s: float = STALE_SEGMENT_AGE_S) -> list[str]:
    """Unlink our uid's ``psm_*`` segments that no live process maps and that are older than ``min_age_s``.

    What a run killed together with its supervisor leaves (nothing is left to
    unlink them). A segment that no process maps has been closed by all its
    users; Lava keeps its segments mapped while it uses them, so we treat it as
    garbage (another program of our uid that closes a ``psm_*`` segment and
    re-attaches it by name seconds later would lose it). The age
    margin (by mtime, which creation and ``ftruncate`` set) spares one that
    another process is creating right now, between ``shm_open`` and ``mmap``.
    Other users' segments are left alone.
    """
    now, uid = time.time(), os.getuid()
    candidates = []
    for path in shm_segments():
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_uid == uid and now - st.st_mtime >= min_age_s:
            candidates.append(path)
    return unlink_unmapped(candidates)


def reclaim_stale_job_dirs(tmp: Optional[str] = None) -> list[Path]:
    """Remove our uid's ``neurocompile-lava-*`` folders in the temp dir whose owner process is dead.

    Left when a supervising process was SIGKILLed before its ``finally:``
    and its worker could not clean up either. Folders without a readable owner
    record are kept: a concurrent run writes its record right after creating
    the folder, and we cannot tell whose a folder without one is.
    """
    removed = []
    for path in glob.glob(os.path.join(tmp or tempfile.gettempdir(), JOB_PREFIX + "*")):
        job = Path(path)
        if abandoned(job, OWNER_FILE):
            shutil.rmtree(job, ignore_errors=True)
            removed.append(job)
    return removed


@contextlib.contextmanager
def job_directory() -> Iterator[Path]:
    """A fresh job folder owned by this process; removed on exit. Reclaims what dead runs left first.

    Like ``tempfile.TemporaryDirectory`` plus an owner record (``owner.json``)
    that lets later runs -- and this run's worker, should this process die --
    tell it is garbage once this process is gone.
    """
    reclaim_stale_job_dirs()
    reclaim_stale_segments()
    job = Path(tempfile.mkdtemp(prefix=JOB_PREFIX))
    try:
        write_owner(job / OWNER_FILE)
        yield job
    finally:
        shutil.rmtree(job, ignore_errors=True)


def remove_leaked_segments(before: set[str]) -> list[str]:
    """Unlink segments created since ``before`` that no process maps; returns what was removed.

    Checking the mappings keeps a concurrent Lava run (another test, another
    user) from losing its live segments.
    """
    return unlink_unmapped(shm_segments() - before)


def unlink_unmapped(paths: Iterable[str], exclude: Iterable[int] = ()) -> list[str]:
    """Unlink the segments in ``paths`` that no live process (but those in ``exclude``) maps; returns what was removed."""
    paths = set(paths)
    if not paths:
        return []
    removed = []
    for path in sorted(paths - mapped_segments(exclude=exclude)):
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


def run_worker(job_dir: Path, timeout_s: float) -> dict:
    """Run ``python -m neurocompile_lava.worker job_dir our_pid`` under a wall-clock limit.

    Returns the worker's ``result.json``. Raises :class:`NeurocompileError`
    with a one-line cause on timeout or failure.
    Any exception here -- KeyboardInterrupt, or SystemExit from a SIGTERM or
    SIGHUP handler -- stops the group and unlinks its segments on the way
    out; if this process dies without unwinding, the worker cleans up after
    itself (it is given our pid to watch).
    """
    before = shm_segments()
    log = job_dir / "worker.log"
    out = open(log, "wb")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "neurocompile_lava.worker", str(job_dir), str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # multiprocessing's own temp folder (pymp-*, listener sockets of Lava's actors) inside the
            # job folder, so that whatever removes the job folder removes it too, SIGKILL included
            env={**os.environ, "TMPDIR": str(job_dir)},
        )
    finally:
        out.close()
    timed_out = False
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
