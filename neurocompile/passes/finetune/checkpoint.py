"""Checkpoints of a fine-tuning run: tensors and plain containers only, loaded with ``weights_only=True``.

One file, replaced atomically after every epoch, so an interrupted run
resumes from the last finished epoch and never meets a half-written file.
Loading never unpickles code (``torch.load(weights_only=True)``): a checkpoint
is data, whoever wrote it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ...errors import NeurocompileError

__all__ = ["CHECKPOINT_NAME", "checkpoint_path", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_NAME = "finetune-checkpoint.pt"
FORMAT = "neurocompile-finetune-checkpoint"
VERSION = 1


def checkpoint_path(folder: str | Path) -> Path:
    return Path(folder) / CHECKPOINT_NAME


def save_checkpoint(folder: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) to ``folder``, atomically."""
    path = checkpoint_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(folder: str | Path) -> dict[str, Any] | None:
    """The state in ``folder``'s checkpoint, or None when there is none."""
    path = checkpoint_path(folder)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: one line, not a traceback from the unpickler
        raise NeurocompileError(f"cannot read the fine-tuning checkpoint {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                                "delete it to start over") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("version") != VERSION:
        raise NeurocompileError(f"{path} is not a version-{VERSION} neurocompile fine-tuning checkpoint; delete it to start over")
    return state
