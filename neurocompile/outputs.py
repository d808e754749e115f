"""Writing build outputs without ever destroying something neurocompile did not write.

A build folder is replaced only as a whole and only when every file in it is
listed in the manifest (``.neurocompile-manifest.json``) that a previous build
wrote there; a folder that holds anything else -- a user's model, data, notes --
is refused. A build never replaces one of its own inputs (the model or data
file inside ``-o``). Outputs are written into a hidden sibling folder and renamed
into place at the end, so a failed or interrupted build leaves the old folder as
it was. That hidden folder carries an owner record (pid and process start
time); a build killed with SIGKILL cannot remove it, so the next build that
writes next to it reclaims every such folder whose owner is dead.

Single-file outputs of the pass commands (``ingest``/``convert``/``quantize``)
follow the same rules: written beside the target and renamed, and only ever
replacing a neurocompile network artifact that is not an input.
"""
from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import signal
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .errors import NeurocompileError
from .owners import abandoned, write_owner

MANIFEST = ".neurocompile-manifest.json"
OWNER = ".neurocompile-owner"
_TMP_TAG = ".nc-tmp-"
_OLD_TAG = ".nc-old-"


def _reclaim(parent: Path, name: str) -> None:
    """Clean up after builds that died (SIGKILL, power loss) next to ``name``.

    A hidden temporary folder of a dead owner is removed. A hidden *old* folder
    is a previous build that was being replaced: if the new one never took its
    place, the old one is put back; otherwise it is removed.
    """
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(f".{name}{_TMP_TAG}") or p.name.startswith(f".{name}{_OLD_TAG}")]
    except OSError:
        return
    out = parent / name
    for folder in candidates:
        if not abandoned(folder, OWNER):
            continue
        if folder.name.startswith(f".{name}{_OLD_TAG}") and not os.path.lexists(out):
            try:
                folder.rename(out)
                (out / OWNER).unlink(missing_ok=True)
                continue
            except OSError:
                pass
        shutil.rmtree(folder, ignore_errors=True)


_deferring = False
_pending: list[int] = []


