"""Reading untrusted input files (models, data sets, artifacts) without hanging, exhausting memory or unpickling.

Every file the tool reads comes from a user: it may be a FIFO (reading it
blocks forever), a device (``/dev/zero`` never ends), huge, or a zip bomb. So a
file is stat-ed and refused unless it is a regular file under a size limit,
read once into memory (the checks and the parse see the same bytes), and zip
members are read only after their declared sizes have been checked.
"""
from __future__ import annotations

import io
import math
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from .errors import NeurocompileError


# Shared by every loader of user files (models, data sets, network artifacts):
# only regular files, under a size limit, read once into memory (no TOCTOU),
# and zip archives checked against their declared unpacked size before any
# member is decompressed.

MAX_INPUT_BYTES = 2 * 1024**3  # models, data sets and .ncnet files larger than this are refused
MAX_UNPACKED_BYTES = 2 * 1024**3  # sum of a zip's declared member sizes (zip bombs)
MAX_ZIP_MEMBERS = 100_000


def _human(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _check_stat(st: os.stat_result, path: Path, what: str, limit: int) -> None:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise NeurocompileError(f"{what} {path} is a directory; give the path of a regular file")
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise NeurocompileError(f"{what} {path} is {kind}; give the path of a regular file")
    if st.st_size > limit:
        raise NeurocompileError(f"{what} {path} is {_human(st.st_size)}, over the {_human(limit)} limit for input files")


def check_input_file(path: str | Path, what: str = "file", limit: int | None = None) -> os.stat_result:
    """Refuse (one line) anything that is not an existing regular file of at most ``limit`` bytes.

    Uses ``os.stat`` only: nothing is opened, so a FIFO or a device cannot hang or flood the caller.
    ``limit`` defaults to :data:`MAX_INPUT_BYTES`.
    """
    path = Path(path)
    limit = MAX_INPUT_BYTES if limit is None else limit
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NeurocompileError(f"{what} {path} does not exist") from None
    except (OSError, ValueError) as e:
        raise NeurocompileError(f"{what} {path} cannot be read: {getattr(e, 'strerror', None) or e}") from None
    _check_stat(st, path, what, limit)
    return st


def read_input_file(path: str | Path, what: str = "file", limit: int | None = None) -> bytes:
    """The whole content of a regular file (checked as :func:`check_input_file`), read once.

    The file is opened non-blocking and re-checked with ``fstat`` on the open descriptor,
    so a file swapped for a FIFO or device between the check and the open is still refused.
    """
    path = Path(path)
    limit = MAX_INPUT_BYTES if limit is None else limit
    check_input_file(path, what, limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise NeurocompileError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise NeurocompileError(f"{what} {path} cannot be read: {e.strerror or e}") from None
    try:
        _check_stat(os.fstat(fd), path, what, limit)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 24)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise NeurocompileError(f"{what} {path} grew past the {_human(limit)} limit for input files while being read")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise NeurocompileError(f"{what} {path} cannot be read: {e.strerror or e}") from None
    finally:
        os.close(fd)


class NotAZip(NeurocompileError):
    """Bytes that zipfile cannot read as an archive (``reason``: why, without the path)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ArchiveTooLarge(NotAZip):
    """A zip with too many members or a declared unpacked size over the limit (a zip bomb?)."""


def open_zip(data: bytes, path: str | Path, what: str, limit: int | None = None) -> zipfile.ZipFile:
    """A zip archive over in-memory bytes whose declared unpacked size is within ``limit``.

    Raises :class:`NotAZip` for bytes that are not a readable zip and :class:`ArchiveTooLarge`
    for too many members or a zip bomb (the sum of the members' declared sizes over the
    limit); members are not decompressed here. zipfile never returns more than a member's
    declared size, so the check bounds memory. ``limit`` defaults to :data:`MAX_UNPACKED_BYTES`.
    Callers tell the two apart by type, and word the message with ``reason``.
    """
    limit = MAX_UNPACKED_BYTES if limit is None else limit
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = z.infolist()
    except Exception as e:  # noqa: BLE001 - zipfile raises many types for damaged directories
        reason = f"not a readable zip archive ({first_line(e)})"
        raise NotAZip(f"{path}: {what}: {reason}", reason) from None
    if len(infos) > MAX_ZIP_MEMBERS:
        reason = f"{len(infos)} zip members, over the limit of {MAX_ZIP_MEMBERS}"
        raise ArchiveTooLarge(f"{path}: {what}: {reason}", reason)
    total = sum(max(i.file_size, 0) for i in infos)
    if total > limit:
        reason = f"members unpack to {_human(total)}, over the {_human(limit)} limit (a zip bomb?)"
        raise ArchiveTooLarge(f"{path}: {what}: {reason}", reason)
    return z


def read_npy_member(z: zipfile.ZipFile, name: str, path: str | Path, what: str) -> np.ndarray:
    """One ``.npy`` member as an array, never unpickling; its header must match its size.

    The header is checked before the array is allocated, so a member claiming a huge
    shape cannot make numpy allocate it. Raises ValueError (caller words the message).
    """
    info = z.getinfo(name)
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        read_header = getattr(np.lib.format, "_read_array_header", None)
        if read_header is not None:
            shape, fortran, dtype = read_header(f, version)
        elif version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        if dtype.hasobject:
            raise ValueError("it holds Python objects (a pickle), which are never loaded")
        count = math.prod(int(d) for d in shape)
        header_len = f.tell()
        if count * dtype.itemsize != info.file_size - header_len:
            raise ValueError(f"its header says {shape} {dtype} ({count * dtype.itemsize} bytes) but it holds {info.file_size - header_len}")
    with z.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def first_line(e: object) -> str:
    """The first line of an exception's message (its type's name when empty): error messages stay one line."""
    text = str(e).strip()
    return text.splitlines()[0].strip() if text else type(e).__name__


