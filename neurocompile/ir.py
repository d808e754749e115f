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
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .errors import NeurocompileError
from .files import ArchiveTooLarge, NotAZip, first_line, open_zip, read_input_file, read_npy_member

IR_VERSION = 1
MAX_TIMESTEPS = 4096
MAX_SEED = 2**32  # exclusive: numpy and scikit-learn accept seeds in [0, 2**32)
"""Time steps per sample at most: one period's frames and state must fit in memory, and rate-coded
conversion reaches the ANN's accuracy long before (the accuracy-vs-T sweep in every report shows it)."""

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
            from .ir_geometry import conv_matrix

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
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: the same network gives the same bytes
_ZIP_MODE = 0o644 << 16  # fixed permission bits (regular file, rw-r--r--)
MAX_POPULATION_SIZE = 1 << 24  # neurons in one population of a loaded artifact
MAX_CONV_TAPS = 1 << 28  # C_out * C_in/groups * kH * kW * H_out * W_out of one conv projection
_REBUILD = "rebuild it with `neurocompile build` / `neurocompile ingest`"


class _Corrupt(Exception):
    """Raised inside :func:`load` for a structural problem; turned into one NeurocompileError."""


def _unpack(obj: Any, arrays: dict[str, np.ndarray], where: str = "", depth: int = 0) -> Any:
    if depth > 64:
        raise _Corrupt(f"{where or 'network.json'} is nested too deeply")
    if isinstance(obj, list):
        return [_unpack(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]
    if not isinstance(obj, dict):
        return obj
    if "__array__" in obj:
        key = obj["__array__"]
        if not isinstance(key, str) or set(obj) != {"__array__"}:
            raise _Corrupt(f"{where}: malformed array reference")
        if key not in arrays:
            raise _Corrupt(f"{where}: array {key!r} is missing")
        return arrays[key]
    if "__csr__" in obj:
        return _unpack_csr(obj, arrays, where)
    if "__type__" in obj:
        name = obj["__type__"]
        if not isinstance(name, str) or name not in _TYPES:
            raise _Corrupt(f"{where}: unknown object type {name!r} (known: {', '.join(_TYPES)})")
        cls = _TYPES[name]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        given = {k for k in obj if k != "__type__"}
        unknown = sorted(given - set(fields))
        if unknown:
            raise _Corrupt(f"{where}: {name} has unknown fields {', '.join(map(repr, unknown))}")
        required = [f for f, fd in fields.items()
                    if fd.default is dataclasses.MISSING and fd.default_factory is dataclasses.MISSING]  # type: ignore[misc]
        missing = [f for f in required if f not in given]
        if missing:
            raise _Corrupt(f"{where}: {name} lacks fields {', '.join(missing)}")
        kw = {k: _unpack(v, arrays, f"{where}.{k}", depth + 1) for k, v in obj.items() if k != "__type__"}
        for k in _TUPLE_FIELDS & set(kw):
            if kw[k] is not None:
                if not isinstance(kw[k], list):
                    raise _Corrupt(f"{where}.{k}: expected a list of integers, got {type(kw[k]).__name__}")
                kw[k] = tuple(kw[k])
        return cls(**kw)
    return {k: _unpack(v, arrays, f"{where}.{k}", depth + 1) for k, v in obj.items()}


def _unpack_csr(obj: dict, arrays: dict[str, np.ndarray], where: str) -> sp.csr_matrix:
    key, shape = obj.get("__csr__"), obj.get("shape")
    if not isinstance(key, str) or set(obj) != {"__csr__", "shape"}:
        raise _Corrupt(f"{where}: malformed sparse-matrix reference")
    if not (isinstance(shape, list) and len(shape) == 2 and all(_is_int(d) and 0 <= d <= MAX_POPULATION_SIZE for d in shape)):
        raise _Corrupt(f"{where}: sparse matrix shape {shape!r} is not two sizes in [0, {MAX_POPULATION_SIZE}]")
    parts = {}
    for part in ("data", "indices", "indptr"):
        if f"{key}.{part}" not in arrays:
            raise _Corrupt(f"{where}: sparse-matrix array {key}.{part!s} is missing")
        parts[part] = arrays[f"{key}.{part}"]
    data, indices, indptr = parts["data"], parts["indices"], parts["indptr"]
    if any(a.ndim != 1 for a in parts.values()):
        raise _Corrupt(f"{where}: sparse-matrix arrays must be vectors")
    if data.dtype.kind not in "biuf" or indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
        raise _Corrupt(f"{where}: sparse-matrix arrays have wrong dtypes ({data.dtype}, {indices.dtype}, {indptr.dtype})")
    rows, cols = shape
    if len(indptr) != rows + 1 or len(indices) != len(data) or (len(indptr) and (indptr[0] != 0 or indptr[-1] != len(indices))):
        raise _Corrupt(f"{where}: sparse-matrix row pointers do not match its shape {tuple(shape)} and {len(data)} entries")
    if np.any(np.diff(indptr.astype(np.int64)) < 0):
        raise _Corrupt(f"{where}: sparse-matrix row pointers decrease")
    if len(indices) and (indices.min() < 0 or indices.max() >= cols):
        raise _Corrupt(f"{where}: sparse-matrix column indices fall outside [0, {cols})")
    return sp.csr_matrix((data, indices.astype(np.int64), indptr.astype(np.int64)), shape=(rows, cols))


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, (float, np.floating))) and math.isfinite(float(v))