def defer_signal(signum: int) -> bool:
    """For a signal handler: True (and the signal is remembered) while a commit must not be interrupted.

    Blocking the signals with ``pthread_sigmask`` is not enough: a signal sent
    to the process is delivered to any thread that does not block it (torch's
    and tqdm's threads), and Python then runs the handler in the main thread
    all the same. So the deferral is decided where the handler runs.
    """
    if _deferring:
        _pending.append(signum)
    return _deferring


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Signals that arrive in the block take effect when it is done: between the two renames of a
    commit an interruption would leave neither the old nor the new build in place."""
    global _deferring
    outer = _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = outer
        if not outer and _pending:
            signum = _pending[0]
            _pending.clear()
            signal.raise_signal(signum)


# -- checks ------------------------------------------------------------------
def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
        return True
    except ValueError:
        return False


def check_output_dir(out: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """The resolved output folder, refused if writing it could destroy anything that is not a previous build."""
    out = Path(out).expanduser().resolve()
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents or out.parent == out or out == Path.home().resolve():
        raise NeurocompileError(f"-o {out} is the current folder, the home folder or one of their parents; give a new folder for the build")
    for inp in inputs:
        if _is_within(Path(inp), out):
            raise NeurocompileError(f"-o {out} contains the input {inp}; a build never replaces its own inputs: give another output folder")
    for ancestor in [out, *out.parents]:
        if ancestor.exists() and not ancestor.is_dir():
            raise NeurocompileError(f"-o {out}: {ancestor} is a file, not a folder; give a folder path for the build")
        if ancestor.exists():
            break
    if out.is_dir():
        strangers = _files_not_in_manifest(out)
        if strangers:
            shown = ", ".join(strangers[:3]) + (f" and {len(strangers) - 3} more" if len(strangers) > 3 else "")
            raise NeurocompileError(
                f"-o {out} holds files a neurocompile build did not write ({shown}); give a new folder, or remove them"
            )
    return out


def _files_not_in_manifest(folder: Path) -> list[str]:
    """Every entry of ``folder`` (files, folders, links, not followed) that its manifest does not list.

    Builds write plain files only, so any folder or link inside is a stranger;
    a folder with entries but no readable manifest is all strangers.
    """
    present = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        rel = Path(root).relative_to(folder)
        present += [str(rel / n) for n in (*dirs, *files)]
    present = sorted(p for p in present if p not in (MANIFEST, OWNER))
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
        listed = {f for f in listed if isinstance(f, str) and "/" not in f and f not in (".", "..")}
    except (OSError, ValueError, KeyError, TypeError):
        return present
    return [p for p in present if p not in listed or not os.path.isfile(folder / p) or os.path.islink(folder / p)]


def _writable_error(e: OSError, out: Path) -> NeurocompileError:
    why = {errno.ENOSPC: "no space left on the device", errno.EROFS: "the file system is read-only",
           errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.ENOTDIR: "a parent is a file, not a folder",
           errno.EDQUOT: "disk quota exceeded"}.get(e.errno or 0, e.strerror or str(e))
    return NeurocompileError(f"cannot write the build to {out}: {why}; give a writable output folder with free space")


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


# -- the build folder --------------------------------------------------------
class BuildFolder:
    """A hidden folder next to ``out`` that becomes ``out`` on :meth:`commit`.

    Create it before any compute, so that an unwritable destination fails in a
    second, not after minutes of simulation.
    """

    def __init__(self, out: str | Path, inputs: Iterable[str | Path] = ()) -> None:
        self.out = check_output_dir(out, inputs)
        parent = self.out.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            _reclaim(parent, self.out.name)
            self.path = parent / f".{self.out.name}{_TMP_TAG}{os.getpid()}-{secrets.token_hex(4)}"
            self.path.mkdir(mode=0o700)
            write_owner(self.path / OWNER)
        except OSError as e:
            self.path = getattr(self, "path", None)
            self.discard()
            raise _writable_error(e, self.out) from None
        self.files: list[str] = []

    def file(self, name: str) -> Path:
        """Where to write output ``name``; recorded in the manifest."""
        self.files.append(name)
        return self.path / name

    def commit(self) -> None:
        """Write the manifest and put the folder in place of ``out`` (a previous build is replaced whole).

        Signals wait until both renames are done; the previous build carries an
        owner record before it moves aside, so that if this process is killed
        (SIGKILL) between the renames the next build puts it back.
        """
        old = None
        try:
            with _signals_deferred():
                check_output_dir(self.out)  # nobody put a stranger's file there while we computed
                (self.path / MANIFEST).write_text(json.dumps({"files": sorted(self.files)}, indent=1) + "\n")
                mode = _umask_mode()
                os.chmod(self.path, mode)
                for f in self.files:
                    os.chmod(self.path / f, mode & 0o666)
                os.chmod(self.path / MANIFEST, mode & 0o666)
                if self.out.exists():
                    old = self.out.with_name(f".{self.out.name}{_OLD_TAG}{os.getpid()}-{secrets.token_hex(4)}")
                    write_owner(self.out / OWNER)
                    self.out.rename(old)
                self.path.rename(self.out)
                (self.out / OWNER).unlink()
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
        except OSError as e:
            if old is not None and not os.path.lexists(self.out):
                old.rename(self.out)  # put the previous build back
                (self.out / OWNER).unlink(missing_ok=True)
            self.discard()
            raise _writable_error(e, self.out) from None

    def discard(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


@contextmanager
def build_folder(out: str | Path, inputs: Iterable[str | Path] = ()) -> Iterator[BuildFolder]:
    """A :class:`BuildFolder` committed if the block succeeds and removed if it raises (or is interrupted)."""
    folder = BuildFolder(out, inputs)
    try:
        yield folder
    except BaseException:
        folder.discard()
        raise
    folder.commit()


# -- single-file artifacts ---------------------------------------------------
def _is_network_artifact(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return "network.json" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def write_file_atomic(out: str | Path, write, inputs: Iterable[str | Path] = ()) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``out``.

    ``out`` may replace only a neurocompile network artifact that is not one of
    ``inputs``: a model, data or any other file stays untouched.
    """
    out = Path(out).expanduser()
    for inp in inputs:
        if out.exists() and Path(inp).exists() and os.path.samefile(out, inp):
            raise NeurocompileError(f"-o {out} is the input file; write the result to another file")
    if out.is_dir():
        raise NeurocompileError(f"-o {out} is a folder; give a file name such as {out / 'network.ncnet'}")
    if out.exists() and not _is_network_artifact(out):
        raise NeurocompileError(f"-o {out} exists and is not a neurocompile network artifact; give a new file name")
    tmp = out.with_name(f".{out.name}{_TMP_TAG}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.chmod(tmp, _umask_mode() & 0o666)
        os.replace(tmp, out)
    except OSError as e:
        raise _writable_error(e, out) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a read-only file system refuses even to look (EROFS): nothing was written there
            pass
    return out
