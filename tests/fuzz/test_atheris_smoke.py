"""A short atheris run per loader (skipped where atheris is not installed; see fuzz_loaders.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

HARNESS = Path(__file__).with_name("fuzz_loaders.py")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    subprocess.run([sys.executable, str(HARNESS), "--seeds", str(folder)], check=True, timeout=120, capture_output=True,
                   env={**os.environ, "NC_FUZZ_WORKDIR": str(folder)})
    return folder


@pytest.mark.parametrize("target", ["ncnet", "npz", "pt2", "pt"])
def test_atheris_finds_no_crash(tmp_path, seeds, target):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seed = next(seeds.glob(f"seed.{target}"))
    (corpus / seed.name).write_bytes(seed.read_bytes())
    done = subprocess.run(
        [sys.executable, str(HARNESS), target, str(corpus), "-runs=300", "-max_total_time=8", "-timeout=20", "-rss_limit_mb=4096"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "NC_FUZZ_WORKDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
