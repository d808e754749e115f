"""FailingLIF (a PeriodicLIF whose ProcessModel raises) and :func:`install`, which puts it into the lowering.

Lava's compiler runs every module next to a Process, so this folder holds
only the process and its models (as ``neurocompile_lava.procs`` does).
"""
from __future__ import annotations

from typing import Any

from neurocompile_lava.procs.periodic_lif.process import PeriodicLIF


class FailingLIF(PeriodicLIF):
    """PeriodicLIF whose model raises in its constructor (``where="init"``) or in ``run_spk`` at ``step``."""

    def __init__(self, *, fail_where: str, fail_step: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.proc_params["fail_where"] = fail_where
        self.proc_params["fail_step"] = int(fail_step)


def install(spec: dict) -> None:
    """Make the lowering build population ``spec["population"]`` as a FailingLIF."""
    from neurocompile_lava import lowering

    def make(**kwargs: Any) -> PeriodicLIF:
        if kwargs.get("name") == f"lif:{spec['population']}":
            return FailingLIF(fail_where=spec["where"], fail_step=spec.get("step", 1), **kwargs)
        return PeriodicLIF(**kwargs)

    lowering.PeriodicLIF = make
