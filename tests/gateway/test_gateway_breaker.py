"""Circuit breakers: they open after their threshold and route away; one half-open probe closes them again.

Time is a ``FakeClock`` injected into the breakers: no test waits for a cooldown.
"""

from __future__ import annotations

from typing import Any

import pytest
from gateway_support import FakeClock, answer, failing

from mcp_orchestrator.contracts import FailureClass
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.gateway import BreakerBoard, BreakerConfig, CircuitBreaker, CircuitOpen, Gateway, GatewayConfig
from mcp_orchestrator.runtimes.base import StepOutcome

pytestmark = pytest.mark.anyio


def breaker(clock: FakeClock, **config: Any) -> CircuitBreaker:
    return CircuitBreaker(BreakerConfig.model_validate(config), clock=clock)


def fail(b: CircuitBreaker, times: int, failure_class: FailureClass = "unavailable") -> None:
    for _ in range(times):
        assert b.allow()
        b.on_failure(failure_class, "scripted")


# ---- one breaker ------------------------------------------------------------------------------


def test_consecutive_failures_open_it_and_the_cooldown_admits_exactly_one_probe() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutiveFailures=3, cooldownSeconds=30)
    fail(b, 2)
    assert b.state == "closed"
    fail(b, 1)
    assert (b.state, b.allow(), b.retry_in()) == ("open", False, 30.0)
    clock.advance(29.9)
    assert not b.allow()
    clock.advance(0.1)
    assert b.state == "half_open"
    assert b.allow(), "the probe"
    assert not b.allow(), "exactly one probe"
    b.on_success()
    assert (b.state, b.allow(), b.trips) == ("closed", True, 1)


def test_a_failed_probe_opens_it_again_for_a_new_cooldown() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutiveFailures=1, cooldownSeconds=10)
    fail(b, 1)
    clock.advance(10)
    assert b.allow()
    b.on_failure("rate_limited", "slow down")
    assert (b.state, b.retry_in(), b.trips) == ("open", 10.0, 2)
    assert b.last_failure == ("rate_limited", "slow down")


def test_a_probe_without_a_verdict_gives_its_turn_back() -> None:
    clock = FakeClock()
    b = breaker(clock, consecutiveFailures=1, cooldownSeconds=0)
    fail(b, 1)
    assert b.allow()
    b.on_failure("timeout", "the task was long")  # not the endpoint's fault: no verdict
    assert b.state == "half_open"
    assert b.allow(), "the next call is the probe"
    b.on_release()  # canceled (a hedge lost)
    assert b.allow()


def test_the_error_rate_over_a_minimum_of_calls_opens_it() -> None:
    clock = FakeClock()
    b = breaker(clock, minCalls=6, errorRate=0.5, consecutiveFailures=100)
    for _ in range(2):  # success, failure, failure: never 3 in a row
        b.on_success()
        fail(b, 2)
    assert b.state == "open", "4 failures of 6 calls"


def test_old_calls_leave_the_window() -> None:
    clock = FakeClock()
    b = breaker(clock, minCalls=4, errorRate=0.5, consecutiveFailures=100, windowSeconds=60)
    fail(b, 3)
    clock.advance(61)
    b.on_success()
    fail(b, 1)
    assert b.state == "closed", "the first three failures are older than the window"
    assert b.snapshot()["calls"] == 2


def test_failures_that_are_not_the_endpoints_do_not_count() -> None:
    b = breaker(FakeClock(), consecutiveFailures=2)
    fail(b, 5, "bad_output")
    fail(b, 5, "timeout")
    assert b.state == "closed"


def test_auth_marks_it_misconfigured_until_the_configuration_changes() -> None:
    clock = FakeClock()
    board = BreakerBoard(BreakerConfig(), clock=clock)
    gw = Gateway(clock=clock, environ={})
    key = gw.key("codex_cli", "openai_sdk")
    assert board.allow(key, "fp-1")
    board.record(key, False, "auth", message="openai: invalid key", fingerprint="fp-1")
    assert board.state(key, "fp-1") == "misconfigured"
    clock.advance(10**6)
    assert not board.allow(key, "fp-1"), "no cooldown, no probe, no cycling"
    refusal = board.refusal(key)
    assert (refusal.failure_class, refusal.state) == ("auth", "misconfigured")
    assert refusal.message.startswith("openai: invalid key")
    assert board.allow(key, "fp-2"), "a new configuration gets a fresh start"


def test_auth_fail_fast_can_be_turned_off() -> None:
    b = breaker(FakeClock(), authFailFast=False, consecutiveFailures=1)
    fail(b, 3, "auth")
    assert b.state == "closed", "credentials checked per request: an auth failure is the request's"


