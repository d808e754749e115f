"""Load a model file into a ``torch.export.ExportedProgram`` without running untrusted code.

Formats are told apart by the zip archive's layout, not by the file suffix:
``torch.export.save`` writes ``models/model.json``; ``torch.jit.save`` writes
``code/``; ``torch.save`` writes only ``data.pkl`` (a pickle, which can run
arbitrary code when loaded, so it is refused unless the user trusts it).
"""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Literal

import torch

from ..errors import NeurocompileError

ModelFormat = Literal["export", "torchscript", "pickle"]

HOW_TO_EXPORT = (
    "export it with `torch.export.save(torch.export.export(model.eval(), (example_input,)), 'model.pt2')` "
    "or `torch.jit.save(torch.jit.trace(model.eval(), example_input), 'model.pt')`"
)


def sniff_format(path: Path) -> ModelFormat:
    if not path.exists():
        raise NeurocompileError(f"model file {path} does not exist")
    if path.suffix == ".nir":
        raise NeurocompileError(f"{path}: NIR graphs are not supported yet; accepted: torch.export (.pt2) or TorchScript (.pt)")
    try:
        names = zipfile.ZipFile(path).namelist()
    except (zipfile.BadZipFile, OSError):
        raise NeurocompileError(
            f"{path} is not a PyTorch archive; accepted: torch.export programs (.pt2) and TorchScript (.pt)"
        ) from None
    if any(n.endswith("models/model.json") or "serialized_exported_program" in n for n in names):
        return "export"
    if any("/code/" in n or n.startswith("code/") for n in names):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "pickle"
    raise NeurocompileError(f"{path}: unrecognised PyTorch archive layout; accepted: .pt2 (torch.export) or .pt (TorchScript)")


def _load_pickle(path: Path, trust_pickle: bool) -> torch.nn.Module:
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except Exception:
        obj = None  # not plain tensors: a pickled module (or worse)
    if isinstance(obj, dict):
        raise NeurocompileError(
            f"{path} holds only a state_dict (weights without an architecture); {HOW_TO_EXPORT}"
        )
    if not trust_pickle:
        raise NeurocompileError(
            f"{path} is a pickle (torch.save), and loading it would run arbitrary code; {HOW_TO_EXPORT}, "
            "or pass --trust-pickle if you trust the file"
        )
    obj = torch.load(path, weights_only=False, map_location="cpu")
    if not isinstance(obj, torch.nn.Module):
        raise NeurocompileError(f"{path} unpickles to {type(obj).__name__}, not a torch.nn.Module; {HOW_TO_EXPORT}")
    return obj


def load_program(
    path: str | Path, sample_shape: tuple[int, ...] | None = None, trust_pickle: bool = False
) -> torch.export.ExportedProgram:
    """Any accepted model file as an ExportedProgram.

    ``sample_shape`` (one sample, no batch dimension) is needed for formats that
    do not record their input shape (TorchScript, pickled modules).
    """
    path = Path(path)
    fmt = sniff_format(path)
    if fmt == "export":
        try:
            return torch.export.load(str(path))
        except Exception as e:
            raise NeurocompileError(f"{path}: torch.export.load failed: {str(e).splitlines()[0]}") from None
    if sample_shape is None:
        raise NeurocompileError(f"{path}: {fmt} models do not record their input shape; give a data set")
    example = (torch.zeros((1, *sample_shape)),)
    if fmt == "torchscript":
        try:
            ts = torch.jit.load(str(path), map_location="cpu")
            from torch._export.converter import TS2EPConverter

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return TS2EPConverter(ts, example).convert()
        except NeurocompileError:
            raise
        except Exception as e:
            raise NeurocompileError(f"{path}: could not convert the TorchScript model: {str(e).splitlines()[0]}") from None
    module = _load_pickle(path, trust_pickle).eval()
    try:
        return torch.export.export(module, example)
    except Exception as e:
        raise NeurocompileError(f"{path}: torch.export could not capture the model: {str(e).splitlines()[0]}") from None
