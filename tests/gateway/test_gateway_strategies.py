"""Each routing strategy picks the expected candidate from given health statistics, deterministically."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_support import FakeClock

from mcp_orchestrator.contracts import FailureClass, Usage
from mcp_orchestrator.gateway import Gateway, GatewayConfig

ENV = {"OPENAI_API_KEY": "sk-test-strategies", "GEMINI_API_KEY": "g-test-strategies"}


def make(clock: FakeClock | None = None, environ: dict[str, str] | None = None, **config: Any) -> Gateway:
    """A gateway with ``config`` (camelCase keys), a fake clock and SDK keys in its environment."""
    return Gateway(GatewayConfig.parse(config), clock=clock or FakeClock(), environ=ENV if environ is None else environ)


def feed(
    gw: Gateway,
    runtime: str,
    latencies: list[float],
    *,
    model: str = "codex_cli",
    usage: tuple[int, int] | None = None,
    failure: FailureClass | None = None,
) -> None:
    """Record one attempt per latency on ``model/runtime`` (successes unless ``failure``)."""
    key = gw.key(model, runtime)
    used = Usage(input_tokens=usage[0], output_tokens=usage[1], total_tokens=sum(usage)) if usage else None
    for seconds in latencies:
        gw.record(key, seconds, failure is None, failure, used)


def chosen(gw: Gateway, **route: Any) -> str | None:
    """The runtime a reviewer's step of codex_cli on cli goes to first (``route`` overrides)."""
    args: dict[str, Any] = {"model": "codex_cli", "runtime": "cli", "role": "reviewer", **route}
    return gw.route(**args).chosen


def test_pinned_keeps_the_worker_runtime_first_however_slow() -> None:
    gw = make()
    feed(gw, "cli", [9.0, 9.0, 9.0])
    feed(gw, "openai_sdk", [1.0, 1.0, 1.0])
    route = gw.route(model="codex_cli", runtime="cli", role="reviewer")
    assert route.strategy == "pinned"
    assert route.runtimes() == ["cli", "openai_sdk"]


def test_latency_first_picks_the_lowest_median_latency() -> None:
    gw = make(strategy="latency-first")
    feed(gw, "cli", [4.0, 5.0, 60.0])  # median 5 s; the mean (23 s) would mislead
    feed(gw, "openai_sdk", [1.0, 2.0, 30.0])  # median 2 s
    route = gw.route(model="codex_cli", runtime="cli", role="reviewer")
    assert route.chosen == "openai_sdk"
    decision = route.as_dict()
    assert [(c["runtime_mode"], c["score"]) for c in decision["candidates"]] == [("openai_sdk", 2.0), ("cli", 5.0)]
    assert decision["strategy"] == "latency-first"


def test_latency_first_puts_unmeasured_candidates_after_measured_ones() -> None:
    gw = make(strategy="latency-first")
    feed(gw, "openai_sdk", [30.0])
    assert chosen(gw) == "openai_sdk"  # cli has no successful call in the window: its latency is unknown


def test_quality_first_follows_the_operator_rank() -> None:
    gw = make(strategy="quality-first", qualityRank={"codex_cli/openai_sdk": 1, "codex_cli/cli": 2})
    feed(gw, "cli", [1.0])
    feed(gw, "openai_sdk", [9.0])
    assert chosen(gw) == "openai_sdk"
    gw = make(strategy="quality-first", qualityRank={"codex_cli/cli": 1})
    assert chosen(gw, runtime="openai_sdk") == "cli", "ranked before unranked"


def test_cost_first_prices_the_recorded_usage() -> None:
    prices = {"codex_cli/cli": {"inputPerMTok": 2.0, "outputPerMTok": 20.0}, "openai_sdk": {"inputPerMTok": 1.25}}
    gw = make(strategy="cost-first", prices=prices)
    feed(gw, "cli", [1.0], usage=(1000, 1000))  # 0.002 + 0.02 = 0.022 USD a call
    feed(gw, "openai_sdk", [1.0], usage=(40000, 9000))  # 0.05 USD a call (output unpriced: 0)
    route = gw.route(model="codex_cli", runtime="cli", role="reviewer")
    assert [(c.runtime, c.score) for c in route.candidates] == [("cli", pytest.approx(0.022)), ("openai_sdk", 0.05)]
    feed(gw, "cli", [1.0] * 3, usage=(1000, 5000))  # now 0.0855 on average
    assert chosen(gw) == "openai_sdk"


