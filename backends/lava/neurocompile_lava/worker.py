"""One Lava simulation, run as ``python -m neurocompile_lava.worker JOB_DIR PARENT_PID`` by :mod:`neurocompile_lava.runner`.

The job directory holds ``job.json`` (options), ``network.zip``
(``neurocompile.ir.save``) and ``frames.npy``; the PeriodicLIF models write
their records into ``JOB_DIR/records``. On success this writes
``result.json`` (timings), on failure ``error.json`` with a one-line cause.

Why a subprocess and why ``os._exit`` on failure: after a ProcessModel
raises, Lava 0.10 either hangs in ``run()`` (when the failing process has
downstream consumers) or raises ``RuntimeError`` after which ``stop()`` hangs,
and its forked actors and shared memory outlive the interpreter (seen with
lava-nc 0.10.0; tests/test_lava_supervision.py runs both cases). So on success we ``stop()`` normally; on any failure (and on
the runner's SIGTERM) we record the cause, SIGTERM the other members of our
process group, reap them and leave with ``os._exit``; the supervising runner
then makes sure the group is gone and removes leaked ``/dev/shm/psm_*``
segments. A watcher thread polls the actors for exceptions so that the
hanging case fails fast instead of waiting for the wall-clock limit.

Why the worker dies with its parent: the runner runs it in a new session so
that one ``killpg`` reaches every Lava actor, which also means nothing stops
it when the runner's process is killed before its ``finally:`` runs (SIGKILL,
or SIGTERM/SIGHUP with the default action): the simulation would run on for
minutes, holding its job folder and ``psm_*`` segments. So the worker asks
for SIGHUP when its parent dies (``PR_SET_PDEATHSIG``, Linux), checks right
after that the parent is still the ``PARENT_PID`` it was given (it may have
died before), and a thread polls ``getppid()`` (which changes when we are
re-parented; the portable, pid-reuse-proof backstop). Either way it then
ends as on the runner's SIGTERM, but does the runner's part too: it SIGKILLs
what is left of its group, unlinks the segments of its run and removes the
job folder (if the folder's owner record names that parent).

Why SIGHUP and not SIGTERM: the kernel sends the death signal when the
parent *thread* that forked us exits, which for a killed multi-threaded
parent can be before the whole process is gone and ``getppid()`` changes;
a signal of its own tells that case apart from the runner's SIGTERM, after
which the runner (alive) cleans up itself. In a new session the worker has no
terminal, so no other SIGHUP is expected.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from neurocompile.errors import NeurocompileError
from neurocompile_lava import compat
from neurocompile.owners import read_owner
from neurocompile_lava.runner import GRACE_S, OWNER_FILE, group_members, segments_mapped_by, shm_segments, unlink_unmapped

compat.install()

POLL_S = 0.05
PARENT_POLL_S = 0.1
REAP_S = GRACE_S - 0.5  # finish reaping before the runner escalates to SIGKILL
KILL_S = 5.0  # orphaned: how long to keep SIGKILLing group members that appear (a fork in flight)
PR_SET_PDEATHSIG = 1


def _become_subreaper() -> None:
    """Adopt orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``) so they can be reaped here.

    Lava's actors and the shared-memory manager's resource tracker outlive
    their parents in some exits; re-parented to a container's PID 1 that does
    not reap, they would stay as zombies. As subreaper the worker reaps them.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        except (OSError, AttributeError):
            pass


def _release_resource_tracker() -> None:
    """Close our end of multiprocessing's resource-tracker pipe (private ``_fd``, CPython 3.8–3.13).

    The tracker (a child of this worker, started for Lava's shared memory)
    ignores SIGTERM and only exits -- unlinking any segment still registered --
    once every holder of that pipe has closed it; while we hold it, it could
    not be reaped here. Not imported here: this may run in a signal handler
    in the middle of an import, and no module means no tracker.
    """
    resource_tracker = sys.modules.get("multiprocessing.resource_tracker")
    tracker = getattr(resource_tracker, "_resource_tracker", None)
    fd = getattr(tracker, "_fd", None)
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
        tracker._fd = None


