"""The fixed-point model of FailingLIF: PeriodicLIF's, raising where the process says."""
from __future__ import annotations

from neurocompile_lava.procs.periodic_lif.models import PyPeriodicLifModelFixed  # first: installs the Lava compat hook

from lava.magma.core.decorator import implements  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

from failing_lif.process import FailingLIF  # noqa: E402


class InjectedFault(RuntimeError):
    """What the failing model raises."""


@implements(proc=FailingLIF, protocol=LoihiProtocol)
class FailingLifModelFixed(PyPeriodicLifModelFixed):
    """Tags and resources are inherited (fixed_pt, CPU); Lava matches a model to its process class exactly."""

    implements_process = None  # Lava refuses to re-point an inherited implements_process

    def __init__(self, proc_params) -> None:
        if proc_params["fail_where"] == "init":
            raise InjectedFault(f"injected fault in {type(self).__name__}.__init__")
        super().__init__(proc_params)

    def run_spk(self) -> None:
        if self.proc_params["fail_where"] == "run" and self.time_step == self.proc_params["fail_step"]:
            raise InjectedFault(f"injected fault in {type(self).__name__}.run_spk at step {self.time_step}")
        super().run_spk()
