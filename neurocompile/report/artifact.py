"""Build folders' reports as files: writing report.json, and ``compare`` across builds.

Measuring a network for its report and rebuilding a folder's report run
passes and simulators, so they live a layer up, in :mod:`neurocompile.reporting`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..errors import NeurocompileError


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def dumps(report: Mapping) -> str:
    return json.dumps(report, indent=2, default=_json_default) + "\n"


# -- compare --------------------------------------------------------------------------------
COLUMNS = ("build", "target", "accuracy", "T", "spikes/sample", "energy/inference", "latency/inference", "cores")


def _accuracy(report: Mapping) -> float | None:
    stages = report.get("stages") or {}
    for key in ("snn_quantized", "snn_float", "ann"):
        acc = (stages.get(key) or {}).get("accuracy")
        if isinstance(acc, (int, float)):
            return float(acc)
    return None


def compare_rows(out_dirs: Iterable[str | Path]) -> list[dict]:
    """One row per build folder: the figures :func:`compare` prints (JSON-ready)."""
    rows = []
    for d in out_dirs:
        path = Path(d) / "report.json"
        try:
            r = json.loads(path.read_text())
        except FileNotFoundError:
            raise NeurocompileError(f"{d} has no report.json; build it first (`neurocompile build ... -o {d}`)") from None
        except json.JSONDecodeError as e:
            raise NeurocompileError(f"{path} is not valid JSON ({e}); rebuild it with `neurocompile report {d}`") from None
        target = r.get("target")
        e = (r.get("energy") or {}).get(target) or {}
        spikes = sum(float(l.get("spikes_per_sample") or 0.0) for l in r.get("layers") or [])
        rows.append({"build": str(d), "target": target, "accuracy": _accuracy(r), "T": r.get("timesteps"), "spikes_per_sample": spikes,
                     "energy_j": e.get("joules_per_sample"), "energy_range_j": e.get("range_j"),
                     "latency_s": e.get("latency_s"), "latency_range_s": e.get("latency_range_s"),
                     "cores": (r.get("mapping") or {}).get("cores_used", e.get("cores_used"))})
    return rows


def _si(x: float | None, unit: str) -> str:
    from .html import _si as si

    return si(x, unit)


def compare(out_dirs: Iterable[str | Path]) -> str:
    """A side-by-side table of builds: accuracy, T, spikes, energy and latency (with ranges), cores."""
    rows = compare_rows(out_dirs)
    if not rows:
        raise NeurocompileError("compare needs at least one build folder")
    cells = [COLUMNS]
    for r in rows:
        rng = lambda v, k, u: f"{_si(v, u)} ({_si(r[k][0], u)}–{_si(r[k][1], u)})" if r[k] else _si(v, u)
        cells.append((r["build"], str(r["target"]), f"{100 * r['accuracy']:.2f} %" if r["accuracy"] is not None else "–",
                      str(r["T"]), f"{r['spikes_per_sample']:,.1f}", rng(r["energy_j"], "energy_range_j", "J"),
                      rng(r["latency_s"], "latency_range_s", "s"), str(r["cores"])))
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