def _die_with_parent() -> None:
    """Ask the kernel for SIGHUP when our parent dies (Linux ``PR_SET_PDEATHSIG``); elsewhere the parent watcher alone.

    The signal is tied to the parent *thread* that forked us; the runner's
    thread waits for the worker while it lives, so only the death of the
    parent process can end that thread first.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGHUP, 0, 0, 0)
        except (OSError, AttributeError):
            pass


def _watch_parent(finish: "_Exit") -> None:
    """Backstop for ``PR_SET_PDEATHSIG`` (non-Linux, or a main thread that cannot run the Python handler)."""
    while not finish.orphaned():
        time.sleep(PARENT_POLL_S)
    finish(128 + signal.SIGHUP)


def _reap_descendants(deadline_s: float) -> None:
    """Wait (up to ``deadline_s``) until every child, adopted orphans included, has been reaped."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


class _Exit:
    """Ends the worker exactly once: optional error.json, stop the other group members, reap, ``os._exit``.

    ``os._exit`` skips interpreter shutdown, which hangs while Lava actors are
    alive (lava-nc 0.10.0). Group members are signalled one by one (not ``killpg``)
    so the worker never signals itself, whichever thread gets here first.
    When the parent (the supervising runner) is gone, it also does what the
    runner would have done: SIGKILL, unlink segments, remove the job folder.
    """

    def __init__(self, job_dir: Path, parent: int) -> None:
        self.job_dir = job_dir
        self.parent = parent
        self.pid = os.getpid()
        self.segments_before = shm_segments()
        self.parent_died = False  # set by the death signal, which can come before getppid() changes
        self._exiting = False
        self._lock = threading.RLock()  # re-entrant: a signal may arrive while the main thread is in here

    def orphaned(self) -> bool:
        """Our parent is gone: its death signal came, or we have been re-parented (to init or a subreaper)."""
        return self.parent_died or os.getppid() != self.parent

    def _others(self) -> list[int]:
        return [pid for pid in group_members(self.pid) if pid != self.pid]

    def _signal_others(self, sig: int) -> None:
        for pid in self._others():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def __call__(self, code: int, cause: str | None = None, detail: str = "") -> NoReturn:
        with self._lock:
            self._exiting = True
            try:
                if cause is not None:
                    tmp = self.job_dir / "error.json.tmp"
                    tmp.write_text(json.dumps({"cause": " ".join(cause.split()), "detail": detail}))
                    os.replace(tmp, self.job_dir / "error.json")
                    sys.stderr.write(detail + "\n" + cause + "\n")
                ours = segments_mapped_by(group_members(self.pid)) | (shm_segments() - self.segments_before)  # before anyone unmaps them
                self._signal_others(signal.SIGTERM)
                _release_resource_tracker()
                _reap_descendants(REAP_S)
                if self.orphaned():
                    self._clean_up_for_parent(ours)
            finally:  # whatever failed above, never return into Lava (what is left, the next run reclaims)
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)

    def _clean_up_for_parent(self, ours: set[str]) -> None:
        """The dead runner's part of the cleanup: kill the rest of the group, unlink our segments, remove the job folder."""
        end = time.monotonic() + KILL_S
        while self._others() and time.monotonic() < end:  # repeated: the main thread may be forking an actor right now
            self._signal_others(signal.SIGKILL)
            _reap_descendants(0.2)
        ours |= shm_segments() - self.segments_before
        unlink_unmapped(ours, exclude=[self.pid])  # we still map them until os._exit
        owner = read_owner(self.job_dir / OWNER_FILE)
        if owner is not None and owner.get("pid") == self.parent:  # only a folder our runner made for us
            shutil.rmtree(self.job_dir, ignore_errors=True)

    def fail(self, cause: str, detail: str = "") -> NoReturn:
        self(1, cause, detail)

    def on_sigterm(self, signum, frame) -> None:
        """The runner's wall-clock limit. Forked actors inherit this handler: they just exit.

        If the worker is already on its way out, that one exit goes on.
        """
        if os.getpid() != self.pid:
            os._exit(128 + signum)
        if not self._exiting:
            self(128 + signum)

    def on_parent_death(self, signum, frame) -> None:
        """``PR_SET_PDEATHSIG``: the parent is dying (maybe not yet re-parented us). Also inherited by actors."""
        if os.getpid() != self.pid:
            os._exit(128 + signum)
        self.parent_died = True  # an exit under way sees it at its orphaned() check
        if not self._exiting:
            self(128 + signum)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def actor_errors(process: Any) -> list[tuple[BaseException, str]]:
    """Exceptions raised inside Lava's actor processes so far, as (exception, traceback).

    Reads ``SystemProcess.exception`` (lava/magma/runtime/message_infrastructure/
    multiprocessing.py), which polls the pipe each actor reports through.
    """
    runtime = getattr(process, "runtime", None)
    infra = getattr(runtime, "_messaging_infrastructure", None)
    found = []
    for actor in list(getattr(infra, "actors", None) or []):
        try:
            exc = actor.exception
        except (OSError, ValueError, EOFError):  # pipe closed by a concurrent join
            exc = getattr(actor, "_exception", None)
        if exc:
            found.append(exc)
    return found


