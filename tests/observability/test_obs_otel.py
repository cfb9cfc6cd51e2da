"""OpenTelemetry spans for runs and steps.

``opentelemetry-sdk`` is not installed (only the API, which ``mcp`` brings), so the spans are recorded by a
small ``TracerProvider`` written against the API's abstract classes: a real implementation of the seam,
like the mock runtime. Without any provider the helper must be a silent no-op.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from obs_support import dispatch_and_wait, running
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.util.types import Attributes

from mcp_orchestrator.config import Settings
from mcp_orchestrator.observability.otel import RunTracing


class RecordedSpan(Span):
    """A span that keeps what it was told."""

    def __init__(self, name: str, parent: Span | None, attributes: Attributes) -> None:
        self.name, self.parent = name, parent
        self.attributes: dict[str, Any] = dict(attributes or {})
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.status: StatusCode = StatusCode.UNSET
        self.ended = False
        self._context = SpanContext(trace_id=1, span_id=id(self) & 0xFFFFFFFFFFFF, is_remote=False)

    def end(self, end_time: int | None = None) -> None:
        assert not self.ended, f"{self.name} ended twice"
        self.ended = True

    def get_span_context(self) -> SpanContext:
        return self._context

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.attributes.update(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        self.events.append((name, dict(attributes or {})))

    def update_name(self, name: str) -> None:
        self.name = name

    def is_recording(self) -> bool:
        return not self.ended

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self.status = status.status_code if isinstance(status, Status) else status

    def record_exception(self, exception: BaseException, *args: Any, **kwargs: Any) -> None:
        self.events.append(("exception", {"type": type(exception).__name__}))


class RecordingTracer(Tracer):
    """Starts ``RecordedSpan``s and keeps them all."""

    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        parent = trace.get_current_span(context) if context is not None else None
        span = RecordedSpan(name, parent if isinstance(parent, RecordedSpan) else None, attributes)
        self.spans.append(span)
        return span

    @contextmanager
    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Iterator[Span]:
        span = self.start_span(name)
        with trace.use_span(span, end_on_exit=True):
            yield span


class RecordingProvider(TracerProvider):
    """One ``RecordingTracer`` for everyone."""

    def __init__(self) -> None:
        self.tracer = RecordingTracer()

    def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
        return self.tracer


@pytest.mark.anyio
async def test_runs_and_steps_become_spans(settings: Settings) -> None:
    provider = RecordingProvider()
    async with running(dataclasses.replace(settings, max_running=1)) as orch:  # so that a run can wait queued
        orch.tracing = RunTracing(provider)
        await orch.spawn_worker("a", "w", "mock")
        ok = await dispatch_and_wait(orch, "w", "[[mock fail=rate_limited fail_times=1]]", priority="batch")
        bad = await dispatch_and_wait(orch, "w", "[[mock fail=auth]]")
        slow = await orch.dispatch("a", "[[mock delay=30]]", workers=["w"])
        queued = await orch.dispatch("a", "waits for w", workers=["w"])
        await orch.cancel_run("a", queued.run_id)
        await orch.cancel_run("a", slow.run_id)
    spans = provider.tracer.spans
    assert all(s.ended for s in spans)
    runs = {s.attributes["orchestrator.run_id"]: s for s in spans if s.name == "orchestrator.run"}
    assert set(runs) == {ok.run_id, bad.run_id, slow.run_id, queued.run_id}
    steps = [s for s in spans if s.name == "orchestrator.step"]
    assert {s.attributes["orchestrator.run_id"] for s in steps} == {ok.run_id, bad.run_id, slow.run_id}
    for step in steps:
        assert step.parent is runs[step.attributes["orchestrator.run_id"]]

    good = runs[ok.run_id]
    assert good.attributes["orchestrator.priority"] == "batch"
    assert good.attributes["orchestrator.status"] == "completed"
    assert good.status == StatusCode.UNSET
    [retried] = [s for s in steps if s.parent is good]
    assert retried.attributes["orchestrator.attempts"] == 2
    assert retried.attributes["orchestrator.runtime"] == "mock"
    assert [name for name, _ in retried.events] == ["attempt"]
    assert retried.events[0][1]["orchestrator.failure_class"] == "rate_limited"

    assert runs[bad.run_id].status == StatusCode.ERROR
    assert runs[bad.run_id].attributes["orchestrator.failure_class"] == "auth"
    never = runs[queued.run_id]  # canceled while queued: an instant span that says so
    assert never.status == StatusCode.ERROR
    assert never.attributes["orchestrator.status"] == "canceled"


@pytest.mark.anyio
async def test_without_an_sdk_the_spans_are_a_silent_no_op(settings: Settings) -> None:
    if importlib.util.find_spec("opentelemetry.sdk") is None:  # the API alone records nothing
        assert not trace.get_tracer("probe").start_span("probe").is_recording()
    tracing = RunTracing()
    for event, fields in (
        ("run_accepted", {"priority": "batch"}),
        ("run_started", {}),
        ("step_started", {"step_index": 0, "runtime_mode": "mock"}),
        ("attempt", {"step_index": 0, "failure_class": "unavailable"}),
        ("fallback", {"step_index": 0, "fallback_to": "cli"}),
        ("step_ended", {"step_index": 0, "status": "failed", "failure_class": "auth"}),
        ("step_ended", {"step_index": 1, "status": "canceled"}),
        ("run_ended", {"status": "failed", "failure_class": "auth"}),
        ("run_ended", {"status": "canceled"}),
    ):
        tracing.on_event(event, "run_x", fields)
    async with running(settings) as orch:  # the service's own helper, with whatever provider is global
        await orch.spawn_worker("a", "w", "mock")
        assert (await dispatch_and_wait(orch, "w", "fine")).status == "completed"
