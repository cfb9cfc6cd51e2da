"""The run event log read back as per-run facts: what ``logs stats``, ``diag`` and ``optimize`` look at.

One streaming pass over the log; every run keeps a few numbers per step and the set of fields each
of its events carried (the shapes are interned, so a long log costs little memory). Lines that do
not validate are left out of the facts (``logs validate`` reports them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from mcp_orchestrator.contracts import RunEvent
from mcp_orchestrator.observability.logcheck import aware, read_lines

__all__ = ["RunFacts", "StepFacts", "load_history", "percentile", "split_window"]


@dataclass
class StepFacts:
    """One step as the log tells it."""

    index: int
    worker: str | None = None
    role: str | None = None
    runtime: str | None = None
    final_runtime: str | None = None
    status: str | None = None
    failure_class: str | None = None
    duration_ms: int | None = None
    attempts: int = 0
    tried: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    fallbacks: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class RunFacts:
    """One run as the log tells it; ``shapes`` holds (event, fields present) per line."""

    run_id: str
    first_ts: datetime
    last_ts: datetime
    priority: str | None = None
    accepted: bool = False
    started: bool = False
    ended: bool = False
    status: str | None = None
    failure_class: str | None = None
    queue_wait_ms: int | None = None
    run_ms: int | None = None
    steps: dict[int, StepFacts] = field(default_factory=dict)
    shapes: list[tuple[str, frozenset[str]]] = field(default_factory=list)


def _step(run: RunFacts, index: int) -> StepFacts:
    return run.steps.setdefault(index, StepFacts(index))


def _apply(run: RunFacts, ev: RunEvent) -> None:
    run.last_ts = max(run.last_ts, ev.ts)
    if ev.event == "run_accepted":
        run.accepted, run.priority = True, ev.priority
    elif ev.event == "run_started":
        run.started = True
    elif ev.event == "run_ended":
        run.ended, run.status, run.failure_class = True, ev.status, ev.failure_class
        run.queue_wait_ms, run.run_ms = ev.queue_wait_ms, ev.run_ms
    elif ev.step_index is not None:
        st = _step(run, ev.step_index)
        if ev.event == "step_started":
            st.worker, st.role, st.runtime = ev.worker_name, ev.role, ev.runtime_mode
            st.tried = [ev.runtime_mode] if ev.runtime_mode else []
        elif ev.event == "attempt" and ev.runtime_mode and ev.failure_class:
            st.failures.append((ev.runtime_mode, ev.failure_class))
        elif ev.event == "fallback" and ev.runtime_mode and ev.fallback_to:
            st.fallbacks.append((ev.runtime_mode, ev.fallback_to, ev.failure_class or "unknown"))
            st.tried.append(ev.fallback_to)
        elif ev.event == "step_ended":
            st.worker, st.role = st.worker or ev.worker_name, st.role or ev.role
            st.final_runtime, st.status, st.failure_class = ev.runtime_mode, ev.status, ev.failure_class
            st.duration_ms, st.attempts = ev.duration_ms, ev.attempt or 1
            if st.runtime is None:
                st.runtime = ev.runtime_mode


def load_history(path: Path, last: int | None = None) -> list[RunFacts]:
    """The runs in the log at ``path``, in the order each first appears (a missing log has none).

    With ``last``, only the tail of the log that holds the last ``last`` accepted runs is read, and runs
    whose ``run_accepted`` lies before that tail are left out: a long log costs what the window needs.
    """
    if not path.exists():
        return []
    if last is None:
        return facts_from(read_lines(path))
    lines = _tail(path, last)
    if lines is None:
        return facts_from(read_lines(path))
    return [run for run in facts_from(enumerate(lines, start=1)) if run.accepted]


def _tail(path: Path, runs: int, block: int = 1 << 20) -> list[bytes] | None:
    """The last lines of ``path`` that hold ``runs`` run_accepted events; None when that is the whole file."""
    with path.open("rb") as f:
        end = f.seek(0, 2)
        pos, rest, accepted = end, b"", 0
        lines: list[bytes] = []
        while pos > 0:
            pos = max(pos - block, 0)
            f.seek(pos)
            chunk = f.read(min(block, end - pos)) + rest
            parts = chunk.split(b"\n")
            rest = parts.pop(0) if pos > 0 else b""  # a line cut by the block boundary waits for the next block
            done = [p.rstrip(b"\r") for p in parts if p.strip()]
            accepted += sum(b"run_accepted" in p for p in done)
            lines[:0] = done
            end = pos
            if accepted >= runs and pos > 0:
                return lines
    return None


def facts_from(lines: Iterable[tuple[int, bytes]]) -> list[RunFacts]:
    """Per-run facts from raw log lines."""
    runs: dict[str, RunFacts] = {}
    shapes: dict[frozenset[str], frozenset[str]] = {}
    for _, raw in lines:
        try:
            data = json.loads(raw)
            ev = RunEvent.model_validate({k: v for k, v in data.items() if v is not None})
        except (ValueError, AttributeError, ValidationError):
            continue
        ev.ts = aware(ev.ts)
        run = runs.get(ev.run_id)
        if run is None:
            run = runs[ev.run_id] = RunFacts(ev.run_id, ev.ts, ev.ts)
        present = frozenset(k for k, v in data.items() if v is not None)
        run.shapes.append((ev.event, shapes.setdefault(present, present)))
        _apply(run, ev)
    return list(runs.values())


def split_window(runs: list[RunFacts], window: int) -> tuple[list[RunFacts], list[RunFacts]]:
    """The last ``window`` runs, and the ``window`` runs before them."""
    current = runs[-window:] if window > 0 else []
    previous = runs[-2 * window : -window] if window > 0 else []
    return current, previous


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100) of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(int(-(-q * len(ordered) // 100)), 1)  # ceil(q/100 * n), at least 1
    return float(ordered[min(rank, len(ordered)) - 1])
