"""Budgets: a run's tokens and cost are checked before each attempt, so a run stops before it overspends."""

from __future__ import annotations

import pytest
from gateway_support import FakeClock, answer, failing

from mcp_orchestrator.contracts import Usage
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.gateway import Budget, BudgetExceeded, Estimate, Gateway, GatewayConfig, Price
from mcp_orchestrator.runtimes.base import StepOutcome

pytestmark = pytest.mark.anyio


def usage(inp: int, out: int) -> Usage:
    return Usage(input_tokens=inp, output_tokens=out, total_tokens=inp + out)


def test_would_exceed_counts_what_was_spent_reserved_and_estimated() -> None:
    b = Budget(max_tokens=1000)
    assert b.would_exceed(Estimate(1000)) is None, "exactly the budget fits"
    held = b.reserve(Estimate(600))
    refusal = b.would_exceed(Estimate(500))
    assert refusal is not None and (refusal.limit, refusal.spent, refusal.estimate) == ("tokens", 600, 500)
    b.charge(usage(300, 100), "codex_cli", "cli", held)
    assert (b.spent_tokens, b.would_exceed(Estimate(600))) == (400, None)
    b.charge(usage(500, 100), "codex_cli", "cli")
    assert b.would_exceed(Estimate(0)) is not None, "nothing left: even an unknown step is refused"


def test_cost_limits_price_the_usage_and_count_unpriced_tokens() -> None:
    b = Budget(max_cost_usd=0.05, prices={"openai_sdk": Price(inputPerMTok=10.0, outputPerMTok=40.0)})
    assert b.charge(usage(1000, 500), "codex_cli", "openai_sdk") == pytest.approx(0.03)
    assert b.charge(usage(1000, 500), "codex_cli", "cli") is None
    assert (b.unpriced_tokens, b.spent_cost_usd) == (1500, pytest.approx(0.03))
    refusal = b.would_exceed(Estimate(tokens=1500, cost_usd=0.03))
    assert refusal is not None and refusal.limit == "cost"
    assert "budget of 0.0500 USD would be exceeded" in str(refusal)
    assert b.average() == Estimate(1500, pytest.approx(0.015))


def test_a_refused_reservation_holds_nothing_and_a_released_one_gives_back() -> None:
    b = Budget(max_tokens=250)
    first = b.reserve(Estimate(150))
    with pytest.raises(BudgetExceeded):
        b.reserve(Estimate(150))  # two steps side by side would overspend together
    b.release(first)
    b.reserve(Estimate(150))
    assert b.snapshot()["reserved"] == 1


async def test_a_budget_stops_a_run_before_it_overspends() -> None:
    gw = Gateway(GatewayConfig(), clock=FakeClock(), environ={})
    key = gw.key("mock", "mock")
    budget = gw.budget(max_tokens=400)
    ran = 0

    async def step() -> StepOutcome:
        nonlocal ran
        ran += 1
        return await answer(100, 50)()  # 150 tokens a step

    for _ in range(2):
        await gw.call(key, step, budget=budget)
    assert (ran, budget.spent_tokens) == (2, 300)
    with pytest.raises(BudgetExceeded) as refused:
        await gw.call(key, step, budget=budget)  # 300 + an estimated 150 > 400
    assert ran == 2, "the step was never started"
    assert budget.spent_tokens <= 400
    assert "budget of 400 tokens would be exceeded" in str(refused.value)


async def test_a_cost_budget_uses_the_price_table() -> None:
    config = GatewayConfig.parse({"prices": {"mock": {"inputPerMTok": 1000, "outputPerMTok": 1000}}})
    gw = Gateway(config, clock=FakeClock(), environ={})
    key = gw.key("mock", "mock")
    budget = gw.budget(max_cost_usd=0.35)
    for _ in range(2):
        await gw.call(key, answer(100, 50), budget=budget)  # 0.15 USD each
    assert budget.spent_cost_usd == pytest.approx(0.30)
    with pytest.raises(BudgetExceeded):
        await gw.call(key, answer(100, 50), budget=budget)


async def test_the_runs_own_average_estimates_an_endpoint_without_history() -> None:
    gw = Gateway(GatewayConfig(), clock=FakeClock(), environ={})
    budget = gw.budget(max_tokens=250)
    await gw.call(gw.key("mock", "mock"), answer(100, 50), budget=budget)
    other = gw.key("codex_cli", "mock")
    assert gw.estimate(other, budget) == Estimate(150, 0.0)
    with pytest.raises(BudgetExceeded):
        await gw.call(other, answer(1, 1), budget=budget)


async def test_a_failed_attempt_gives_its_reservation_back() -> None:
    gw = Gateway(GatewayConfig(), clock=FakeClock(), environ={})
    key = gw.key("mock", "mock")
    budget = gw.budget(max_tokens=1000)
    await gw.call(key, answer(100, 50), budget=budget)
    with pytest.raises(RunFailure):
        await gw.call(key, failing("process_error"), budget=budget)
    assert budget.snapshot() == {
        "maxTokens": 1000,
        "maxCostUsd": None,
        "spentTokens": 150,
        "spentCostUsd": 0.0,
        "unpricedTokens": 150,
        "reserved": 0,
    }
