"""Reports: operation counts, energy per hardware profile, and the HTML page.

``render_html`` is imported lazily: it pulls in matplotlib, which the energy
model does not need.
"""
from __future__ import annotations

from .energy import count_ops, energy_table, estimate_energy

__all__ = ["count_ops", "estimate_energy", "energy_table", "render_html"]


def __getattr__(name: str):
    if name == "render_html":
        from .html import render_html

        return render_html
    raise AttributeError(name)