def _watch(process: Any, fail, stop: threading.Event) -> None:
    while not stop.wait(POLL_S):
        errors = actor_errors(process)
        if errors:
            exc, tb = errors[0]
            fail(f"Lava simulation failed: {_describe(exc)}", tb)


def _run_config(precision: str, hardware: bool):
    if hardware:
        from lava.magma.core.run_configs import Loihi2HwCfg

        return Loihi2HwCfg(select_tag=precision)
    from lava.magma.core.run_configs import Loihi2SimCfg

    return Loihi2SimCfg(select_tag=precision)


def run_job(job_dir: Path, fail) -> dict:
    """Build, compile, run and stop the job's network; return timings."""
    import numpy as np
    from lava.magma.core.run_conditions import RunSteps

    from neurocompile import ir
    from neurocompile_lava.lowering import build, save_probe_records
    from neurocompile_lava.plan import plan_lowering

    spec = json.loads((job_dir / "job.json").read_text())
    t0 = time.perf_counter()
    net = ir.load(job_dir / "network.zip")
    frames = np.load(job_dir / "frames.npy", allow_pickle=False)
    plan = plan_lowering(net, frames)
    (job_dir / "records").mkdir(exist_ok=True)
    lava_net = build(plan, frames, record_dir=str(job_dir / "records"), record_trains=spec["record_trains"], precision=spec["precision"])
    anchor = lava_net.anchor
    t1 = time.perf_counter()

    stop_watch = threading.Event()
    threading.Thread(target=_watch, args=(anchor, fail, stop_watch), daemon=True).start()
    try:
        anchor.create_runtime(run_cfg=_run_config(spec["precision"], spec["hardware"]))  # compile + fork actors
        t2 = time.perf_counter()
        anchor.run(condition=RunSteps(num_steps=plan.steps, blocking=True))
        t3 = time.perf_counter()
    except BaseException as exc:  # noqa: BLE001 -- every failure ends the same way
        stop_watch.set()
        errors = actor_errors(anchor)
        if not errors and isinstance(exc, RuntimeError):
            time.sleep(5 * POLL_S)  # Lava's own summary says little; let a late actor report
            errors = actor_errors(anchor)
        if errors:
            fail(f"Lava simulation failed: {_describe(errors[0][0])}", errors[0][1])
        fail(f"Lava simulation failed: {_describe(exc)}", traceback.format_exc())
    stop_watch.set()
    save_probe_records(lava_net, str(job_dir / "records"))  # Var reads: before stop()
    anchor.stop()
    t4 = time.perf_counter()
    return {"steps": plan.steps, "build_s": t1 - t0, "compile_s": t2 - t1, "run_s": t3 - t2, "stop_s": t4 - t3}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        sys.stderr.write("usage: python -m neurocompile_lava.worker JOB_DIR PARENT_PID\n")
        return 2
    job_dir = Path(argv[0])
    finish = _Exit(job_dir, int(argv[1]))
    _become_subreaper()
    signal.signal(signal.SIGTERM, finish.on_sigterm)
    signal.signal(signal.SIGHUP, finish.on_parent_death)
    _die_with_parent()
    if finish.orphaned():  # the parent died before PR_SET_PDEATHSIG took effect
        finish(128 + signal.SIGHUP)
    threading.Thread(target=_watch_parent, args=(finish,), daemon=True).start()
    try:
        timings = run_job(job_dir, finish.fail)
    except Exception as exc:  # noqa: BLE001 -- build-time errors (before any actor exists)
        cause = str(exc) if isinstance(exc, NeurocompileError) else f"Lava build failed: {_describe(exc)}"
        finish.fail(cause, traceback.format_exc())
    tmp = job_dir / "result.json.tmp"
    tmp.write_text(json.dumps(timings))
    os.replace(tmp, job_dir / "result.json")
    finish(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
