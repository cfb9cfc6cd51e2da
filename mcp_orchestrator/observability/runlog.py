"""The run event log: one JSON object per line, every line with ``schemaVersion``.

Events: ``run_accepted``, ``run_started``, ``step_started``, ``attempt``, ``fallback``,
``step_ended``, ``run_ended``; the schema is ``contracts/log/run-event.schema.json``. Several
processes append to one file: each line is a single ``write`` on an ``O_APPEND`` descriptor, so
lines never interleave. Every string is redacted before it is written.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mcp_orchestrator.contracts import RunEvent, utcnow
from mcp_orchestrator.observability.redact import Redactor

__all__ = ["RunLog"]

log = logging.getLogger(__name__)

MAX_LINE = 16 * 1024


class RunLog:
    """Appends validated events to ``<home>/logs/events.jsonl``."""

    def __init__(self, home: Path, redactor: Redactor | None = None) -> None:
        self.path = home / "logs" / "events.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.redactor = redactor or Redactor()

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
                data = (record.model_dump_json(exclude_none=True) + "\n").encode()[:MAX_LINE]
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except (OSError, ValueError) as e:
            log.warning("run log: could not write %s for %s: %s", event, run_id, e)
