"""Saving and loading recurrent SNNs without pickle.

A file is a zip: ``rsnn.json`` (format name, version, model kind, config, dtype)
and one ``.npy`` per ``state_dict`` entry (parameters in the model's dtype, the
recurrent mask as bool). Loading rebuilds the model from the config, then checks
every array (present, shape, dtype, finite, within the chip's ranges) before
copying it in, so a file either loads bit for bit or is refused with one line
naming the problem. The spike function is code, not data: pass it to
:func:`load_rsnn` again.
"""
from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import NeurocompileError
from ..files import ArchiveTooLarge, NotAZip, first_line, open_zip, read_input_file, read_npy_member
from ..sim.float_sim import SpikeFunction
from .config import CHRSNNConfig, HRSNNConfig, RSNNConfig
from .models import RecurrentSNN

FORMAT = "neurocompile-rsnn"
VERSION = 1
HEADER = "rsnn.json"
_CONFIGS: dict[str, type[RSNNConfig]] = {"HRSNN": HRSNNConfig, "CHRSNN": CHRSNNConfig}
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same model always gives the same bytes
# (low, high, low included) per entry whose values the chip constrains
_RANGES = {
    "hidden.leak": (0.0, 1.0, False),
    "hidden.current_decay": (0.0, 1.0, False),
    "hidden.threshold": (0.0, np.inf, False),
    "readout.leak": (0.0, 1.0, True),
}


class _Bad(Exception):
    """A problem with the file's content; :func:`load_rsnn` words it as one NeurocompileError."""


def _kind_name(config: RSNNConfig) -> str:
    for name, cls in _CONFIGS.items():
        if type(config) is cls:
            return name
    raise NeurocompileError(f"cannot save a model with a {type(config).__name__}")


def save_rsnn(model: RecurrentSNN, path: str | Path) -> None:
    """Write ``model`` (config + every parameter and buffer) to ``path``; deterministic bytes."""
    state = model.state_dict()
    dtype = model.hidden.threshold.dtype
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kind": _kind_name(model.config),
        "config": dataclasses.asdict(model.config),
        "dtype": str(dtype).removeprefix("torch."),
        "arrays": sorted(state),
    }

    def member(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member(HEADER), json.dumps(header, indent=1))
        for key in sorted(state):
            buf = io.BytesIO()
            np.save(buf, state[key].detach().cpu().numpy(), allow_pickle=False)
            z.writestr(member(f"{key}.npy"), buf.getvalue())


def load_rsnn(path: str | Path, *, spike_fn: SpikeFunction | None = None) -> RecurrentSNN:
    """Read a model written by :func:`save_rsnn`; anything else raises a one-line NeurocompileError."""
    path = Path(path)
    data = read_input_file(path, "RSNN model file")
    try:
        z = open_zip(data, path, "RSNN model file")
    except ArchiveTooLarge as e:
        raise NeurocompileError(f"{path}: not a valid neurocompile RSNN file: {e.reason}") from None
    except NotAZip:
        raise NeurocompileError(f"{path}: not a neurocompile RSNN file (not a zip archive)") from None
    try:
        with z:
            return _read(z, path, spike_fn)
    except _Bad as e:
        raise NeurocompileError(f"{path}: not a valid neurocompile RSNN file: {e}") from None


def _read(z: zipfile.ZipFile, path: Path, spike_fn: SpikeFunction | None) -> RecurrentSNN:
    names = z.namelist()
    if len(set(names)) != len(names):
        raise _Bad("duplicate zip members")
    if HEADER not in names:
        raise _Bad(f"no {HEADER} in the zip")
    try:
        header = json.loads(z.read(HEADER).decode("utf-8"))
    except Exception as e:  # noqa: BLE001 - zlib, unicode and json errors alike mean a damaged header
        raise _Bad(f"{HEADER} is unreadable ({first_line(e)})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _Bad(f"{HEADER} does not name the format {FORMAT!r}")
    if header.get("version") != VERSION:
        raise _Bad(f"format version {header.get('version')!r} is not supported (this build reads version {VERSION})")
    dtype = _DTYPES.get(header.get("dtype"))  # type: ignore[arg-type]
    if dtype is None:
        raise _Bad(f"dtype {header.get('dtype')!r} is not one of {', '.join(_DTYPES)}")
    config = _config(header.get("kind"), header.get("config"))
    model = RecurrentSNN.from_config(config, spike_fn=spike_fn, dtype=dtype)
    expected = model.state_dict()
    members = {n[:-4] for n in names if n.endswith(".npy")}
    extra = sorted(set(names) - {HEADER} - {f"{k}.npy" for k in expected})
    if extra:
        raise _Bad(f"unexpected member {extra[0]!r}")
    missing = sorted(set(expected) - members)
    if missing:
        raise _Bad(f"array {missing[0]!r} is missing")
    arrays = {key: _array(z, key, ref, path) for key, ref in expected.items()}
    _check_mask(arrays)
    model.load_state_dict({k: torch.from_numpy(a) for k, a in arrays.items()})
    return model


def _config(kind: Any, fields: Any) -> RSNNConfig:
    if kind not in _CONFIGS:
        raise _Bad(f"model kind {kind!r} is unknown (known: {', '.join(_CONFIGS)})")
    cls = _CONFIGS[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    if not isinstance(fields, dict) or set(fields) != names:
        got = sorted(fields) if isinstance(fields, dict) else type(fields).__name__
        raise _Bad(f"the {kind} config must have exactly the fields {sorted(names)}, got {got}")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    try:
        return cls(**kw)
    except NeurocompileError as e:
        raise _Bad(f"config: {e}") from None


def _array(z: zipfile.ZipFile, key: str, ref: torch.Tensor, path: Path) -> np.ndarray:
    try:
        a = read_npy_member(z, f"{key}.npy", path, "RSNN model file")
    except Exception as e:  # noqa: BLE001 - zlib, numpy and zipfile raise many types for bad bytes
        raise _Bad(f"array {key!r} is unreadable ({first_line(e)})") from None
    want = ref.numpy().dtype
    if a.shape != tuple(ref.shape) or a.dtype != want:
        raise _Bad(f"array {key!r} is {a.dtype}{list(a.shape)}, expected {want}{list(ref.shape)}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise _Bad(f"array {key!r} holds NaN or infinite values")
    if key in _RANGES:
        lo, hi, lo_in = _RANGES[key]
        ok = (a >= lo if lo_in else a > lo) & (a <= hi)
        if not ok.all():
            raise _Bad(f"array {key!r} has values outside {'[' if lo_in else '('}{lo}, {hi}]")
    return a


def _check_mask(arrays: dict[str, np.ndarray]) -> None:
    w, mask = arrays["hidden.recurrent_weight"], arrays["hidden.recurrent_mask"]
    if np.any(w[~mask] != 0):
        raise _Bad("hidden.recurrent_weight has non-zero weights where hidden.recurrent_mask has no synapse")
