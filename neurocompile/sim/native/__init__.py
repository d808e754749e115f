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

from ...cache import cache_dir

SOURCE = Path(__file__).with_name("if_step.c")
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
        done = subprocess.run([cc, *flags, "-shared", "-fPIC", str(SOURCE), "-o", str(tmp_so)],
                              capture_output=True, check=False, timeout=120)
        if done.returncode != 0:
            return False
        os.replace(tmp_so, out)  # atomic: a concurrent build never sees half a library
    return True


def _open(cc: str, flags: list[str], path: Path) -> Callable | None:
    """The kernel from the cached build, rebuilding once if that file is missing or unloadable."""
    for attempt in range(2):
        if not path.is_file() and not _compile(cc, flags, path):
            return None
        try:
            return ctypes.CDLL(str(path)).nc_if_step
        except (OSError, AttributeError):
            if attempt:
                raise
            path.unlink(missing_ok=True)  # truncated or corrupt (an interrupted copy, a full disk): build again
    return None


@functools.cache
def _load() -> tuple[Callable | None, str]:
    """The best flag set that compiles and loads, each build cached under its own key."""
    if os.environ.get("NEUROCOMPILE_NATIVE", "1") == "0":
        return None, "disabled by NEUROCOMPILE_NATIVE=0"
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler: torch ops only"
    src, why, cpu = SOURCE.read_bytes(), "the C compiler failed", _cpu_key()
    for flags in FLAGS:
        if "-march=native" in flags and cpu is None:
            continue  # a shared cache could hand this build to a CPU that cannot run it
        key = hashlib.sha256(b"\0".join([src, cc.encode(), " ".join(flags).encode(), (cpu or "").encode()])).hexdigest()[:16]
        path = cache_dir() / "native" / f"if_step-{key}.so"
        try:
            fn = _open(cc, flags, path)
        except (OSError, AttributeError, subprocess.SubprocessError) as e:
            why = str(e)
            continue
        if fn is None:
            continue
        p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
        fn.argtypes = [p, p, i64, p, p, i32, p, p, i64, i64, i32, i32, i32, i32, i32]
        fn.restype = None
        return fn, f"fused C neuron kernel ({cc} {' '.join(flags)})"
    return None, f"{why}: torch ops only"


def if_step() -> Callable | None:
    """``nc_if_step`` from if_step.c (built on first call), or None: use torch."""
    return _load()[0]


def status() -> str:
    return _load()[1]