def _check_array(a: Any, where: str, ndim: int | None = None, kinds: str = "biuf", finite: bool = True) -> None:
    if not isinstance(a, np.ndarray):
        raise _Corrupt(f"{where}: expected an array, got {type(a).__name__}")
    if a.dtype.kind not in kinds:
        raise _Corrupt(f"{where}: array has dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise _Corrupt(f"{where}: array has shape {a.shape}, expected {ndim} dimensions")
    if finite and a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise _Corrupt(f"{where}: array holds NaN or infinite values")


def _check_population(p: Any, i: int) -> None:
    where = f"population {i}"
    if not isinstance(p, Population):
        raise _Corrupt(f"{where} is not a Population")
    if not isinstance(p.name, str) or not p.name:
        raise _Corrupt(f"{where}: name must be a non-empty string")
    where = f"population {p.name!r}"
    if not (isinstance(p.shape, tuple) and 1 <= len(p.shape) <= 3 and all(_is_int(d) and d > 0 for d in p.shape)):
        raise _Corrupt(f"{where}: shape {p.shape!r} is not 1 to 3 positive sizes")
    if p.size > MAX_POPULATION_SIZE:
        raise _Corrupt(f"{where}: {p.size} neurons, over the limit of {MAX_POPULATION_SIZE}")
    if p.kind not in ("input", "spiking", "readout"):
        raise _Corrupt(f"{where}: unknown kind {p.kind!r}")
    if p.reset not in ("subtract", "zero"):
        raise _Corrupt(f"{where}: unknown reset {p.reset!r}")
    for f in ("threshold", "leak", "current_decay"):
        if not _is_num(getattr(p, f)):
            raise _Corrupt(f"{where}: {f} must be a finite number, got {getattr(p, f)!r}")
    if not (0 <= p.leak <= 1 and 0 <= p.current_decay <= 1):
        raise _Corrupt(f"{where}: leak and current_decay must lie in [0, 1]")
    if p.bias is not None:
        _check_array(p.bias, f"{where}: bias", ndim=1)
        if p.bias.shape != (p.size,):
            raise _Corrupt(f"{where}: bias has {p.bias.shape[0]} values for {p.size} neurons")
    q = p.quant
    if q is not None:
        if not isinstance(q, NeuronQuant):
            raise _Corrupt(f"{where}: quant is not a NeuronQuant")
        for f, lo, hi in (("vth", 0, 1 << 62), ("bias_exp", -64, 64), ("du", 0, 4095), ("dv", 0, 4095)):
            v = getattr(q, f)
            if not (_is_int(v) and lo <= v <= hi):
                raise _Corrupt(f"{where}: quant.{f} must be an integer in [{lo}, {hi}], got {v!r}")
        _check_array(q.bias_mant, f"{where}: quant.bias_mant", ndim=1, kinds="iu")
        if q.bias_mant.shape != (p.size,):
            raise _Corrupt(f"{where}: quant.bias_mant has {q.bias_mant.shape[0]} values for {p.size} neurons")


def _check_projection(pr: Any, i: int, sizes: dict[str, int], shapes: dict[str, tuple]) -> None:
    where = f"projection {i}"
    if not isinstance(pr, Projection):
        raise _Corrupt(f"{where} is not a Projection")
    for f in ("name", "source", "target"):
        if not isinstance(getattr(pr, f), str):
            raise _Corrupt(f"{where}: {f} must be a string")
    where = f"projection {pr.name!r}"
    for f in ("source", "target"):
        if getattr(pr, f) not in sizes:
            raise _Corrupt(f"{where}: {f} {getattr(pr, f)!r} is not a population")
    if pr.kind not in ("dense", "sparse", "conv"):
        raise _Corrupt(f"{where}: unknown kind {pr.kind!r}")
    if not (_is_int(pr.weight_exp) and -64 <= pr.weight_exp <= 64):
        raise _Corrupt(f"{where}: weight_exp must be an integer in [-64, 64], got {pr.weight_exp!r}")
    want = (sizes[pr.target], sizes[pr.source])
    for f in ("weight", "qweight"):
        w = getattr(pr, f)
        if w is None:
            if f == "weight":
                raise _Corrupt(f"{where}: weight is missing")
            continue
        kinds = "biuf" if f == "weight" else "iu"
        if pr.kind == "sparse":
            if not sp.issparse(w):
                raise _Corrupt(f"{where}: {f} of a sparse projection is not a sparse matrix")
            if w.dtype.kind not in kinds or (w.dtype.kind == "f" and not np.all(np.isfinite(w.data))):
                raise _Corrupt(f"{where}: {f} has dtype {w.dtype} or non-finite values")
            if w.shape != want:
                raise _Corrupt(f"{where}: {f} has shape {w.shape}, expected {want}")
        elif pr.kind == "dense":
            _check_array(w, f"{where}: {f}", ndim=2, kinds=kinds)
            if w.shape != want:
                raise _Corrupt(f"{where}: {f} has shape {w.shape}, expected {want}")
        else:
            _check_array(w, f"{where}: {f}", ndim=4, kinds=kinds)
            _check_conv(pr, w, where, shapes)
    if pr.kind != "conv" and pr.conv is not None:
        raise _Corrupt(f"{where}: a {pr.kind} projection has a conv spec")
    if pr.qweight is not None and np.shape(pr.qweight) != np.shape(pr.weight):
        raise _Corrupt(f"{where}: qweight shape {np.shape(pr.qweight)} differs from weight shape {np.shape(pr.weight)}")


def _check_conv(pr: Projection, w: np.ndarray, where: str, shapes: dict[str, tuple]) -> None:
    c = pr.conv
    if not isinstance(c, ConvSpec):
        raise _Corrupt(f"{where}: a conv projection lacks its ConvSpec")
    ok = all(isinstance(t, tuple) and len(t) == n and all(_is_int(v) and v >= lo for v in t)
             for t, n, lo in ((c.in_shape, 3, 1), (c.out_shape, 3, 1), (c.stride, 2, 1), (c.padding, 2, 0)))
    if not ok or not (_is_int(c.groups) and c.groups >= 1):
        raise _Corrupt(f"{where}: malformed conv spec {c!r}")
    cin, h, wd = c.in_shape
    cout, ho, wo = c.out_shape
    if c.in_shape != tuple(shapes[pr.source]) or c.out_shape != tuple(shapes[pr.target]):
        raise _Corrupt(f"{where}: conv shapes {c.in_shape} -> {c.out_shape} do not match its populations "
                       f"{shapes[pr.source]} -> {shapes[pr.target]}")
    if cin % c.groups or cout % c.groups or w.shape[0] != cout or w.shape[1] != cin // c.groups:
        raise _Corrupt(f"{where}: kernel shape {w.shape} does not fit {cin} -> {cout} channels in {c.groups} groups")
    kh, kw = w.shape[2:]
    if (h + 2 * c.padding[0] - kh) // c.stride[0] + 1 != ho or (wd + 2 * c.padding[1] - kw) // c.stride[1] + 1 != wo:
        raise _Corrupt(f"{where}: output size {ho}x{wo} does not follow from input {h}x{wd}, kernel {kh}x{kw}, "
                       f"stride {c.stride} and padding {c.padding}")
    if math.prod(w.shape) * ho * wo > MAX_CONV_TAPS:
        raise _Corrupt(f"{where}: {math.prod(w.shape) * ho * wo} kernel taps, over the limit of {MAX_CONV_TAPS}")


def _check_meta(meta: Any) -> None:
    if not isinstance(meta, dict):
        raise _Corrupt(f"meta must be an object, got {type(meta).__name__}")
    for key, ok in (("timesteps", lambda v: _is_int(v) and 0 < v <= MAX_TIMESTEPS), ("seed", lambda v: _is_int(v) and 0 <= v < MAX_SEED),
                    ("encoding", lambda v: isinstance(v, str)), ("data", lambda v: isinstance(v, str)),
                    ("source_format", lambda v: isinstance(v, str)), ("threshold_method", lambda v: isinstance(v, str)),
                    ("model", lambda v: isinstance(v, str)), ("mapping", lambda v: isinstance(v, dict)),
                    ("quantization", lambda v: isinstance(v, dict))):
        if key in meta and not ok(meta[key]):
            raise _Corrupt(f"meta.{key} has the wrong type or value: {meta[key]!r}"[:200])


def _build(header: Any, arrays: dict[str, np.ndarray]) -> Network:
    if not isinstance(header, dict):
        raise _Corrupt("network.json is not an object")
    for key, typ in (("input", str), ("output", str), ("populations", list), ("projections", list), ("meta", dict)):
        if key not in header:
            raise _Corrupt(f"network.json lacks {key!r}")
        if not isinstance(header[key], typ):
            raise _Corrupt(f"network.json: {key!r} must be a {typ.__name__}, got {type(header[key]).__name__}")
    if not header["populations"]:
        raise _Corrupt("the network has no populations")
    pops = tuple(_unpack(p, arrays, f"populations[{i}]") for i, p in enumerate(header["populations"]))
    projs = tuple(_unpack(p, arrays, f"projections[{i}]") for i, p in enumerate(header["projections"]))
    meta = _unpack(header["meta"], arrays, "meta")
    for i, p in enumerate(pops):
        _check_population(p, i)
    names = [p.name for p in pops]
    if len(set(names)) != len(names):
        raise _Corrupt("duplicate population names")
    sizes = {p.name: p.size for p in pops}
    shapes = {p.name: p.shape for p in pops}
    for i, pr in enumerate(projs):
        _check_projection(pr, i, sizes, shapes)
    if len({pr.name for pr in projs}) != len(projs):
        raise _Corrupt("duplicate projection names")
    _check_meta(meta)
    if pops[0].kind != "input" or any(p.kind == "input" for p in pops[1:]):
        raise _Corrupt("the first population, and only it, must be the input")
    if header["output"] not in names[1:]:
        raise _Corrupt(f"output {header['output']!r} is not a non-input population")
    has_q = {pr.qweight is not None for pr in projs}
    has_n = {p.quant is not None for p in pops[1:]}
    if len(has_q) > 1 or len(has_n) > 1 or (projs and has_q != has_n):
        raise _Corrupt("quantised fields are present on only part of the network (qweight / quant)")
    net = Network(populations=pops, projections=projs, input=header["input"], output=header["output"], meta=meta)
    try:
        net.validate()
        net.depth()
    except NeurocompileError as e:
        raise _Corrupt(str(e)) from None
    return net


def save(net: Network, path: str | Path) -> None:
    """Write ``net`` to ``path`` (a zip of JSON + .npy arrays, versioned).

    Deterministic: the same network always gives byte-identical files (fixed member
    order, timestamps, permission bits and compression).
    """
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

    def member(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.create_system = 3
        info.external_attr = _ZIP_MODE
        return info

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member("network.json"), json.dumps(header, indent=1), compresslevel=6)
        for k, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.asarray(a), allow_pickle=False)
            z.writestr(member(f"{k}.npy"), buf.getvalue(), compresslevel=6)


