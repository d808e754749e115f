"""The graph: neuron populations (nodes) and projections (edges), one IR for feed-forward and recurrent networks.

Execution semantics (shared by every simulator and backend; ``sim/float_sim.py``
and ``sim/engine.py`` give the exact arithmetic):

* A sample occupies a *period* of ``P = T + depth`` steps (``depth``: the
  longest feed-forward path from an input to the output). The first step of a
  period is a reset step: every neuron's state is zeroed and its synaptic input
  discarded (this also drops messages still in flight from the previous sample).
* Each projection delivers at step ``t`` what its source emitted at
  ``t - delay`` (``delay`` = 1: Lava's Dense/Sparse one-step synaptic delay, the
  only delay the simulators and backends implement). Recurrent projections —
  flagged ``recurrent``, they close a cycle and do not count towards ``depth`` —
  follow the same rule.
* An input population emits the encoded sample on every step of the period.
* ``spiking`` populations integrate ``u = u (1 - current_decay) + a_in``,
  ``v = v (1 - leak) + u + bias``, fire when ``v > threshold`` and subtract the
  threshold (``reset="subtract"``) or zero ``v`` (``reset="zero"``). Threshold,
  leak and current decay are one value for the whole population or one per
  neuron (heterogeneous time constants: ``leak = 1/τ_m``).
* ``readout`` populations never fire; ``v`` accumulates their input and is read
  at the last step of the period. Their bias is applied by the decoder
  (``logits = v + T * bias``), so bias and input are weighted equally.

The ``pipelined`` schedule (``settings.schedule``; the layout Lava's stock
``LIFReset`` runs, with no custom neuron process) differs in three points:

* ``P = T``. A population at depth ``d`` works on a sample during its own
  *window*, steps ``d .. d + P - 1`` of the sample's period (the input's window
  is the period itself), so each window trails its source's by exactly the
  one-step synaptic delay.
* The first step of a window resets ``u`` and ``v`` to zero and then
  integrates that step's input and bias like any other step (LIFReset's rule);
  nothing is discarded. In window coordinates, step ``i`` of a population
  receives step ``i`` of its source: samples stay independent and a whole
  network is the plain zero-delay recurrence snnTorch-style simulators run.
* Only layered feed-forward graphs qualify: every projection goes from depth
  ``d`` to ``d + 1`` (a skip or recurrent edge would deliver another window's,
  i.e. another sample's, spikes); :meth:`Network.pipeline_problem` says why not.

Float parameters live here; the integer ones a target runs are a separate
layer (:class:`neurocompile.ir.fixed.FixedPoint`) that the quantize pass adds.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
import scipy.sparse as sp

from ..errors import NeurocompileError
from .fixed import FixedPoint, NeuronFixed, SynapseFixed
from .limits import SUPPORTED_DELAYS
from .records import ConversionRecord, PruningRecord, RunSettings

PopulationKind = Literal["input", "spiking", "readout"]
ProjectionKind = Literal["dense", "sparse", "conv"]
PerNeuron = Union[float, np.ndarray]
"""One value for every neuron of a population, or a float vector with one per neuron."""

NEURON_FIELDS = ("threshold", "leak", "current_decay")


def per_neuron(value: PerNeuron | None, n: int, default: float = 0.0) -> np.ndarray:
    """``value`` as a float64 vector of ``n`` values (a scalar repeated); None gives ``default``."""
    if value is None:
        return np.full(n, default, dtype=np.float64)
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()


@dataclass(frozen=True)
class Population:
    """A group of neurons. ``shape`` is the tensor shape (C, H, W) or (N,); parameters may differ per neuron."""

    name: str
    shape: tuple[int, ...]
    kind: PopulationKind
    threshold: PerNeuron = 1.0
    bias: np.ndarray | None = None  # float, flattened, one per neuron
    leak: PerNeuron = 0.0  # fraction of v lost per step (0: integrate-and-fire)
    current_decay: PerNeuron = 1.0  # fraction of u lost per step (1: no synaptic current, u = this step's input)
    reset: Literal["subtract", "zero"] = "subtract"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def values(self, field: str) -> np.ndarray:
        """A parameter as one float64 value per neuron, whether it is stored once or per neuron."""
        if field == "bias":
            return per_neuron(self.bias, self.size)
        return per_neuron(getattr(self, field), self.size)

    def uniform(self, field: str) -> bool:
        """Whether every neuron has the same value of ``field`` (one Lava process parameter suffices)."""
        v = np.asarray(getattr(self, field))
        return v.ndim == 0 or v.size == 0 or bool(np.all(v == v.flat[0]))


@dataclass(frozen=True)
class ConvSpec:
    """Geometry of a 2-D convolution over flattened (C, H, W) populations."""

    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1


@dataclass(frozen=True)
class Projection:
    """Synapses from ``source`` to ``target``: an edge of the graph.

    ``weight`` is (out, in) for dense, a CSR matrix (out, in) for sparse, or a
    kernel (C_out, C_in / groups, kH, kW) for conv (weight-shared: never
    unrolled in the IR). ``recurrent`` marks an edge that closes a cycle (to
    the same population or one upstream); it is explicit, not inferred from an
    order, so passes may reorder or add populations freely.
    """

    name: str
    source: str
    target: str
    kind: ProjectionKind
    weight: Any
    conv: ConvSpec | None = None
    delay: int = 1
    recurrent: bool = False

    def matrix(self, weight: Any = None) -> sp.csr_matrix:
        """This projection as a CSR (out, in) matrix, whatever its kind; ``weight`` replaces the float weights
        (e.g. the integer mantissas of :class:`~neurocompile.ir.fixed.SynapseFixed`)."""
        w = self.weight if weight is None else weight
        if self.kind == "conv":
            from ..ir_geometry import conv_matrix

            return conv_matrix(np.asarray(w), self.conv)
        return sp.csr_matrix(w)

    def shape(self) -> tuple[int, int]:
        """(out, in) neurons, without building the matrix."""
        if self.kind == "conv":
            return int(np.prod(self.conv.out_shape)), int(np.prod(self.conv.in_shape))
        return tuple(int(d) for d in self.weight.shape)  # type: ignore[return-value]

    @property
    def n_synapses(self) -> int:
        return int(self.matrix().count_nonzero())


@dataclass(frozen=True)
class Network:
    """Populations and projections, the named inputs and outputs, and the records the passes add.

    ``settings`` says how a sample runs (time steps, encoding, seed, data);
    ``conversion`` how an ANN became this network; ``pruning`` what the prune pass
    removed; ``fixed`` the target's integer parameters (quantize); ``mapping`` the
    placement onto cores (map). The
    order of ``populations`` carries no meaning: :attr:`neurons` is the
    feed-forward topological order every simulator uses.
    """

    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    settings: RunSettings = RunSettings()
    conversion: ConversionRecord | None = None
    fixed: FixedPoint | None = None
    mapping: dict | None = None
    pruning: PruningRecord | None = None

    # -- lookups -----------------------------------------------------------
    @property
    def input(self) -> str:
        """The input population; the simulators and backends take one."""
        if len(self.inputs) != 1:
            raise NeurocompileError(f"the network has {len(self.inputs)} inputs ({', '.join(self.inputs)}); this step takes exactly one")
        return self.inputs[0]

    @property
    def output(self) -> str:
        """The output population; the decoder reads one."""
        if len(self.outputs) != 1:
            raise NeurocompileError(f"the network has {len(self.outputs)} outputs ({', '.join(self.outputs)}); this step takes exactly one")
        return self.outputs[0]

    @functools.cached_property
    def _by_name(self) -> dict[str, Population]:
        return {p.name: p for p in self.populations}

    def population(self, name: str) -> Population:
        return self._by_name[name]

    def projection(self, name: str) -> Projection:
        for pr in self.projections:
            if pr.name == name:
                return pr
        raise KeyError(name)

    def incoming(self, name: str) -> list[Projection]:
        """Projections into ``name``, in the network's projection order (the simulators' summation order)."""
        return [pr for pr in self.projections if pr.target == name]

    @functools.cached_property
    def neurons(self) -> tuple[Population, ...]:
        """The non-input populations, sources before targets along feed-forward edges (ties: stored order)."""
        index = {p.name: i for i, p in enumerate(self.populations)}
        pending = {p.name: 0 for p in self.populations if p.kind != "input"}
        for pr in self.projections:
            if not pr.recurrent and pr.target in pending and pr.source in pending:
                pending[pr.target] += 1
        order: list[Population] = []
        ready = sorted((n for n, k in pending.items() if k == 0), key=index.__getitem__)
        while ready:
            name = ready.pop(0)
            order.append(self._by_name[name])
            for pr in self.projections:
                if pr.source == name and not pr.recurrent and pr.target in pending:
                    pending[pr.target] -= 1
                    if pending[pr.target] == 0:
                        ready.append(pr.target)
                        ready.sort(key=index.__getitem__)
        if len(order) != len(pending):
            cyc = sorted(set(pending) - {p.name for p in order})
            raise NeurocompileError(f"populations {', '.join(cyc)} form a cycle of projections not flagged recurrent; "
                                    "mark the edge that closes it with recurrent=True")
        return tuple(order)

    @property
    def converted(self) -> bool:
        """Whether the network is spiking: it has a number of time steps per sample."""
        return self.settings.timesteps is not None

    @property
    def quantized(self) -> bool:
        return self.fixed is not None

    @property
    def timesteps(self) -> int:
        if self.settings.timesteps is None:
            raise NeurocompileError("the network has no time steps: it is an ANN; run `neurocompile convert` first")
        return self.settings.timesteps

    def neuron_fixed(self, name: str) -> NeuronFixed:
        """The integer parameters of population ``name`` (the quantize pass adds them)."""
        if self.fixed is None:
            raise NeurocompileError(f"population {name!r} is not quantised; run `neurocompile quantize` first")
        return self.fixed.neurons[name]

    def synapse_fixed(self, name: str) -> SynapseFixed:
        if self.fixed is None:
            raise NeurocompileError(f"projection {name!r} is not quantised; run `neurocompile quantize` first")
        return self.fixed.synapses[name]

    def fixed_matrix(self, proj: Projection) -> sp.csr_matrix:
        """The integer mantissas of ``proj`` as a CSR (out, in) matrix."""
        return proj.matrix(self.synapse_fixed(proj.name).weight)

    def depth(self) -> int:
        """Longest feed-forward path (in projections) from an input to the output."""
        return self.depths()[self.output]

    def period(self) -> int:
        """Steps per sample (the schedules above): T + depth periodic, T pipelined."""
        return self.timesteps + (0 if self.settings.schedule == "pipelined" else self.depth())

    def depths(self) -> dict[str, int]:
        """Each population's longest feed-forward path from an input (inputs 0): its window offset when pipelined."""
        d = {name: 0 for name in self.inputs}
        for p in self.neurons:
            srcs = [d[pr.source] for pr in self.incoming(p.name) if not pr.recurrent and pr.source in d]
            d[p.name] = 1 + max(srcs) if srcs else 0
        return d

    def pipeline_problem(self) -> str | None:
        """Why the ``pipelined`` schedule cannot run this graph (None: it can): it needs every projection from depth d to d + 1."""
        d = self.depths()
        for pr in self.projections:
            if pr.recurrent:
                return f"projection {pr.name!r} is recurrent"
            if d[pr.target] != d[pr.source] + 1:
                return f"projection {pr.name!r} skips from depth {d[pr.source]} to {d[pr.target]}"
        if len(self.inputs) != 1:
            return "the network has several inputs"
        return None

    # -- changes -------------------------------------------------------------
    def replace(self, **kw) -> "Network":
        return dataclasses.replace(self, **kw)

    def replace_population(self, pop: Population) -> "Network":
        return self.replace(populations=tuple(pop if p.name == pop.name else p for p in self.populations))

    def with_settings(self, **kw) -> "Network":
        """A copy with some run settings changed (typed: unknown names are a TypeError)."""
        return self.replace(settings=dataclasses.replace(self.settings, **kw))

    # -- checks --------------------------------------------------------------
    def validate(self) -> None:
        """Structural consistency; one NeurocompileError naming the first problem."""
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise NeurocompileError("network has duplicate population names")
        if len({pr.name for pr in self.projections}) != len(self.projections):
            raise NeurocompileError("network has duplicate projection names")
        kinds = {p.name: p.kind for p in self.populations}
        declared = {n for n, k in kinds.items() if k == "input"}
        if not self.inputs or set(self.inputs) != declared or len(set(self.inputs)) != len(self.inputs):
            raise NeurocompileError(f"the network's inputs {list(self.inputs)} must be exactly its input populations {sorted(declared)}")
        for o in self.outputs:
            if kinds.get(o, "input") == "input":
                raise NeurocompileError(f"output {o!r} is not a non-input population")
        if not self.outputs:
            raise NeurocompileError("the network has no output")
        for pr in self.projections:
            for end in (pr.source, pr.target):
                if end not in kinds:
                    raise NeurocompileError(f"projection {pr.name!r} connects unknown population {end!r}")
            if kinds[pr.target] == "input":
                raise NeurocompileError(f"projection {pr.name!r} targets input population {pr.target!r}; inputs take no synapses")
            if pr.delay not in SUPPORTED_DELAYS:
                raise NeurocompileError(f"projection {pr.name!r} has delay {pr.delay!r}; supported: {', '.join(map(str, SUPPORTED_DELAYS))} "
                                        "(Lava's one-step Dense/Sparse delay)")
            want = (self._by_name[pr.target].size, self._by_name[pr.source].size)
            if pr.shape() != want:
                raise NeurocompileError(f"projection {pr.name!r} has shape {pr.shape()}, expected {want}")
        order = self.neurons  # raises for an unflagged cycle
        fed = set(self.inputs)
        for p in order:
            if not any(pr.source in fed and not pr.recurrent for pr in self.incoming(p.name)):
                raise NeurocompileError(f"population {p.name!r} has no feed-forward input from an input or an upstream population")
            fed.add(p.name)
            for f in NEURON_FIELDS:
                v = np.asarray(getattr(p, f))
                if v.ndim not in (0, 1) or (v.ndim == 1 and v.shape != (p.size,)):
                    raise NeurocompileError(f"population {p.name!r}: {f} must be one value or {p.size} values, got shape {v.shape}")
        if self.settings.schedule == "pipelined" and (why := self.pipeline_problem()):
            raise NeurocompileError(f"the pipelined schedule needs a layered feed-forward graph, but {why}; use the periodic schedule")
        if self.fixed is not None:
            self.fixed.check_covers([p.name for p in order], [pr.name for pr in self.projections])
