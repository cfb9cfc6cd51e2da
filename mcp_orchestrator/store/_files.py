"""Low-level file helpers: atomic writes, locks, process identity."""

from __future__ import annotations

import fcntl
import math
import os
import secrets
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mcp_orchestrator.errors import StoreError

if TYPE_CHECKING:  # the executor's link checks a process with no model loaded (issue 15: start-up)
    from mcp_orchestrator.contracts import ProcessRef

__all__ = [
    "DocLock",
    "LockTimeout",
    "atomic_write",
    "dir_lock",
    "doc_lock",
    "is_alive",
    "locked_fd",
    "this_process",
]

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


class LockTimeout(StoreError):
    """A document's lock was not granted in time."""


class DocLock:
    """An exclusive ``flock`` on ``<doc>.lock``, held while a document is read, changed and written.

    A bare ``fcntl.flock`` on the same lock file that filelock took (so older processes interoperate): the
    store takes about ten per run, and filelock's own bookkeeping cost ~0.25 ms each (bench/scheduler.py)."""

    def __init__(self, lock_file: str, timeout: float = LOCK_TIMEOUT_SECONDS, *, directory: bool = False) -> None:
        self.lock_file = lock_file
        self.timeout = timeout
        self.directory = directory  # lock_file is a directory that exists: nothing is created
        self._fd: int | None = None

    def acquire(self, timeout: float | None = None) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (0: try once); ``LockTimeout`` if not granted."""
        limit = self.timeout if timeout is None else timeout
        if self.directory:
            fd = os.open(self.lock_file, os.O_RDONLY | os.O_DIRECTORY)
            return self._take(fd, limit)
        try:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # as filelock did: the lock's folder is made on demand
            Path(self.lock_file).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        self._take(fd, limit)

    def _take(self, fd: int, limit: float) -> None:
        deadline = time.monotonic() + limit
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if limit < math.inf else 0))
                self._fd = fd
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockTimeout(f"the lock {self.lock_file} was not granted within {limit:g} s") from None
                time.sleep(delay)  # another process holds it: nothing to wait on but the lock itself
                delay = min(delay * 2, 0.05)

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> DocLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def doc_lock(path: Path) -> DocLock:
    """An inter-process lock guarding read-modify-write of one document."""
    return DocLock(str(path.with_name(path.name + ".lock")))


def locked_fd(path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> int | None:
    """``path`` opened read-write under an exclusive ``flock`` of the file itself (no lock file), and still the
    file the name points to (a writer that replaced it meanwhile is followed to the new one); None when there is
    no such file. Closing the descriptor releases the lock."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        DocLock(str(path), timeout)._take(fd, timeout)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def dir_lock(path: Path) -> DocLock:
    """An inter-process lock on the directory ``path`` itself (which must exist): no lock file is made."""
    return DocLock(str(path), directory=True)


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
    from mcp_orchestrator.contracts import ProcessRef

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
