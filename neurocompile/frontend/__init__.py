"""Front ends: model files → network IR."""
from __future__ import annotations

from pathlib import Path

from ..ir import Network
from .capture import capture
from .load import load_program, load_program_and_format, program_batch_size, sniff_format


def ingest(path: str | Path, sample_shape: tuple[int, ...] | None = None, trust_pickle: bool = False) -> Network:
    """Load a model file (torch.export, TorchScript, or a trusted pickle) into the IR."""
    program, fmt = load_program_and_format(Path(path), sample_shape=sample_shape, trust_pickle=trust_pickle)
    net = capture(program)
    return net.replace(meta={**net.meta, "source_format": fmt})


__all__ = ["ingest", "capture", "load_program", "load_program_and_format", "program_batch_size", "sniff_format"]
