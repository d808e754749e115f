"""The network IR every pass reads and writes.

Shaped after NIR's node definitions: small dataclasses whose fields are exactly
the parameters of the neuron and synapse equations, plus the edges between
them. Numbers live in numpy arrays (scipy CSR for sparse weights). Passes are
pure: they return a new :class:`Network` built with :func:`dataclasses.replace`.

Execution semantics (shared by every simulator and backend; see
``neurocompile/sim/engine.py`` for the exact arithmetic):

* A sample occupies a *period* of ``P = T + depth`` steps. The first step of a
  period is a reset step: every neuron's state is zeroed and its synaptic input
  discarded (this also drops messages still in flight from the previous sample).
* Each projection delivers at step ``t`` what its source emitted at ``t - 1``
  (Lava's Dense/Sparse one-step synaptic delay). Recurrent projections (to
  the same or an earlier population) follow the same rule.
* The input population emits the encoded sample on every step of the period.
* ``spiking`` populations integrate, fire when ``v > threshold`` and subtract
  the threshold (``reset="subtract"``) or zero ``v`` (``reset="zero"``).
* ``readout`` populations never fire; ``v`` accumulates their input and is read
  at the last step of the period. Their bias is applied by the decoder
  (``logits = v + T * bias``), so bias and input are weighted equally.
"""
from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .errors import NeurocompileError

IR_VERSION = 1

PopulationKind = Literal["input", "spiking", "readout"]
ProjectionKind = Literal["dense", "sparse", "conv"]


@dataclass(frozen=True)
class NeuronQuant:
    """Loihi-style fixed-point neuron parameters (Lava ``LIF`` names and units).

    ``v`` integrates ``u + bias_mant << bias_exp`` each step, where
    ``u = (u * (4096 - (du + 1))) >> 12 + (a_in << 6)``; a neuron fires when
    ``v > vth << 6``.
    """

    vth: int
    bias_mant: np.ndarray  # int64, one per neuron
    bias_exp: int
    du: int = 4095  # 4095: u holds only this step's input (no synaptic current)
    dv: int = 0  # 0: no membrane leak (integrate-and-fire)


@dataclass(frozen=True)
class Population:
    """A group of identical neurons. ``shape`` is the tensor shape (C, H, W) or (N,)."""

    name: str
    shape: tuple[int, ...]
    kind: PopulationKind
    threshold: float = 1.0
    bias: np.ndarray | None = None  # float, flattened, one per neuron
    leak: float = 0.0  # fraction of v lost per step (0: IF)
    current_decay: float = 1.0  # fraction of u lost per step (1: no synaptic current, u = this step's input)
    reset: Literal["subtract", "zero"] = "subtract"
    quant: NeuronQuant | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


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
    """Synapses from ``source`` to ``target``.

    ``weight`` is (out, in) for dense, a CSR matrix (out, in) for sparse, or a
    kernel (C_out, C_in / groups, kH, kW) for conv. After quantisation,
    ``qweight`` holds the integer mantissas (same layout) and the delivered
    current is ``(qweight @ s) << weight_exp`` (``>>`` for negative exponents).
    """

    name: str
    source: str
    target: str
    kind: ProjectionKind
    weight: Any
    conv: ConvSpec | None = None
    qweight: Any = None
    weight_exp: int = 0

    def matrix(self, quantized: bool = False) -> sp.csr_matrix:
        """This projection as a CSR (out, in) matrix, whatever its kind."""
        w = self.qweight if quantized else self.weight
        if w is None:
            raise NeurocompileError(f"projection {self.name!r} is not quantised yet")
        if self.kind == "conv":
            from .frontend.linear_maps import conv_matrix

            return conv_matrix(np.asarray(w), self.conv)
        return sp.csr_matrix(w)

    @property
    def n_synapses(self) -> int:
        return int(self.matrix().count_nonzero())


