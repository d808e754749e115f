"""The artifact: one zip (npz-compatible) file, ``network.json`` for the structure and version, every array as .npy.

Never pickle. Deterministic: the same network gives byte-identical files.
Version 1 artifacts are read through :mod:`.migrate`.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NeurocompileError
from ..files import ArchiveTooLarge, NotAZip, first_line, open_zip, read_input_file, read_npy_member
from .checks import check_conversion, check_fixed, check_mapping, check_population, check_projection, check_pruning, check_settings
from .codec import Corrupt, pack, unpack
from .graph import Network
from .migrate import from_v1
from .records import RunSettings

IR_VERSION = 2
READABLE_VERSIONS = (1, 2)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: the same network gives the same bytes
_ZIP_MODE = 0o644 << 16  # fixed permission bits (regular file, rw-r--r--)
_REBUILD = "rebuild it with `neurocompile build` / `neurocompile ingest`"


def _build(header: Any, arrays: dict[str, np.ndarray]) -> Network:
    if not isinstance(header, dict):
        raise Corrupt("network.json is not an object")
    for key, typ in (("inputs", list), ("outputs", list), ("populations", list), ("projections", list), ("settings", dict)):
        if key not in header:
            raise Corrupt(f"network.json lacks {key!r}")
        if not isinstance(header[key], typ):
            raise Corrupt(f"network.json: {key!r} must be a {typ.__name__}, got {type(header[key]).__name__}")
    if not header["populations"]:
        raise Corrupt("the network has no populations")
    pops = tuple(unpack(p, arrays, f"populations[{i}]") for i, p in enumerate(header["populations"]))
    projs = tuple(unpack(p, arrays, f"projections[{i}]") for i, p in enumerate(header["projections"]))
    for i, p in enumerate(pops):
        check_population(p, i)
    by_name = {p.name: p for p in pops}
    if len(by_name) != len(pops):
        raise Corrupt("duplicate population names")
    for i, pr in enumerate(projs):
        check_projection(pr, i, by_name)
    by_proj = {pr.name: pr for pr in projs}
    if len(by_proj) != len(projs):
        raise Corrupt("duplicate projection names")
    settings = unpack(header["settings"], arrays, "settings")
    conversion = unpack(header.get("conversion"), arrays, "conversion")
    fixed = unpack(header.get("fixed"), arrays, "fixed")
    mapping = unpack(header.get("mapping"), arrays, "mapping")
    pruning = unpack(header.get("pruning"), arrays, "pruning")
    check_settings(settings)
    check_pruning(pruning, by_name)
    check_conversion(conversion)
    check_fixed(fixed, by_name, by_proj)
    check_mapping(mapping, by_name)
    names = [header["inputs"], header["outputs"]]
    if not all(isinstance(n, str) for group in names for n in group):
        raise Corrupt("inputs and outputs must be lists of population names")
    net = Network(populations=pops, projections=projs, inputs=tuple(header["inputs"]), outputs=tuple(header["outputs"]),
                  settings=settings, conversion=conversion, fixed=fixed, mapping=mapping, pruning=pruning)
    try:
        net.validate()
        if len(net.outputs) == 1:
            net.depth()
    except NeurocompileError as e:
        raise Corrupt(str(e)) from None
    return net


def save(net: Network, path: str | Path) -> None:
    """Write ``net`` to ``path`` (a zip of JSON + .npy arrays, versioned)."""
    arrays: dict[str, np.ndarray] = {}
    header = {
        "format": "neurocompile-network",
        "version": IR_VERSION,
        "inputs": list(net.inputs),
        "outputs": list(net.outputs),
        "settings": pack(net.settings, arrays, "settings"),
        "conversion": pack(net.conversion, arrays, "conversion"),
        "fixed": pack(net.fixed, arrays, "fixed"),
        "mapping": pack(net.mapping, arrays, "mapping"),
        "pruning": pack(net.pruning, arrays, "pruning"),
        "populations": [pack(p, arrays, f"pop{i}") for i, p in enumerate(net.populations)],
        "projections": [pack(p, arrays, f"proj{i}") for i, p in enumerate(net.projections)],
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
    """Read a network artifact written by :func:`save` (or a version-1 one); anything else is a one-line NeurocompileError.

    The file must be a regular file under the input size limit; the zip's declared
    unpacked size is checked before decompressing; arrays are never unpickled; the
    structure is validated field by field (:mod:`.checks`) and as a graph
    (:meth:`Network.validate`) before the network is returned.
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
                raise Corrupt("duplicate zip members")
            if "network.json" not in names:
                raise alien("no network.json in the zip")
            raw = z.read("network.json")
            try:
                header = json.loads(raw.decode("utf-8"))
            except (ValueError, RecursionError) as e:
                raise Corrupt(f"network.json is not valid JSON ({first_line(e)})") from None
            if not isinstance(header, dict) or header.get("format") != "neurocompile-network":
                raise alien("network.json does not describe a neurocompile network")
            version = header.get("version")
            if version not in READABLE_VERSIONS or isinstance(version, bool):
                raise NeurocompileError(
                    f"{path}: IR version {version!r} is not supported (this build reads versions "
                    f"{', '.join(map(str, READABLE_VERSIONS))}); {_REBUILD}"
                )
            arrays = {}
            for n in names:
                if n.endswith(".npy"):
                    try:
                        arrays[n[:-4]] = read_npy_member(z, n, path, "network artifact")
                    except Exception as e:  # noqa: BLE001 - zlib, numpy and zipfile raise many types for bad bytes
                        raise Corrupt(f"array {n} is unreadable ({first_line(e)})") from None
                elif n != "network.json":
                    raise Corrupt(f"unexpected member {n!r}")
            return _build(from_v1(header) if version == 1 else header, arrays)
    except NeurocompileError:
        raise
    except Corrupt as e:
        raise bad(str(e)) from None
    except Exception as e:  # noqa: BLE001 - whatever else damaged bytes trigger is still a damaged artifact
        raise bad(f"{type(e).__name__}: {first_line(e)}") from None


__all__ = ["IR_VERSION", "READABLE_VERSIONS", "RunSettings", "load", "save"]
