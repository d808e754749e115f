"""What every pass has in common: it takes a Network, returns a new one, and says what it needs.

A pass is a plain function ``(net, ...options as keywords) -> Network``
(torch.fx's habit). Its preconditions are declared with :func:`network_pass`
and checked before it runs, so feeding the passes in the wrong order is a
one-line error that names the missing step, not a KeyError deep inside.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, TypeVar

from ..errors import NeurocompileError
from ..ir import Network

F = TypeVar("F", bound=Callable[..., Network])


@dataclass(frozen=True)
class Precondition:
    """A property of the input network and what to do when it does not hold."""

    holds: Callable[[Network], bool]
    need: str
    fix: str


IS_ANN = Precondition(lambda n: not n.converted, "an ANN that is not converted yet",
                      "give the artifact `neurocompile ingest` writes")
IS_CONVERTED = Precondition(lambda n: n.converted, "a converted spiking network (or one ingested as spiking, e.g. an RSNN)",
                            "run `neurocompile convert` first")
NOT_QUANTIZED = Precondition(lambda n: not n.quantized, "a network that is not quantised yet (its float parameters are what changes)",
                             "give the artifact of the step before `neurocompile quantize`")
IS_QUANTIZED = Precondition(lambda n: n.quantized, "a quantised network", "run `neurocompile quantize` first")


def network_pass(*preconditions: Precondition) -> Callable[[F], F]:
    """Declare a pass's preconditions; they are checked on every call and listed in ``fn.preconditions``."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def checked(net: Network, *args, **kwargs) -> Network:
            for p in preconditions:
                if not p.holds(net):
                    raise NeurocompileError(f"{fn.__name__} needs {p.need}; {p.fix}")
            return fn(net, *args, **kwargs)

        checked.preconditions = preconditions  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return decorate
