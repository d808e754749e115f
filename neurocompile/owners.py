"""Which process owns a temporary folder, so that a later run can tell garbage from work in progress.

A process killed with SIGKILL runs no cleanup; what it leaves (a build's hidden
output folder, a Lava job folder) records its owner, and whoever comes next
removes it once that owner is dead. A pid alone can be reused by an unrelated
process, so the record is pid + kernel start time + boot id.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Optional


def process_start_time(pid: int) -> Optional[int]:
    """Start time of ``pid`` in clock ticks after boot (``/proc/PID/stat`` field 22), or None without /proc or process.

    With the pid it identifies a process even after the pid has been reused.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _boot_id() -> Optional[str]:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _host() -> str:
    """This machine and pid namespace: a pid means something only there (containers sharing /tmp,
    a home folder on NFS shared by several machines)."""
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = ""
    return f"{socket.gethostname()}|{ns}"


def owner_record(pid: Optional[int] = None) -> dict:
    """What identifies a live process across pid reuse and reboots: host and pid namespace, pid, start time, boot id."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "start": process_start_time(pid), "boot": _boot_id(), "host": _host()}


def owner_alive(owner: dict) -> bool:
    """Is the process ``owner`` (an :func:`owner_record`) still running? Unsure means alive."""
    try:
        pid = int(owner["pid"])
    except (KeyError, TypeError, ValueError):
        return True
    if owner.get("host") is not None and owner["host"] != _host():
        return True  # another machine's or container's process: we cannot tell, so it is alive
    if owner.get("boot") and _boot_id() and owner["boot"] != _boot_id():
        return False
    if owner.get("start") is not None and os.path.isdir("/proc"):
        return process_start_time(pid) == owner["start"]  # None (no such process) or another process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def read_owner(record: Path) -> Optional[dict]:
    """The owner record in file ``record``, or None when it is missing or unreadable."""
    try:
        owner = json.loads(Path(record).read_text())
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def write_owner(record: Path) -> None:
    """Write this process's owner record to ``record`` atomically (a reader never sees half a record)."""
    tmp = Path(record).with_name(Path(record).name + ".tmp")
    tmp.write_text(json.dumps(owner_record()))
    os.replace(tmp, record)


def abandoned(folder: Path, record: str) -> bool:
    """True for a folder of ours (same uid, a real folder, not a link) whose owner record names a dead process.

    A folder without a readable record is never abandoned: another user's, or one
    whose owner is writing its record this instant.
    """
    try:
        if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
            return False
    except OSError:
        return False
    owner = read_owner(folder / record)
    return owner is not None and not owner_alive(owner)