def test_an_operator_reset_closes_every_breaker() -> None:
    clock = FakeClock()
    board = BreakerBoard(BreakerConfig(consecutive_failures=1), clock=clock)
    keys = [Gateway(environ={}).key("codex_cli", r) for r in ("cli", "openai_sdk")]
    board.record(keys[0], False, "unavailable")
    board.record(keys[1], False, "auth")
    assert [board.state(k) for k in keys] == ["open", "misconfigured"]
    assert board.reset() == 2
    assert [board.state(k) for k in keys] == ["closed", "closed"]


def test_exempt_runtimes_never_open() -> None:
    board = BreakerBoard(BreakerConfig(consecutive_failures=1))
    key = Gateway(environ={}).key("mock", "mock")
    for _ in range(10):
        board.record(key, False, "unavailable")
    assert board.allow(key) and board.state(key) == "closed"
    assert board.snapshot() == []


# ---- through the gateway ------------------------------------------------------------------------


ENV = {"OPENAI_API_KEY": "sk-test-breaker"}


def gateway(clock: FakeClock, environ: dict[str, str] | None = None) -> Gateway:
    config = GatewayConfig.parse({"breaker": {"consecutiveFailures": 3, "cooldownSeconds": 30}})
    return Gateway(config, clock=clock, environ=ENV if environ is None else environ)


def reviewer_route(gw: Gateway) -> list[tuple[str, str, bool]]:
    route = gw.route(model="codex_cli", runtime="cli", role="reviewer")
    return [(c.runtime, c.breaker, c.eligible) for c in route.candidates]


async def test_an_open_breaker_routes_away_and_a_successful_probe_brings_it_back() -> None:
    clock = FakeClock()
    gw = gateway(clock)
    cli = gw.key("codex_cli", "cli")
    for _ in range(3):
        with pytest.raises(RunFailure) as caught:
            await gw.call(cli, failing("unavailable", "codex: HTTP 503"))
        assert not isinstance(caught.value, CircuitOpen), "these calls really ran"
    assert reviewer_route(gw) == [("openai_sdk", "closed", True), ("cli", "open", False)]
    assert gw.route(model="codex_cli", runtime="cli", role="reviewer").as_dict()["candidates"][1]["reason"] == (
        "circuit open"
    )

    calls = 0

    async def counted() -> StepOutcome:
        nonlocal calls
        calls += 1
        return await answer()()

    with pytest.raises(CircuitOpen) as refused:
        await gw.call(cli, counted)
    assert calls == 0, "an open circuit sends nothing"
    assert refused.value.failure_class == "unavailable"
    assert "retry in 30 s" in refused.value.message and "codex: HTTP 503" in refused.value.message

    clock.advance(30)
    assert reviewer_route(gw) == [("cli", "half_open", True), ("openai_sdk", "closed", True)]
    outcome = await gw.call(cli, counted)  # the endpoint recovered: the probe succeeds
    assert (outcome.text, calls) == ("ok", 1)
    assert reviewer_route(gw)[0] == ("cli", "closed", True)
    (row,) = [e for e in gw.snapshot()["endpoints"] if e["key"] == cli.label]
    assert row["breaker"]["state"] == "closed" and row["breaker"]["trips"] == 1


async def test_a_failing_probe_keeps_routing_away() -> None:
    clock = FakeClock()
    gw = gateway(clock)
    cli = gw.key("codex_cli", "cli")
    for _ in range(3):
        with pytest.raises(RunFailure):
            await gw.call(cli, failing("unavailable"))
    clock.advance(30)
    with pytest.raises(RunFailure):
        await gw.call(cli, failing("unavailable"))  # the probe
    assert reviewer_route(gw) == [("openai_sdk", "closed", True), ("cli", "open", False)]


async def test_an_auth_failure_fails_fast_until_the_key_changes() -> None:
    clock = FakeClock()
    env = dict(ENV)
    gw = gateway(clock, env)
    sdk = gw.key("codex_cli", "openai_sdk")
    with pytest.raises(RunFailure):
        await gw.call(sdk, failing("auth", "openai: invalid API key"))
    route = gw.route(model="codex_cli", runtime="openai_sdk", role="reviewer")
    assert [(c.runtime, c.breaker) for c in route.candidates] == [("cli", "closed"), ("openai_sdk", "misconfigured")]
    with pytest.raises(CircuitOpen) as refused:
        await gw.call(sdk, answer())
    assert refused.value.failure_class == "auth"
    env["OPENAI_API_KEY"] = "sk-test-rotated"
    assert (await gw.call(sdk, answer())).text == "ok"