def load(path: str | Path) -> Network:
    """Read a network artifact written by :func:`save`; anything else is a one-line NeurocompileError.

    The file must be a regular file under :data:`MAX_INPUT_BYTES`; the zip's declared unpacked size
    is checked before decompressing; arrays are never unpickled; the structure is validated
    (known types and fields, field types, shapes against populations, CSR indices, quantised
    fields, :meth:`Network.validate`) before the network is returned.
    """
    path = Path(path)
    data = read_input_file(path, "network artifact")

    def bad(what: str) -> NeurocompileError:
        return NeurocompileError(f"{path}: not a valid neurocompile network artifact: {what}; {_REBUILD}")

    def alien(what: str) -> NeurocompileError:  # not an artifact at all (vs. a damaged one)
        return NeurocompileError(f"{path}: not a neurocompile network artifact ({what}); {_REBUILD}")

    try:
        z = open_zip(data, path, "network artifact")
    except ArchiveTooLarge as e:
        raise bad(e.reason) from None
    except NotAZip:
        raise alien("not a zip archive") from None
    try:
        with z:
            names = z.namelist()
            if len(set(names)) != len(names):
                raise _Corrupt("duplicate zip members")
            if "network.json" not in names:
                raise alien("no network.json in the zip")
            raw = z.read("network.json")
            try:
                header = json.loads(raw.decode("utf-8"))
            except (ValueError, RecursionError) as e:
                raise _Corrupt(f"network.json is not valid JSON ({first_line(e)})") from None
            if not isinstance(header, dict) or header.get("format") != "neurocompile-network":
                raise alien("network.json does not describe a neurocompile network")
            if header.get("version") != IR_VERSION:
                raise NeurocompileError(
                    f"{path}: IR version {header.get('version')!r} is not supported (this build reads version {IR_VERSION}); {_REBUILD}"
                )
            arrays = {}
            for n in names:
                if n.endswith(".npy"):
                    try:
                        arrays[n[:-4]] = read_npy_member(z, n, path, "network artifact")
                    except Exception as e:  # noqa: BLE001 - zlib, numpy and zipfile raise many types for bad bytes
                        raise _Corrupt(f"array {n} is unreadable ({first_line(e)})") from None
                elif n != "network.json":
                    raise _Corrupt(f"unexpected member {n!r}")
            return _build(header, arrays)
    except NeurocompileError:
        raise
    except _Corrupt as e:
        raise bad(str(e)) from None
    except Exception as e:  # noqa: BLE001 - whatever else damaged bytes trigger is still a damaged artifact
        raise bad(f"{type(e).__name__}: {first_line(e)}") from None
