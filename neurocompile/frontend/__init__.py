"""Front ends: model files → network IR."""
from __future__ import annotations

from pathlib import Path

import torch

from ..ir import Network
from .capture import capture
from .load import load_program, load_program_and_format, program_batch_size, sniff_format


def ingest_program(path: str | Path, sample_shape: tuple[int, ...] | None = None,
                   trust_pickle: bool = False) -> tuple[torch.export.ExportedProgram, Network]:
    """The loaded program (the pipeline checks the IR against it) and its IR; the file is read once."""
    program, fmt = load_program_and_format(Path(path), sample_shape=sample_shape, trust_pickle=trust_pickle)
    net = capture(program)
    return program, net.with_settings(source_format=fmt)


def ingest(path: str | Path, sample_shape: tuple[int, ...] | None = None, trust_pickle: bool = False) -> Network:
    """Load a model file (torch.export, TorchScript, or a trusted pickle) into the IR."""
    return ingest_program(path, sample_shape, trust_pickle)[1]


__all__ = ["ingest", "ingest_program", "capture", "load_program", "load_program_and_format", "program_batch_size", "sniff_format"]
