"""Where the process models save their records, and how, shared by the models and the backend (no Lava import)."""
from __future__ import annotations

import os

import numpy as np

KINDS = ("counts", "v", "spikes", "state")  # per-period spike counts, v at each period's end, spike trains, final (u, v)


def record_path(record_dir: str, label: str, kind: str) -> str:
    """``record_dir/label.kind.npy``; ``label`` is a file-safe population id chosen by the plan."""
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    return os.path.join(record_dir, f"{label}.{kind}.npy")


def write_record(record_dir: str, label: str, kind: str, arr: np.ndarray) -> None:
    """``np.save`` to :func:`record_path` through a temporary file: a reader never sees half a record."""
    final = record_path(record_dir, label, kind)
    with open(final + ".tmp", "wb") as f:  # file object: np.save adds no suffix
        np.save(f, arr, allow_pickle=False)
    os.replace(final + ".tmp", final)


class Records:
    """Per-period spike counts, readout ``v`` and optional spike trains, saved once at the end.

    Kept in the model process's memory and written with ``np.save``: reading
    the same data through ``Var.get()`` would take minutes for large runs.
    """

    def __init__(self, n: int, period: int, num_periods: int, *, counts: bool, v: bool, trains: bool, v_dtype: type) -> None:
        self.period = period
        self.total_steps = period * num_periods
        self.counts = np.zeros((num_periods, n), np.int32) if counts else None
        self.v = np.zeros((num_periods, n), v_dtype) if v else None
        self.trains = np.zeros((self.total_steps, n), bool) if trains else None

    def note(self, step: int, spikes: np.ndarray, v: np.ndarray) -> None:
        k = (step - 1) // self.period
        if self.counts is not None:
            self.counts[k] += spikes.astype(bool)
        if self.trains is not None:
            self.trains[step - 1] = spikes
        if self.v is not None and step % self.period == 0:
            self.v[k] = v

    def save(self, record_dir: str, label: str, state: np.ndarray | None = None) -> None:
        """Write the records; ``state``: the final (u, v) stacked, to compare states, not only spikes."""
        for kind, arr in (("counts", self.counts), ("v", self.v), ("spikes", self.trains), ("state", state)):
            if arr is not None:
                write_record(record_dir, label, kind, arr)
