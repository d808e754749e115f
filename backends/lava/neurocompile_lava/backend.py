"""``LavaBackend``: runs a quantised network on Intel Lava (the ``lava`` entry point).

The caller's process never imports Lava: it validates the network
(:mod:`neurocompile_lava.plan`), writes it with the frames into a temporary
job directory (:func:`neurocompile_lava.runner.job_directory`, which also
reclaims what killed runs left) and lets :mod:`neurocompile_lava.runner`
supervise one worker subprocess, which runs every sample in one Lava network and one
``run(RunSteps(samples · P))``. Results come back as ``.npy`` files the
process models saved themselves (``Var.get()`` reads ~26 k values/s).
"""
from __future__ import annotations

import importlib.util
import json
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import numpy as np

from neurocompile import ir
from neurocompile.backends import RunResult
from neurocompile.errors import NeurocompileError
from neurocompile_lava.plan import LoweringPlan, Precision, plan_lowering
from neurocompile_lava.records import record_path
from neurocompile_lava.runner import job_directory, run_worker

LAVA_LOIHI_MODULE = "lava.utils.loihi2_profiler"  # what lava.utils.loihi.is_installed() probes for lava-loihi


def lava_version() -> Optional[str]:
    try:
        return version("lava-nc")
    except PackageNotFoundError:
        return None


def lava_loihi_installed() -> bool:
    """True when Intel's lava-loihi extension (needed for Loihi2HwCfg) can be imported."""
    try:
        return importlib.util.find_spec(LAVA_LOIHI_MODULE) is not None
    except (ImportError, ValueError):
        return False


def default_timeout_s(plan: LoweringPlan) -> float:
    """A generous wall-clock limit: at least 10× the time expected from speeds measured with lava-nc 0.10.0 on CPU.

    Per step: ~0.7 ms of Lava overhead per process, ~5 ns per synapse
    (10 k-neuron Sparse layers ran at ~21 steps/s), plus compile and fork.
    """
    processes = 1 + len(plan.neurons) + len(plan.synapses)
    synapses = sum(s.synapses for s in plan.synapses)
    per_step = 0.7e-3 * processes + 5e-9 * synapses + 1e-7 * sum(n.size for n in plan.neurons)
    return 60.0 + 10.0 * plan.steps * per_step


class LavaBackend:
    """Lava ``Loihi2SimCfg(select_tag="fixed_pt")`` on CPU; ``Loihi2HwCfg`` where lava-loihi is installed.

    ``precision="floating_pt"`` selects the float models instead (Lava's float
    LIF conventions; readouts are then rescaled to fixed-point units and
    rounded, so they agree with fixed point only approximately).
    ``hardware=None`` uses Loihi 2 when lava-loihi is installed.
    """

    name = "lava"

    def __init__(self, precision: Precision = "fixed_pt", hardware: Optional[bool] = None) -> None:
        if precision not in ("fixed_pt", "floating_pt"):
            raise NeurocompileError(f"precision must be 'fixed_pt' or 'floating_pt', not {precision!r}")
        self.precision = precision
        self.hardware = lava_loihi_installed() if hardware is None else hardware

    def describe(self, net: ir.Network, frames: Optional[np.ndarray] = None) -> list[dict] | None:
        """The ``Backend`` protocol's description: which Lava processes ``net`` becomes and whether each runs on stock Loihi 2."""
        from neurocompile_lava.describe import describe_lowering

        return describe_lowering(net, frames)

    def available(self) -> tuple[bool, str]:
        v = lava_version()
        if v is None or importlib.util.find_spec("lava") is None:
            return False, "lava-nc is not installed (pip install -e backends/lava, then requirements-lava.txt)"
        if self.hardware and not lava_loihi_installed():
            return False, "Loihi 2 hardware was requested, but Intel's lava-loihi extension (needed for Loihi2HwCfg) is not installed"
        return True, self.platform(v)

    def platform(self, v: Optional[str] = None) -> str:
        v = v or lava_version()
        if self.hardware:
            return f"lava-nc {v}, Loihi2HwCfg(select_tag={self.precision!r}) via lava-loihi"
        loihi = "lava-loihi is installed but not used" if lava_loihi_installed() else "lava-loihi not installed: no Loihi 2 hardware"
        return f"lava-nc {v}, Loihi2SimCfg(select_tag={self.precision!r}) on CPU ({loihi})"

    def run(self, net: ir.Network, frames: np.ndarray, *, record: bool = False, timeout_s: Optional[float] = None) -> RunResult:
        """Run ``net`` on ``frames`` in one supervised worker subprocess (see the module docstring)."""
        ok, why = self.available()
        if not ok:
            raise NeurocompileError(why)
        t0 = time.perf_counter()
        frames = np.asarray(frames)
        plan = plan_lowering(net, frames)  # reject bad input here, before any subprocess
        limit = default_timeout_s(plan) if timeout_s is None else float(timeout_s)
        with job_directory() as job:  # removed on the way out, by the worker if we die, else by the next run
            ir.save(net, job / "network.zip")
            np.save(job / "frames.npy", frames.astype(np.int64), allow_pickle=False)
            spec = {"precision": self.precision, "hardware": self.hardware, "record_trains": record}
            (job / "job.json").write_text(json.dumps(spec))
            timings = run_worker(job, limit)
            result = self._collect(plan, net, job / "records", record)
        wall = time.perf_counter() - t0
        result.wall_s = wall
        result.notes.append(
            f"lava run: {plan.steps} steps in {timings['run_s']:.3f} s ({plan.steps / max(timings['run_s'], 1e-9):.0f} steps/s); "
            f"build {timings['build_s']:.2f} s, compile+fork {timings['compile_s']:.2f} s, stop {timings['stop_s']:.2f} s, call total {wall:.2f} s"
        )
        return result

    def _collect(self, plan: LoweringPlan, net: ir.Network, records: Path, record: bool) -> RunResult:
        def load(label: str, kind: str) -> np.ndarray:
            try:
                return np.load(record_path(str(records), label, kind), allow_pickle=False)
            except FileNotFoundError:
                raise NeurocompileError(f"the Lava run finished without writing its {kind} record for {label}") from None

        counts, trains = {}, ({} if record else None)
        readout = None
        # the final (u, v): PeriodicLIF saves it; a pipelined run's populations end at different window steps, so none
        keep_state = self.precision == "fixed_pt" and plan.schedule == "periodic"
        state = {n.population: load(n.label, "state") for n in plan.neurons} if keep_state else None
        for n in plan.neurons:
            if not n.readout:
                counts[n.population] = load(n.label, "counts").astype(np.int64)
                if record:
                    trains[n.population] = load(n.label, "spikes").reshape(plan.samples, plan.period, n.size)
            if n.record_v:
                v = load(n.label, "v")
                readout = v.astype(np.int64) if self.precision == "fixed_pt" else np.rint(v * 64).astype(np.int64)
        notes = [] if self.precision == "fixed_pt" else ["floating_pt: readout is v·64 rounded (fixed-point units); approximate"]
        return RunResult(
            readout=readout, spike_counts=counts, wall_s=0.0, steps=plan.steps, platform=self.platform(), spike_trains=trains, notes=notes,
            final_state={k: v.astype(np.int64) for k, v in state.items()} if state is not None else None,
        )
