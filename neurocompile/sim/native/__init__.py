"""A compiled kernel for the reference engine's hottest step, with torch as the fallback.

The C source next to this file is compiled on first use with the machine's C
compiler (``cc -O3 -march=native -fopenmp``) into the neurocompile cache and
loaded with ctypes: no build step at install, code tuned to the CPU that runs
it. Where there is no compiler, the build fails or ``NEUROCOMPILE_NATIVE=0``
is set, :func:`if_step` returns ``None`` and the engine computes the same step
with torch ops (tests hold both against Lava's rules).
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

SOURCE = Path(__file__).with_name("if_step.c")
FLAGS = [["-O3", "-march=native", "-fopenmp"], ["-O3", "-fopenmp"], ["-O3"]]  # best first


def _cpu_key() -> str:
    """What -march=native depends on: a cache shared by different CPUs must not mix their builds."""
    try:
        flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags"))
    except (OSError, StopIteration):
        flags = ""
    return f"{platform.machine()} {flags}"


def _build() -> Path | None:
    from ...data import cache_dir

    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src = SOURCE.read_bytes()
    key = hashlib.sha256(src + cc.encode() + _cpu_key().encode()).hexdigest()[:16]
    out = cache_dir() / "native" / f"if_step-{key}.so"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    for flags in FLAGS:
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            tmp_so = Path(tmp) / out.name
            done = subprocess.run([cc, *flags, "-shared", "-fPIC", str(SOURCE), "-o", str(tmp_so)],
                                  capture_output=True, check=False, timeout=120)
            if done.returncode == 0:
                os.replace(tmp_so, out)  # atomic: a concurrent build never sees half a library
                return out
    return None


@functools.cache
def _load() -> tuple[Callable | None, str]:
    if os.environ.get("NEUROCOMPILE_NATIVE", "1") == "0":
        return None, "disabled by NEUROCOMPILE_NATIVE=0"
    try:
        path = _build()
        if path is None:
            return None, "no C compiler (or it failed): torch ops only"
        fn = ctypes.CDLL(str(path)).nc_if_step
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"not available ({e}): torch ops only"
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
    fn.argtypes = [p, p, i64, p, p, i32, p, p, i64, i64, i32, i32, i32, i32]
    fn.restype = None
    return fn, f"fused C neuron kernel ({path.name})"



def if_step() -> Callable | None:
    """``nc_if_step`` from if_step.c (built on first call), or None: use torch."""
    return _load()[0]


def status() -> str:
    return _load()[1]
