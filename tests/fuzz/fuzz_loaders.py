"""Coverage-guided fuzzing of the file loaders with atheris (optional; ``pip install atheris``).

    python tests/fuzz/fuzz_loaders.py TARGET [CORPUS_DIR] [libFuzzer flags, e.g. -runs=10000 -timeout=20]

TARGET is one of ncnet, npz, pt2, pt. With ``--seeds DIR`` the script writes one
valid file per target into DIR (a starting corpus) and exits. The property is the
same as in ``tests/test_fuzz_loaders.py``: a loader either succeeds or raises
NeurocompileError; any other exception is reported by libFuzzer as a crash, a hang
by ``-timeout``, and a payload that ran (the marker file) by an AssertionError.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["neurocompile"]):
    from neurocompile import ir
    from neurocompile.data import load_npz
    from neurocompile.errors import NeurocompileError
    from neurocompile.frontend import capture
    from neurocompile.frontend.load import load_program, sniff_format

if os.environ.get("NC_FUZZ_WORKDIR"):  # the caller's folder (libFuzzer may exit without running atexit)
    WORK = Path(os.environ["NC_FUZZ_WORKDIR"])
else:
    WORK = Path(tempfile.mkdtemp(prefix="nc-atheris-"))
    atexit.register(shutil.rmtree, WORK, ignore_errors=True)
MARKER = WORK / "pwned"
SUFFIX = {"ncnet": ".ncnet", "npz": ".npz", "pt2": ".pt2", "pt": ".pt"}


def _load_model(path: Path) -> None:
    sniff_format(path)
    capture(load_program(path, sample_shape=(6,)))


LOADERS = {"ncnet": ir.load, "npz": load_npz, "pt2": _load_model, "pt": _load_model}


def write_seeds(folder: Path) -> None:
    """One valid input per target, so that libFuzzer starts from real archives."""
    import numpy as np
    import torch
    import torch.nn as nn

    from neurocompile.frontend import ingest

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    ep = torch.export.export(m, (torch.zeros(2, 6),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, str(folder / "seed.pt2"))
    torch.jit.save(torch.jit.trace(m, torch.zeros(1, 6)), str(folder / "seed.pt"))
    ir.save(ingest(folder / "seed.pt2"), folder / "seed.ncnet")
    rng = np.random.default_rng(0)
    with open(folder / "seed.npz", "wb") as f:
        np.savez(f, x_train=rng.random((6, 4)), y_train=np.arange(6) % 2, x_test=rng.random((2, 4)), y_test=np.arange(2) % 2)


def main(argv: list[str]) -> None:
    if len(argv) > 2 and argv[1] == "--seeds":
        write_seeds(Path(argv[2]))
        return
    if len(argv) < 2 or argv[1] not in LOADERS:
        raise SystemExit(f"usage: {argv[0]} {{{','.join(LOADERS)}}} [CORPUS] [libFuzzer flags] | --seeds DIR")
    target = argv[1]
    loader, path = LOADERS[target], WORK / f"input{SUFFIX[target]}"

    def one_input(data: bytes) -> None:
        path.write_bytes(data)
        try:
            loader(path)
        except NeurocompileError as e:
            if "\n" in str(e):
                raise AssertionError(f"multi-line error: {e!r}") from None
        if MARKER.exists():
            raise AssertionError("a payload ran")

    atheris.Setup([argv[0], *argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main(sys.argv)
