"""Compiled kernels for the reference engine's hottest step, with torch as the fallback.

The C sources next to this file (``if_step.c``: the integrate-and-fire fast
path; ``lif_step.c``: Lava's whole fixed-point LIF step; ``syn_step.c``: binary
spikes through a sparse projection, dense over the batch, and graded input through a
small dense one; ``lif_step.c``'s ``nc_run_blocks`` also runs a whole periodic run, a block of
samples at a time through every step) are compiled together
on first use with the machine's C compiler (``cc -O3 -march=native -fopenmp``)
into one library in the neurocompile cache and loaded with ctypes: no build
step at install, code tuned to the CPU that runs it. Where there is no
compiler, the build fails or ``NEUROCOMPILE_NATIVE=0`` is set, :func:`if_step`,
:func:`lif_step`, :func:`spmm_step` and :func:`dense_step` return ``None`` and the engine computes the
same steps with torch ops (tests hold both against Lava's rules).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from ...cache import cache_dir

SOURCES = [Path(__file__).with_name(f) for f in ("if_step.c", "lif_step.c", "syn_step.c")]
HEADERS = [Path(__file__).with_name("syn_core.h")]  # included by the sources: part of each build's key
FLAGS = [["-O3", "-march=native", "-fopenmp"], ["-O3", "-fopenmp"], ["-O3"]]  # best first


def _cpu_key() -> str | None:
    """What -march=native depends on (a cache shared by different CPUs must not mix their builds), or None if unknown."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    features = next((ln for ln in lines if ln.startswith(("flags", "Features"))), None)  # x86, ARM
    return f"{platform.machine()} {features}" if features else None


def _compile(cc: str, flags: list[str], out: Path) -> bool:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tmp_so = Path(tmp) / out.name
        done = subprocess.run([cc, *flags, "-shared", "-fPIC", *map(str, SOURCES), "-o", str(tmp_so)],
                              capture_output=True, check=False, timeout=120)
        if done.returncode != 0:
            return False
        os.replace(tmp_so, out)  # atomic: a concurrent build never sees half a library
    return True


def _open(cc: str, flags: list[str], path: Path) -> tuple[Callable, ...] | None:
    """The kernels from the cached build, rebuilding once if that file is missing or unloadable."""
    for attempt in range(2):
        if not path.is_file() and not _compile(cc, flags, path):
            return None
        try:
            lib = ctypes.CDLL(str(path))
            return lib.nc_if_step, lib.nc_lif_step, lib.nc_spmm_step, lib.nc_dense_step, lib.nc_lif_fused, lib.nc_run_blocks
        except (OSError, AttributeError):
            if attempt:
                raise
            path.unlink(missing_ok=True)  # truncated or corrupt (an interrupted copy, a full disk): build again
    return None


@functools.cache
def _load() -> tuple[tuple[Callable, ...] | None, str]:
    """The best flag set that compiles and loads, each build cached under its own key."""
    if os.environ.get("NEUROCOMPILE_NATIVE", "1") == "0":
        return None, "disabled by NEUROCOMPILE_NATIVE=0"
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler: torch ops only"
    src, why, cpu = b"\0".join(f.read_bytes() for f in SOURCES + HEADERS), "the C compiler failed", _cpu_key()
    for flags in FLAGS:
        if "-march=native" in flags and cpu is None:
            continue  # a shared cache could hand this build to a CPU that cannot run it
        key = hashlib.sha256(b"\0".join([src, cc.encode(), " ".join(flags).encode(), (cpu or "").encode()])).hexdigest()[:16]
        path = cache_dir() / "native" / f"neurons-{key}.so"
        try:
            fns = _open(cc, flags, path)
        except (OSError, AttributeError, subprocess.SubprocessError) as e:
            why = str(e)
            continue
        if fns is None:
            continue
        p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
        fn, lif, spmm, dense, fused, blocks = fns
        fn.argtypes = [p, p, i64, p, p, i32, p, p, i64, i64, i32, i32, i32, i32, i32]
        lif.argtypes = [p, p, p, i64, p, p, p, i32, p, p, i32, i64, i64, i32, i32, i32, i32, i32, i32, i32, p, p, p]
        spmm.argtypes = [p, i64, i64, p, p, p, p, i64, i32]
        dense.argtypes = [p, i32, i64, i64, i64, p, i64, i32, p, i32]
        fused.argtypes = [p, p, p, i64, p, p, p, i32, p, i32, p, p, i32, i64, i64, i32, i32, i32, i32, i32, i32, i32, p, p, p]
        blocks.argtypes = [p, i32, p, p, i32, i64, i64, i64, i64, i32, i32, i32]
        fn.restype = lif.restype = dense.restype = None
        spmm.restype = fused.restype = blocks.restype = ctypes.c_int
        return fns, f"fused C neuron kernels ({cc} {' '.join(flags)})"
    return None, f"{why}: torch ops only"