@dataclass(frozen=True)
class Network:
    populations: tuple[Population, ...]  # input first; feed-forward edges go forward in this order
    projections: tuple[Projection, ...]
    input: str
    output: str
    meta: dict = field(default_factory=dict)

    # -- lookups -----------------------------------------------------------
    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def incoming(self, name: str) -> list[Projection]:
        return [pr for pr in self.projections if pr.target == name]

    @property
    def quantized(self) -> bool:
        return all(pr.qweight is not None for pr in self.projections)

    def is_recurrent(self, proj: Projection) -> bool:
        """A projection from a population to itself or to one earlier in the order."""
        order = {p.name: i for i, p in enumerate(self.populations)}
        return order[proj.source] >= order[proj.target]

    def depth(self) -> int:
        """Longest feed-forward path (in projections) from the input to the output."""
        d = {self.input: 0}
        for p in self.populations[1:]:
            srcs = [d[pr.source] for pr in self.incoming(p.name) if not self.is_recurrent(pr)]
            d[p.name] = 1 + max(srcs)
        return d[self.output]

    def replace(self, **kw) -> "Network":
        return dataclasses.replace(self, **kw)

    def replace_population(self, pop: Population) -> "Network":
        return self.replace(populations=tuple(pop if p.name == pop.name else p for p in self.populations))

    def validate(self) -> None:
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise NeurocompileError("network has duplicate population names")
        seen = {self.input}
        for p in self.populations[1:]:
            inc = self.incoming(p.name)
            if not [pr for pr in inc if pr.source in seen]:
                raise NeurocompileError(f"population {p.name!r} has no feed-forward input from an earlier population")
            for pr in inc:
                if pr.source not in names:
                    raise NeurocompileError(f"projection {pr.name!r} comes from unknown population {pr.source!r}")
                m = pr.matrix()
                if m.shape != (p.size, self.population(pr.source).size):
                    raise NeurocompileError(f"projection {pr.name!r} has shape {m.shape}, expected {(p.size, self.population(pr.source).size)}")
            seen.add(p.name)
        if self.populations[0].name != self.input or self.output not in seen:
            raise NeurocompileError("network input must come first and the output must be reachable")


# -- serialisation --------------------------------------------------------
# One zip (npz-compatible) file: "network.json" holds the structure and the
# version, every array is stored as .npy next to it (no pickle, ever).


def _pack(obj: Any, arrays: dict[str, np.ndarray], key: str) -> Any:
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        arrays[key] = obj
        return {"__array__": key}
    if sp.issparse(obj):
        m = sp.csr_matrix(obj)
        for part in ("data", "indices", "indptr"):
            arrays[f"{key}.{part}"] = getattr(m, part)
        return {"__csr__": key, "shape": list(m.shape)}
    if isinstance(obj, (list, tuple)):
        return [_pack(v, arrays, f"{key}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {k: _pack(v, arrays, f"{key}.{k}") for k, v in obj.items()}
    if dataclasses.is_dataclass(obj):
        return {"__type__": type(obj).__name__, **{f.name: _pack(getattr(obj, f.name), arrays, f"{key}.{f.name}") for f in dataclasses.fields(obj)}}
    raise TypeError(f"cannot serialise {type(obj).__name__}")


_TYPES = {c.__name__: c for c in (NeuronQuant, Population, ConvSpec, Projection)}
_TUPLE_FIELDS = {"shape", "in_shape", "out_shape", "stride", "padding"}


def _unpack(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, list):
        return [_unpack(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__array__" in obj:
        return arrays[obj["__array__"]]
    if "__csr__" in obj:
        k = obj["__csr__"]
        return sp.csr_matrix((arrays[f"{k}.data"], arrays[f"{k}.indices"], arrays[f"{k}.indptr"]), shape=tuple(obj["shape"]))
    if "__type__" in obj:
        cls = _TYPES[obj["__type__"]]
        kw = {k: _unpack(v, arrays) for k, v in obj.items() if k != "__type__"}
        kw = {k: tuple(v) if k in _TUPLE_FIELDS and v is not None else v for k, v in kw.items()}
        return cls(**kw)
    return {k: _unpack(v, arrays) for k, v in obj.items()}


def save(net: Network, path: str | Path) -> None:
    """Write ``net`` to ``path`` (a zip of JSON + .npy arrays, versioned)."""
    arrays: dict[str, np.ndarray] = {}
    header = {
        "format": "neurocompile-network",
        "version": IR_VERSION,
        "input": net.input,
        "output": net.output,
        "meta": _pack(net.meta, arrays, "meta"),
        "populations": [_pack(p, arrays, f"pop{i}") for i, p in enumerate(net.populations)],
        "projections": [_pack(p, arrays, f"proj{i}") for i, p in enumerate(net.projections)],
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("network.json", json.dumps(header, indent=1))
        for k, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.asarray(a), allow_pickle=False)
            z.writestr(f"{k}.npy", buf.getvalue())


def load(path: str | Path) -> Network:
    try:
        with zipfile.ZipFile(path) as z:
            header = json.loads(z.read("network.json"))
            arrays = {n[:-4]: np.load(io.BytesIO(z.read(n)), allow_pickle=False) for n in z.namelist() if n.endswith(".npy")}
    except (zipfile.BadZipFile, KeyError, FileNotFoundError) as e:
        raise NeurocompileError(f"{path}: not a neurocompile network artifact ({e})") from None
    if header.get("format") != "neurocompile-network":
        raise NeurocompileError(f"{path}: not a neurocompile network artifact")
    if header.get("version") != IR_VERSION:
        raise NeurocompileError(f"{path}: IR version {header.get('version')} is not supported (this build reads version {IR_VERSION})")
    return Network(
        populations=tuple(_unpack(p, arrays) for p in header["populations"]),
        projections=tuple(_unpack(p, arrays) for p in header["projections"]),
        input=header["input"],
        output=header["output"],
        meta=_unpack(header["meta"], arrays),
    )
