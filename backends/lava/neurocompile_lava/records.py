"""Where PeriodicLIF models save their records, shared by the models and the backend (no Lava import)."""
from __future__ import annotations

import os

KINDS = ("counts", "v", "spikes", "state")  # per-period spike counts, v at each period's end, spike trains, final (u, v)


def record_path(record_dir: str, label: str, kind: str) -> str:
    """``record_dir/label.kind.npy``; ``label`` is a file-safe population id chosen by the plan."""
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    return os.path.join(record_dir, f"{label}.{kind}.npy")
