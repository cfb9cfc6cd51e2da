"""``mcp-orchestrator logs validate``: check a run event log line by line against its contract.

Every failure has one of six deterministic classes and a line-local diagnostic
``file:line: class: field: message``:

* ``invalid_json`` - the line is not a JSON object (or not UTF-8, or empty);
* ``unknown_event`` - ``event`` names no known event;
* ``null_field`` - a field is present as ``null`` (the writer omits absent fields, never writes null);
* ``missing_field`` - a field the schema or the event type needs is absent (``schemaVersion`` included);
* ``schema_violation`` - anything else the published schema refuses (types, enums, unknown fields,
  a newer ``schemaVersion``);
* ``out_of_order`` - the run's story is impossible: an event before its ``run_accepted``,
  ``run_started`` twice, a step event before the run started or before its ``step_started``, anything
  after ``run_ended``, or time going backwards within a run. A step canceled while it waited for its
  worker legitimately ends without having started (``step_ended`` with status ``canceled``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

from pydantic import ValidationError

from mcp_orchestrator.contracts import SCHEMA_VERSION, RunEvent, RunEventName
from mcp_orchestrator.observability.models import LogFailureClass, LogValidation

__all__ = [
    "EXPECTED_FIELDS",
    "OPTIONAL_FIELDS",
    "Diagnostic",
    "aware",
    "read_lines",
    "validate_lines",
    "validate_log",
]

EVENTS: tuple[str, ...] = get_args(RunEventName)
BASE_FIELDS = ("schemaVersion", "event", "runId", "ts", "process")
# The fields each event type carries, as the service writes them (wire names).
EXPECTED_FIELDS: dict[str, tuple[str, ...]] = {
    "run_accepted": ("agentId", "strategy", "priority"),
    "run_started": (),
    "step_started": ("stepIndex", "workerName", "role", "runtimeMode"),
    "attempt": ("stepIndex", "attempt", "runtimeMode", "failureClass", "message", "delayBeforeMs"),
    "fallback": ("stepIndex", "runtimeMode", "fallbackTo", "failureClass", "message"),
    "step_ended": ("stepIndex", "workerName", "role", "runtimeMode", "status", "durationMs", "outputBytes", "attempt"),
    "run_ended": ("status", "queueWaitMs"),
    "audit": ("principal", "tool", "agentId", "status"),
}
# Present only in some events of the type: failure fields only when something failed.
OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "step_ended": ("failureClass", "usage"),
    "run_ended": ("failureClass", "message", "runMs"),
}
_FAILED = ("failed", "canceled")


@dataclass(frozen=True)
class Diagnostic:
    """One failure, local to one line."""

    line: int
    failure_class: LogFailureClass
    field: str
    message: str

    def render(self, file: str) -> str:
        """``file:line: class: field: message``."""
        return f"{file}:{self.line}: {self.failure_class}: {self.field}: {self.message}"


@dataclass
class _RunState:
    accepted: bool = False
    started: bool = False
    ended: bool = False
    last_ts: datetime | None = None
    open_steps: set[int] = field(default_factory=set)
    seen_steps: set[int] = field(default_factory=set)


def aware(ts: datetime) -> datetime:
    """``ts`` with a time zone (a naive time is taken as UTC), so any two compare."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, raw bytes without the newline)`` of every line, streamed."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            yield number, raw.rstrip(b"\n").rstrip(b"\r")


