"""Lava runs leave nothing behind: no processes, no /dev/shm segments -- also when they fail or time out.

Failing models are a test double, not a production option: the worker is
started with ``tests/lava_doubles`` on its path, whose ``sitecustomize``
builds one population as ``failing_lif.FailingLIF`` -- a PeriodicLIF whose
model raises in ``run_spk`` (with downstream consumers, the case where Lava's
``run()`` hangs forever) or in its constructor (where Lava's ``stop()`` and
interpreter exit hang). The worker's pid is recorded by a ``Popen`` test double
in the runner's ``subprocess`` module.
"""
from __future__ import annotations

import json
import os
import time
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lava")
psutil = pytest.importorskip("psutil")
from neurocompile.errors import NeurocompileError  # noqa: E402
from nc_testutils import fixed_network  # noqa: E402
from neurocompile.ir import Network, NeuronFixed, Population, Projection  # noqa: E402
from neurocompile_lava import runner  # noqa: E402
from neurocompile_lava.runner import group_members, mapped_segments, remove_leaked_segments, shm_segments  # noqa: E402

pytestmark = pytest.mark.lava
DOUBLES = Path(__file__).with_name("lava_doubles")


def _net() -> Network:
    def q(n):
        return NeuronFixed(vth=4, bias_mant=np.zeros(n, np.int64), bias_exp=0)

    w1, w2 = np.array([[3, 2], [1, 1]]), np.array([[1, -2]])
    pops = (Population("in", (2,), "input"), Population("h", (2,), "spiking"), Population("out", (1,), "readout"))
    projs = (
        Projection("w1", "in", "h", "dense", w1.astype(float)),
        Projection("w2", "h", "out", "dense", w2.astype(float)),
    )
    return fixed_network(pops, projs, neurons={"h": q(2), "out": q(1)}, synapses={"w1": w1, "w2": w2})


class Leftovers:
    """Snapshot before a run; afterwards, whatever of the run is still alive or still in /dev/shm.

    Robust to other work on the machine: only our new children and the
    worker's process group count, and a new segment that some live process
    still maps belongs to a concurrent run (ours are all gone by then).
    """

    def __init__(self) -> None:
        self.shm = shm_segments()
        self.children = {p.pid for p in psutil.Process().children(recursive=True)}
        self.pids: list[int] = []

    def processes(self) -> list:
        alive = [p for p in psutil.Process().children(recursive=True) if p.pid not in self.children and p.status() != psutil.STATUS_ZOMBIE]
        for pgid in self.pids:  # orphans re-parented away from us still carry the worker's group id
            alive += [psutil.Process(pid) for pid in group_members(pgid)]
        return alive

    def segments(self) -> set[str]:
        return shm_segments() - self.shm - mapped_segments()

    def assert_clean(self) -> None:
        assert self.pids, "the worker never started"
        assert self.processes() == []
        assert self.segments() == set()


@pytest.fixture
def seen(monkeypatch) -> Leftovers:
    """Leftovers of the next run; the worker's pid is recorded as the runner starts it."""
    seen = Leftovers()

    class RecordingPopen(runner.subprocess.Popen):
        def __init__(self, args, *a, **kw):
            super().__init__(args, *a, **kw)
            if "neurocompile_lava.worker" in args:
                seen.pids.append(self.pid)

    monkeypatch.setattr(runner.subprocess, "Popen", RecordingPopen)
    return seen


def fail_in(monkeypatch, population: str, where: str, step: int = 1) -> None:
    """Make the next worker build ``population`` with a model that raises (see tests/lava_doubles)."""
    monkeypatch.setenv("NC_TEST_FAILING_LIF", json.dumps({"population": population, "where": where, "step": step}))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(DOUBLES), os.environ.get("PYTHONPATH")])))


def test_a_successful_run_leaves_nothing(backend, seen):
    r = backend.run(_net(), np.ones((2, 8, 2), np.int64))
    assert r.spike_counts["h"].shape == (2, 2)
    seen.assert_clean()


@pytest.mark.parametrize(
    "population, where, step, expected",
    [
        ("h", "run", 5, "run_spk at step 5"),  # has a downstream consumer: Lava's run() would hang
        ("out", "run", 3, "run_spk at step 3"),  # no consumer: Lava raises RuntimeError, stop() hangs
        ("h", "init", 1, "__init__"),  # ProcessModel constructor
    ],
)
def test_a_failing_model_is_reported_in_one_line_and_leaves_nothing(backend, seen, monkeypatch, population, where, step, expected):
    fail_in(monkeypatch, population, where, step)
    t0 = time.monotonic()
    with pytest.raises(NeurocompileError) as err:
        backend.run(_net(), np.ones((2, 8, 2), np.int64), timeout_s=60)
    assert time.monotonic() - t0 < 30, "the failure must be detected, not waited out"
    msg = str(err.value)
    assert "\n" not in msg and "InjectedFault" in msg and f"FailingLifModelFixed.{expected}" in msg
    seen.assert_clean()


def test_the_wall_clock_limit_stops_a_run_and_leaves_nothing(backend, seen):
    t0 = time.monotonic()
    with pytest.raises(NeurocompileError, match="wall-clock limit of 2 s"):
        backend.run(_net(), np.ones((5000, 100, 2), np.int64), timeout_s=2)  # ~1 min of steps
    assert time.monotonic() - t0 < 2 + 8
    seen.assert_clean()


def test_segment_cleanup_spares_segments_still_in_use():
    before = shm_segments()
    live = shared_memory.SharedMemory(create=True, size=64)
    dead = shared_memory.SharedMemory(create=True, size=64)
    dead.close()  # unmapped and never unlinked: what a killed Lava run leaves
    try:
        removed = remove_leaked_segments(before)
        assert removed == [f"/dev/shm/{dead.name.lstrip('/')}"]
        assert os.path.exists(f"/dev/shm/{live.name.lstrip('/')}")
    finally:
        live.close()
        live.unlink()
        from multiprocessing import resource_tracker

        resource_tracker.unregister(dead._name, "shared_memory")  # already unlinked by the cleanup
