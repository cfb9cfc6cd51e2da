"""Low-level file helpers: atomic writes, locks, process identity."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from filelock import FileLock

from mcp_orchestrator.contracts import ProcessRef

__all__ = ["atomic_write", "doc_lock", "is_alive", "this_process"]

LOCK_TIMEOUT_SECONDS = 60.0


def atomic_write(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new content, never a mix.

    Temporary file in the same directory, fsync, rename over the target.
    """
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def doc_lock(path: Path) -> FileLock:
    """An inter-process lock guarding read-modify-write of one document."""
    return FileLock(str(path.with_name(path.name + ".lock")), timeout=LOCK_TIMEOUT_SECONDS)


def _start_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def this_process() -> ProcessRef:
    """A new identity in this process: pid, kernel start time (reused pids never match), host, and a
    random instance id (one process may run several orchestrators, as tests do)."""
    pid = os.getpid()
    return ProcessRef(pid=pid, start_ticks=_start_ticks(pid), host=socket.gethostname(), instance=secrets.token_hex(6))


def is_alive(ref: ProcessRef) -> bool:
    """True when the process ``ref`` names still runs (a process on another host counts as alive)."""
    if ref.host != socket.gethostname():
        return True
    try:
        os.kill(ref.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return _start_ticks(ref.pid) == ref.start_ticks