def if_step() -> Callable | None:
    """``nc_if_step`` from if_step.c (built on first call), or None: use torch."""
    fns = _load()[0]
    return None if fns is None else fns[0]


def lif_step() -> Callable | None:
    """``nc_lif_step`` from lif_step.c, or None: use torch.

    One library holds both kernels, and :func:`if_step` is its switch: where it
    returns None (no compiler, ``NEUROCOMPILE_NATIVE=0``, or a test that patches
    it to None to exercise the torch code) so does this.
    """
    fns = _load()[0]
    return None if fns is None or if_step() is None else fns[1]


def spmm_step() -> Callable | None:
    """``nc_spmm_step`` from syn_step.c (binary spikes × CSR weights, int32), or None: use the int8 GEMM.

    Follows :func:`if_step` as :func:`lif_step` does.
    """
    fns = _load()[0]
    return None if fns is None or if_step() is None else fns[2]


def dense_step() -> Callable | None:
    """``nc_dense_step`` from syn_step.c (graded input × small dense int32 weights), or None: use torch."""
    fns = _load()[0]
    return None if fns is None or if_step() is None else fns[3]


class Input(ctypes.Structure):
    """``nc_input_t`` of lif_step.c: one projection summed inside :func:`lif_fused`'s step."""

    _fields_ = [("x", ctypes.c_void_p), ("x_stride", ctypes.c_int64), ("n_src", ctypes.c_int64),
                ("rowptr", ctypes.c_void_p), ("col", ctypes.c_void_p), ("val", ctypes.c_void_p), ("wt", ctypes.c_void_p),
                ("kind", ctypes.c_int32), ("shift", ctypes.c_int32), ("alpha", ctypes.c_uint32), ("w16", ctypes.c_int32)]


def lif_fused() -> Callable | None:
    """``nc_lif_fused`` from lif_step.c (the LIF step with projections summed inside it), or None."""
    fns = _load()[0]
    return None if fns is None or lif_step() is None else fns[4]


class Pop(ctypes.Structure):
    """``nc_pop_t`` of lif_step.c: one population of :func:`run_blocks`."""

    _fields_ = [("u", ctypes.c_void_p), ("v", ctypes.c_void_p), ("counts", ctypes.c_void_p), ("trains", ctypes.c_void_p),
                ("bias", ctypes.c_void_p), ("fu_pn", ctypes.c_void_p), ("fv_pn", ctypes.c_void_p), ("vth_pn", ctypes.c_void_p),
                ("n", ctypes.c_int64), ("fu", ctypes.c_int32), ("fv", ctypes.c_int32), ("vth", ctypes.c_int32),
                ("zero_reset", ctypes.c_int32), ("counts_wide", ctypes.c_int32), ("first_edge", ctypes.c_int32),
                ("n_edges", ctypes.c_int32), ("pad", ctypes.c_int32)]


class Edge(ctypes.Structure):
    """``nc_edge_t`` of lif_step.c: a projection of :func:`run_blocks`, from the frames (source -1) or a population."""

    _fields_ = [("input", Input), ("source", ctypes.c_int32), ("pad", ctypes.c_int32)]


def run_blocks() -> Callable | None:
    """``nc_run_blocks`` from lif_step.c (a whole periodic run, a block of samples at a time), or None."""
    fns = _load()[0]
    return None if fns is None or lif_fused() is None else fns[5]


def status() -> str:
    return _load()[1]
