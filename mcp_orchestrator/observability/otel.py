"""OpenTelemetry spans for runs and steps, derived from the run events the service emits.

Only the OpenTelemetry API is used (it comes with ``mcp``); without an SDK configured by the host
process every span is a non-recording no-op, so this costs next to nothing. A process that installs
``opentelemetry-sdk`` and sets a tracer provider gets one ``orchestrator.run`` span per run (from
``run_started`` to ``run_ended``) with an ``orchestrator.step`` child per step; failed attempts
and fallbacks are span events. A run that ends without starting (canceled or expired while
queued) gets an instant span. Spans are not made current: they follow the run's events, which
come from many tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, StatusCode, TracerProvider

from mcp_orchestrator import __version__

__all__ = ["RunTracing"]

MAX_PENDING = 4096
_ATTRS = {
    "agent_id": "orchestrator.agent_id",
    "strategy": "orchestrator.strategy",
    "priority": "orchestrator.priority",
    "process": "orchestrator.process",
    "worker_name": "orchestrator.worker",
    "role": "orchestrator.role",
    "runtime_mode": "orchestrator.runtime",
    "status": "orchestrator.status",
    "failure_class": "orchestrator.failure_class",
    "attempt": "orchestrator.attempts",
    "duration_ms": "orchestrator.duration_ms",
    "output_bytes": "orchestrator.output_bytes",
    "queue_wait_ms": "orchestrator.queue_wait_ms",
    "run_ms": "orchestrator.run_ms",
}


def _attributes(fields: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    return {_ATTRS[k]: v for k, v in fields.items() if k in _ATTRS and isinstance(v, str | int | float | bool)}


class RunTracing:
    """Turns run events into spans (``on_event`` is called by ``Orchestrator.emit``)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("mcp_orchestrator", __version__, tracer_provider=provider)
        self._pending: dict[str, dict[str, str | int | float | bool]] = {}
        self._runs: dict[str, Span] = {}
        self._steps: dict[tuple[str, int], Span] = {}

    def on_event(self, event: str, run_id: str, fields: Mapping[str, Any]) -> None:
        """Open, annotate or close the span of ``run_id`` (or of one of its steps)."""
        attrs = _attributes(fields)
        if event == "run_accepted":
            if len(self._pending) >= MAX_PENDING:  # runs accepted here but started elsewhere
                self._pending.pop(next(iter(self._pending)))
            self._pending[run_id] = attrs
        elif event == "run_started":
            start = {"orchestrator.run_id": run_id, **self._pending.pop(run_id, {}), **attrs}
            self._runs[run_id] = self._tracer.start_span("orchestrator.run", attributes=start)
        elif event == "run_ended":
            for key in [k for k in self._steps if k[0] == run_id]:
                self._steps.pop(key).end()
            span = self._runs.pop(run_id, None)
            if span is None:  # never started: an instant span still records how it ended
                attrs = {"orchestrator.run_id": run_id, **self._pending.pop(run_id, {}), **attrs}
                span = self._tracer.start_span("orchestrator.run")
            _finish(span, attrs, fields)
        elif isinstance(fields.get("step_index"), int):
            self._on_step(event, run_id, fields["step_index"], fields, attrs)

    def _on_step(
        self, event: str, run_id: str, index: int, fields: Mapping[str, Any], attrs: dict[str, str | int | float | bool]
    ) -> None:
        key = (run_id, index)
        if event == "step_started":
            parent = self._runs.get(run_id)
            context = trace.set_span_in_context(parent) if parent is not None else None
            start = {"orchestrator.run_id": run_id, "orchestrator.step": index, **attrs}
            self._steps[key] = self._tracer.start_span("orchestrator.step", context=context, attributes=start)
            return
        span = self._steps.get(key)
        if event in ("attempt", "fallback") and span is not None:
            event_attrs = dict(attrs)
            if isinstance(fields.get("fallback_to"), str):
                event_attrs["orchestrator.fallback_to"] = fields["fallback_to"]
            span.add_event(event, attributes=event_attrs)
        elif event == "step_ended":
            span = self._steps.pop(key, None)
            if span is None:  # canceled before it started
                parent = self._runs.get(run_id)
                context = trace.set_span_in_context(parent) if parent is not None else None
                span = self._tracer.start_span("orchestrator.step", context=context)
                attrs = {"orchestrator.run_id": run_id, "orchestrator.step": index, **attrs}
            _finish(span, attrs, fields)


def _finish(span: Span, attrs: dict[str, str | int | float | bool], fields: Mapping[str, Any]) -> None:
    span.set_attributes(attrs)
    if fields.get("status") in ("failed", "canceled"):
        span.set_status(StatusCode.ERROR, str(fields.get("failure_class") or fields.get("status")))
    span.end()
