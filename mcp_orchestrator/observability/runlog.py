"""The run event log: one JSON object per line, every line with ``schemaVersion``.

Events: ``run_accepted``, ``run_started``, ``step_started``, ``attempt``, ``fallback``,
``step_ended``, ``run_ended``; the schema is ``contracts/log/run-event.schema.json``. Several
processes append to one file: each line is a single ``write`` on an ``O_APPEND`` descriptor, so
lines never interleave. Every string is redacted before it is written.

Writers hold a shared ``flock`` on the file while they write; ``mcp-orchestrator prune`` takes it
exclusively only to swap in the pruned file, and a writer that waited for it writes to the new file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mcp_orchestrator.contracts import RunEvent, utcnow
from mcp_orchestrator.observability.redact import Redactor

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: appends stay atomic, prune is best effort
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunLog", "exclusive", "log_path"]

log = logging.getLogger(__name__)

MAX_LINE = 16 * 1024


class RunLog:
    """Appends validated events to ``<home>/logs/events.jsonl``."""

    def __init__(self, home: Path, redactor: Redactor | None = None) -> None:
        self.path = log_path(home)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.redactor = redactor or Redactor()
        self._appender = _Appender(self.path)

    def emit(self, event: str, run_id: str, **fields: Any) -> None:
        """Write one event; a failure to log is reported, never raised into a run."""
        clean = {
            k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in fields.items() if v is not None
        }
        payload = {"event": event, "run_id": run_id, "ts": utcnow().isoformat(), **clean}
        try:
            record = RunEvent.model_validate(self.redactor.data(payload))
            line = record.model_dump_json(exclude_none=True) + "\n"
            data = line.encode()
            if len(data) > MAX_LINE:  # keep lines small enough to append atomically
                record = record.model_copy(update={"message": (record.message or "")[:1000]})
                data = (record.model_dump_json(exclude_none=True) + "\n").encode()
                if len(data) > MAX_LINE:  # a cut line would not parse: say so instead of writing one
                    raise ValueError(f"the event is {len(data)} bytes, over {MAX_LINE}")
            self._appender.write(data)
        except (OSError, ValueError) as e:
            log.warning("run log: could not write %s for %s: %s", event, run_id, e)


def log_path(home: Path) -> Path:
    """Where the run event log of the data directory ``home`` lives."""
    return home / "logs" / "events.jsonl"


class _Appender:
    """One descriptor on the log, kept open between lines (two syscalls fewer per line than open and close);
    reopened when the name points to another file (pruned) or to none."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._ino = -1
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            for _ in range(5):
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    self._ino = os.fstat(self._fd).st_ino
                fd = self._fd
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    except BlockingIOError:  # a prune holds it: if it swapped the file in already, go to the new one
                        if self._replaced():
                            self._reopen()
                            continue
                        fcntl.flock(fd, fcntl.LOCK_SH)
                if self._replaced():  # pruned while we waited (or removed): write to the file that replaced it
                    self._reopen()  # closing also releases the lock
                    continue
                try:
                    os.write(fd, data)
                finally:
                    if fcntl is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                return
            raise OSError(f"{self.path} kept being replaced while writing")

    def _replaced(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self._ino
        except FileNotFoundError:
            return True

    def _reopen(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold off every writer of the log at ``path`` (keep it short: writers wait on the event loop)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
