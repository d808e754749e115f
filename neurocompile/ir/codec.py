"""JSON + arrays ⇄ IR objects: the generic half of the file format (no pickle, ever).

Dataclasses become ``{"__type__": name, field: ...}``, numpy arrays
``{"__array__": key}`` and CSR matrices ``{"__csr__": key, "shape": ...}``, with
the arrays stored beside the JSON under ``key``. Keys are built from positions,
never from user-chosen names, so a population's name cannot shape a zip member.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.sparse as sp

from .fixed import FixedPoint, NeuronFixed, SynapseFixed
from .graph import ConvSpec, Population, Projection
from .limits import MAX_POPULATION_SIZE
from .records import ConversionRecord, PruningRecord, RunSettings

TYPES: dict[str, type] = {c.__name__: c for c in (Population, ConvSpec, Projection, NeuronFixed, SynapseFixed, FixedPoint,
                                                   RunSettings, ConversionRecord, PruningRecord)}
TUPLE_FIELDS = {"shape", "in_shape", "out_shape", "stride", "padding"}
MAX_DEPTH = 64


class Corrupt(Exception):
    """A structural problem in an artifact; :func:`neurocompile.ir.serialize.load` turns it into one NeurocompileError."""


def pack(obj: Any, arrays: dict[str, np.ndarray], key: str) -> Any:
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
        return [pack(v, arrays, f"{key}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {k: pack(v, arrays, f"{key}.{i}") for i, (k, v) in enumerate(obj.items())}
    if dataclasses.is_dataclass(obj):
        return {"__type__": type(obj).__name__, **{f.name: pack(getattr(obj, f.name), arrays, f"{key}.{f.name}") for f in dataclasses.fields(obj)}}
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def unpack(obj: Any, arrays: dict[str, np.ndarray], where: str = "", depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise Corrupt(f"{where or 'network.json'} is nested too deeply")
    if isinstance(obj, list):
        return [unpack(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]
    if not isinstance(obj, dict):
        return obj
    if "__array__" in obj:
        key = obj["__array__"]
        if not isinstance(key, str) or set(obj) != {"__array__"}:
            raise Corrupt(f"{where}: malformed array reference")
        if key not in arrays:
            raise Corrupt(f"{where}: array {key!r} is missing")
        return arrays[key]
    if "__csr__" in obj:
        return _unpack_csr(obj, arrays, where)
    if "__type__" in obj:
        return _unpack_dataclass(obj, arrays, where, depth)
    return {k: unpack(v, arrays, f"{where}.{k}", depth + 1) for k, v in obj.items()}


def _unpack_dataclass(obj: dict, arrays: dict[str, np.ndarray], where: str, depth: int) -> Any:
    name = obj["__type__"]
    if not isinstance(name, str) or name not in TYPES:
        raise Corrupt(f"{where}: unknown object type {name!r} (known: {', '.join(TYPES)})")
    cls = TYPES[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    given = {k for k in obj if k != "__type__"}
    unknown = sorted(given - set(fields))
    if unknown:
        raise Corrupt(f"{where}: {name} has unknown fields {', '.join(map(repr, unknown))}")
    required = [f for f, fd in fields.items()
                if fd.default is dataclasses.MISSING and fd.default_factory is dataclasses.MISSING]  # type: ignore[misc]
    missing = [f for f in required if f not in given]
    if missing:
        raise Corrupt(f"{where}: {name} lacks fields {', '.join(missing)}")
    kw = {k: unpack(v, arrays, f"{where}.{k}", depth + 1) for k, v in obj.items() if k != "__type__"}
    for k in TUPLE_FIELDS & set(kw):
        if kw[k] is not None:
            if not isinstance(kw[k], list):
                raise Corrupt(f"{where}.{k}: expected a list of integers, got {type(kw[k]).__name__}")
            kw[k] = tuple(kw[k])
    return cls(**kw)


def _unpack_csr(obj: dict, arrays: dict[str, np.ndarray], where: str) -> sp.csr_matrix:
    key, shape = obj.get("__csr__"), obj.get("shape")
    if not isinstance(key, str) or set(obj) != {"__csr__", "shape"}:
        raise Corrupt(f"{where}: malformed sparse-matrix reference")
    if not (isinstance(shape, list) and len(shape) == 2 and all(is_int(d) and 0 <= d <= MAX_POPULATION_SIZE for d in shape)):
        raise Corrupt(f"{where}: sparse matrix shape {shape!r} is not two sizes in [0, {MAX_POPULATION_SIZE}]")
    parts = {}
    for part in ("data", "indices", "indptr"):
        if f"{key}.{part}" not in arrays:
            raise Corrupt(f"{where}: sparse-matrix array {key}.{part!s} is missing")
        parts[part] = arrays[f"{key}.{part}"]
    data, indices, indptr = parts["data"], parts["indices"], parts["indptr"]
    if any(a.ndim != 1 for a in parts.values()):
        raise Corrupt(f"{where}: sparse-matrix arrays must be vectors")
    if data.dtype.kind not in "biuf" or indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
        raise Corrupt(f"{where}: sparse-matrix arrays have wrong dtypes ({data.dtype}, {indices.dtype}, {indptr.dtype})")
    rows, cols = shape
    if len(indptr) != rows + 1 or len(indices) != len(data) or (len(indptr) and (indptr[0] != 0 or indptr[-1] != len(indices))):
        raise Corrupt(f"{where}: sparse-matrix row pointers do not match its shape {tuple(shape)} and {len(data)} entries")
    if np.any(np.diff(indptr.astype(np.int64)) < 0):
        raise Corrupt(f"{where}: sparse-matrix row pointers decrease")
    if len(indices) and (indices.min() < 0 or indices.max() >= cols):
        raise Corrupt(f"{where}: sparse-matrix column indices fall outside [0, {cols})")
    return sp.csr_matrix((data, indices.astype(np.int64), indptr.astype(np.int64)), shape=(rows, cols))


def is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
