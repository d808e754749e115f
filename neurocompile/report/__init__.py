"""Reports: operation counts, energy and latency per hardware profile, the HTML page, and ``compare``.

``render_html`` and ``compare`` are imported lazily: matplotlib is not needed by
the energy model. Rebuilding a folder's report runs the simulator:
:func:`neurocompile.reporting.rebuild`.
"""
from __future__ import annotations

from .energy import count_ops, energy_table, estimate_energy

__all__ = ["count_ops", "estimate_energy", "energy_table", "render_html", "compare"]


def __getattr__(name: str):
    if name == "render_html":
        from .html import render_html

        return render_html
    if name == "compare":
        from .artifact import compare

        return compare
    raise AttributeError(name)