def _line_checks(number: int, raw: bytes) -> tuple[RunEvent | None, list[Diagnostic]]:
    """Parse one line; the event when it is valid, and what is wrong with it."""

    def bad(cls: LogFailureClass, name: str, message: str) -> tuple[None, list[Diagnostic]]:
        return None, [Diagnostic(number, cls, name, message)]

    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        return bad("invalid_json", "-", f"not UTF-8 (byte {e.start})")
    except ValueError as e:
        return bad("invalid_json", "-", "empty line" if not raw.strip() else f"not JSON ({e})")
    if not isinstance(data, dict):
        return bad("invalid_json", "-", f"a JSON {type(data).__name__}, not an object")
    event = data.get("event")
    if event is not None and event not in EVENTS:
        return bad("unknown_event", "event", f"{event!r} is not one of {', '.join(EVENTS)}")
    out: list[Diagnostic] = []
    for name, value in data.items():
        if value is None:
            out.append(Diagnostic(number, "null_field", name, "present as null; absent fields are omitted"))
    needed = list(BASE_FIELDS) + list(EXPECTED_FIELDS.get(str(event), ()))
    if event == "step_ended" and data.get("status") in _FAILED:
        needed.append("failureClass")
    if event == "run_ended" and data.get("status") in _FAILED:
        needed.append("failureClass")
    for name in needed:
        if name not in data:
            out.append(Diagnostic(number, "missing_field", name, f"{event or 'every event'} needs {name}"))
    version = data.get("schemaVersion")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        out.append(Diagnostic(number, "schema_violation", "schemaVersion", f"{version} is newer than {SCHEMA_VERSION}"))
    try:
        record = RunEvent.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as e:
        for err in e.errors():
            name = ".".join(str(p) for p in err["loc"]) or "-"
            if err["type"] == "missing":
                continue  # reported above as missing_field
            out.append(Diagnostic(number, "schema_violation", name, err["msg"]))
        return None, out
    return record, out


def _order_checks(number: int, ev: RunEvent, runs: dict[str, _RunState]) -> list[Diagnostic]:
    """Whether ``ev`` can happen now in its run's story (updates that story)."""
    st = runs.setdefault(ev.run_id, _RunState())
    out: list[Diagnostic] = []

    def wrong(message: str) -> None:
        out.append(Diagnostic(number, "out_of_order", "event", f"{ev.event} {message} (run {ev.run_id})"))

    ts = aware(ev.ts)
    if st.last_ts is not None and ts < st.last_ts:
        out.append(Diagnostic(number, "out_of_order", "ts", f"{ts.isoformat()} is before {st.last_ts.isoformat()}"))
    st.last_ts = ts if st.last_ts is None else max(st.last_ts, ts)
    if st.ended:
        wrong("after run_ended")
        return out
    if ev.event == "run_accepted":
        if st.accepted:
            wrong("a second time")
        st.accepted = True
        return out
    if not st.accepted:
        wrong("before run_accepted")
    if ev.event == "run_started":
        if st.started:
            wrong("a second time")
        st.started = True
    elif ev.event == "run_ended":
        st.ended = True
    elif ev.step_index is not None:
        index = ev.step_index
        if not st.started:
            wrong(f"for step {index} before run_started")
        if ev.event == "step_started":
            if index in st.seen_steps:
                wrong(f"for step {index} a second time")
            st.seen_steps.add(index)
            st.open_steps.add(index)
        elif ev.event == "step_ended":
            never_started = index not in st.seen_steps and ev.status == "canceled"
            if index not in st.open_steps and not never_started:
                wrong(f"for step {index} without an open step_started")
            st.open_steps.discard(index)
            st.seen_steps.add(index)
        elif index not in st.open_steps:  # attempt, fallback
            wrong(f"for step {index} outside its step_started..step_ended")
    return out


def validate_lines(lines: Iterable[tuple[int, bytes]]) -> tuple[list[Diagnostic], Counter[str], int, int, int]:
    """Check every line: (diagnostics, events by name, lines, valid lines, runs)."""
    runs: dict[str, _RunState] = {}
    diagnostics: list[Diagnostic] = []
    events: Counter[str] = Counter()
    total = valid = 0
    for number, raw in lines:
        total += 1
        record, found = _line_checks(number, raw)
        if record is not None:
            if record.event != "audit":  # a call's audit line is not part of any run's story
                found += _order_checks(number, record, runs)
            events[record.event] += 1
        if not found:
            valid += 1
        diagnostics.extend(found)
    return diagnostics, events, total, valid, len(runs)


def validate_log(path: Path) -> tuple[LogValidation, list[Diagnostic]]:
    """Validate the log at ``path``; a missing file is an empty log."""
    lines: Iterable[tuple[int, bytes]] = read_lines(path) if path.exists() else ()
    diagnostics, events, total, valid, runs = validate_lines(lines)
    failures = Counter(d.failure_class for d in diagnostics)
    summary = LogValidation(
        file=str(path),
        lines=total,
        valid_lines=valid,
        runs=runs,
        events=dict(sorted(events.items())),
        failures=dict(sorted(failures.items())),
        ok=not diagnostics,
    )
    return summary, diagnostics
