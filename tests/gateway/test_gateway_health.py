"""The health registry: a rolling window bounded by count and age, and availability from it."""

from __future__ import annotations

from gateway_support import FakeClock

from mcp_orchestrator.contracts import Usage
from mcp_orchestrator.gateway import EndpointKey, HealthConfig, HealthRegistry

KEY = EndpointKey("codex_cli", "cli", "codex")


def registry(clock: FakeClock, **config: object) -> HealthRegistry:
    return HealthRegistry(HealthConfig.model_validate(config), clock=clock)


def test_latency_errors_and_usage_are_summarized() -> None:
    h = registry(FakeClock())
    for seconds in (1.0, 3.0, 2.0):
        h.record(KEY, seconds, True, usage=Usage(input_tokens=10, output_tokens=20, total_tokens=30))
    h.record(KEY, 0.2, False, "unavailable")
    st = h.stats(KEY)
    assert (st.calls, st.errors, st.error_rate, st.consecutive_failures) == (4, 1, 0.25, 1)
    assert (st.latency_p50, st.latency_mean, st.avg_tokens) == (2.0, 2.0, 30.0)
    assert st.last_failure_class == "unavailable"
    assert st.availability == "degraded", "a failure just now"


def test_the_window_is_bounded_by_count_and_by_age() -> None:
    clock = FakeClock()
    h = registry(clock, windowCalls=3, windowSeconds=60)
    for _ in range(5):
        h.record(KEY, 1.0, False, "unavailable")
    assert h.stats(KEY).calls == 3
    clock.advance(61)
    h.record(KEY, 1.0, True)
    st = h.stats(KEY)
    assert (st.calls, st.errors, st.availability) == (1, 0, "healthy")


def test_neutral_outcomes_are_neither_calls_nor_errors() -> None:
    h = registry(FakeClock())
    h.record(KEY, 1.0, True)
    for neutral in ("canceled", "deadline_exceeded", "interrupted", "budget_exceeded"):
        h.record(KEY, 5.0, False, neutral)
    st = h.stats(KEY)
    assert (st.calls, st.errors, st.neutral, st.consecutive_failures, st.availability) == (1, 0, 4, 0, "healthy")


def test_availability_thresholds() -> None:
    h = registry(FakeClock(), minCalls=4, degradedErrorRate=0.25, downErrorRate=0.5, downConsecutive=3)
    assert h.availability(KEY) == "healthy", "nothing heard: healthy"
    for ok in (False, True, True, True):
        h.record(KEY, 1.0, ok, None if ok else "process_error")
    assert h.availability(KEY) == "degraded", "25% errors over the minimum of calls"
    h.record(KEY, 1.0, False, "unavailable")
    h.record(KEY, 1.0, False, "unavailable")
    assert h.stats(KEY).error_rate == 0.5
    assert h.availability(KEY) == "down"
    h.record(KEY, 1.0, True)
    h2 = registry(FakeClock(), downConsecutive=3)
    for _ in range(3):
        h2.record(KEY, 1.0, False, "rate_limited")
    assert h2.availability(KEY) == "down", "three in a row"


def test_slow_endpoints_can_count_as_degraded() -> None:
    h = registry(FakeClock(), degradedLatencySeconds=10)
    h.record(KEY, 12.0, True)
    assert h.availability(KEY) == "degraded"


def test_model_usage_and_snapshot() -> None:
    h = registry(FakeClock())
    other = EndpointKey("codex_cli", "openai_sdk", "api.openai.com/v1")
    h.record(KEY, 1.0, True, usage=Usage(input_tokens=100, output_tokens=10, total_tokens=110))
    h.record(other, 1.0, True, usage=Usage(input_tokens=300, output_tokens=30, total_tokens=330))
    h.record(other, 1.0, False, "unavailable")
    assert h.model_usage("codex_cli") == (200.0, 20.0)
    assert h.model_usage("gemini_cli") is None
    snap = h.snapshot()
    assert [row["key"] for row in snap] == ["codex_cli/cli@codex", "codex_cli/openai_sdk@api.openai.com/v1"]
    assert snap[1]["errorRate"] == 0.5 and snap[1]["lastFailureClass"] == "unavailable"
    assert "message" not in str(snap), "no vendor error text in a snapshot"
    h.reset(KEY)
    assert h.keys() == [other]
