"""Smoke test of bench/sim_speed.py: ``--quick`` runs every section and prints its table.

Speeds are machine-dependent, so only the shape of the report and the spike
agreement with Lava (which must hold everywhere) are checked.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lava")

pytestmark = [pytest.mark.lava, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = {"demo mlp", "demo cnn", "recurrent 1k"}


def table(out: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header cells and the rows (by network) of the side-by-side table."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("network ") and "identical" in line)
    header = [c.strip() for c in lines[at].split("|")]
    rows = {}
    for line in lines[at + 2 :]:
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != len(header):
            break
        rows[cells[0]] = cells
    return header, rows


def test_sim_speed_quick_runs_and_spikes_are_identical():
    from neurocompile.backends import get_backend

    ok, why = get_backend("lava").available()
    if not ok:
        pytest.skip(why)
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sim_speed.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    header, rows = table(done.stdout)
    for col in ("lava run ss/s", "lava call ss/s", "ref ss/s", "x run", "counts+readout identical", "trains identical"):
        assert col in header, header
    assert set(rows) == NETWORKS, done.stdout
    for name, cells in rows.items():
        assert cells[header.index("counts+readout identical")] == "True", (name, cells)
        assert cells[header.index("trains identical")] == "True", (name, cells)
        assert cells[header.index("ref ss/s")] not in ("n/a", "0"), (name, cells)
    assert "synaptic events:" in done.stdout and "events/s" in done.stdout
    targets = done.stdout[done.stdout.index("\ntargets") :]
    assert targets.count("[PASS]") + targets.count("[MISS]") + targets.count("[n/a ]") == 5, targets