def test_cost_first_without_history_uses_the_model_usage_then_a_nominal_call() -> None:
    prices = {"cli": {"inputPerMTok": 3.0, "outputPerMTok": 15.0}, "openai_sdk": {"inputPerMTok": 1.0}}
    gw = make(strategy="cost-first", prices=prices)
    route = gw.route(model="codex_cli", runtime="cli", role="reviewer")
    assert [c.score for c in route.candidates] == [0.001, 0.018]  # 1000 in + 1000 out each
    feed(gw, "cli", [1.0], usage=(4000, 0))
    assert [c.score for c in gw.route(model="codex_cli", runtime="cli", role="reviewer").candidates] == [
        0.004,  # openai_sdk has no usage: the model's average (4000 in) priced at its own rate
        0.012,
    ]


def test_cost_first_puts_unpriced_candidates_last() -> None:
    gw = make(strategy="cost-first", prices={"openai_sdk": {"inputPerMTok": 100.0, "outputPerMTok": 100.0}})
    assert chosen(gw) == "openai_sdk"


def test_ties_are_broken_by_the_fixed_order() -> None:
    gw = make(strategy="latency-first")
    feed(gw, "cli", [2.0])
    feed(gw, "openai_sdk", [2.0])
    assert chosen(gw) == "cli"  # the worker's own runtime is first in the fixed order
    assert chosen(gw, runtime="openai_sdk") == "openai_sdk"


def test_availability_comes_before_the_score() -> None:
    gw = make(strategy="latency-first")
    feed(gw, "cli", [0.5])
    feed(gw, "cli", [0.1] * 3, failure="bad_output")  # not a breaker class: the circuit stays closed
    feed(gw, "openai_sdk", [8.0])
    route = gw.route(model="codex_cli", runtime="cli", role="reviewer")
    assert [(c.runtime, c.availability, c.breaker) for c in route.candidates] == [
        ("openai_sdk", "healthy", "closed"),
        ("cli", "down", "closed"),
    ]
    assert chosen(gw, pinned=True) == "cli", "a runtime named by the dispatch stays first"


def test_strategy_per_role_and_priority_class() -> None:
    gw = make(
        strategy="latency-first",
        strategyByRole={"reviewer": "quality-first"},
        strategyByPriority={"batch": "cost-first"},
    )
    assert gw.route(model="codex_cli", runtime="cli", role="reviewer", priority="batch").strategy == "quality-first"
    assert gw.route(model="codex_cli", runtime="cli", role="planner", priority="batch").strategy == "cost-first"
    assert gw.route(model="codex_cli", runtime="cli", role="planner").strategy == "latency-first"
    assert gw.route(model="codex_cli", runtime="cli", role="reviewer", pinned=True).strategy == "pinned"


def test_the_policy_rules_candidates_out_and_says_why() -> None:
    gw = make(strategy="latency-first")
    feed(gw, "openai_sdk", [0.1])
    writer = gw.route(model="codex_cli", runtime="cli", role="writer")
    assert writer.runtimes() == ["cli"], "a writer's files would silently not change on an SDK"
    assert "answers in text only" in writer.candidates[-1].reason
    no_key = make(environ={}).route(model="codex_cli", runtime="cli", role="reviewer")
    assert (no_key.runtimes(), no_key.candidates[-1].reason) == (["cli"], "no OPENAI_API_KEY")
    never = gw.route(model="codex_cli", runtime="cli", role="reviewer", fallback_policy="never")
    assert [c.runtime for c in never.candidates] == ["cli"]
    mock_worker = gw.route(model="codex_cli", runtime="mock", role="reviewer")
    assert [c.runtime for c in mock_worker.candidates] == ["mock"], "a mock-run worker gets no real runtime"
    demo = make(candidates={"codex_cli": ["cli", "mock"]}).route(model="codex_cli", runtime="cli", role="reviewer")
    assert demo.runtimes() == ["cli", "mock"]


def test_the_next_candidate_after_a_failure() -> None:
    route = make().route(model="codex_cli", runtime="cli", role="reviewer")
    assert route.next_after("cli", "unavailable") == "openai_sdk"
    assert route.next_after("cli", "timeout") is None, "a task-shaped failure is not worth another runtime"
    assert route.next_after("cli", "auth", exclude=("openai_sdk",)) is None


def test_the_same_statistics_give_the_same_decision() -> None:
    def decide() -> dict[str, Any]:
        gw = make(strategy="latency-first")
        feed(gw, "cli", [3.0, 1.0])
        feed(gw, "openai_sdk", [2.0, 2.0])
        return gw.route(model="codex_cli", runtime="cli", role="reviewer").as_dict()

    assert decide() == decide()
    assert decide()["chosen"] == "cli"  # both medians are 2 s: the fixed order decides
