"""The gateway through the real MCP server (in memory): breakers route around a failing runtime, a budget
stops a multi-step run, a hedge cancels a silent CLI and kills its process tree.

The CLI runtime runs a ``codex`` that is either missing (``MCP_ORCHESTRATOR_CODEX_BIN`` names no file: every
step fails ``unavailable``) or a wrapper of ``fixtures/gateway/sleeper.py`` that never answers; the mock
runtime is the configured alternative of ``codex_cli``. Skipped until the wiring (``gateway-wiring.patch``:
``Step.routing``, ``Settings.gateway``, ``dispatch_task.budget``) is applied.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from mcp_orchestrator.contracts import Step

if "routing" not in Step.model_fields:
    pytest.skip("the gateway wiring is not applied (no Step.routing)", allow_module_level=True)

from gateway_support import FIXTURES, wait_until
from mcp import Client
from support.procs import alive
from support.records import full

from mcp_orchestrator.config import Settings
from mcp_orchestrator.gateway import GatewayConfig
from mcp_orchestrator.server import build_server

pytestmark = pytest.mark.anyio

AGENT = "gateway-e2e"
APPROVE = '[[mock@reviewer say={"decision":"approve","rationale":"fine"}]]'


@asynccontextmanager
async def server(data_home: Path, root: Path, **gateway: Any) -> AsyncIterator[Client]:
    """A client on a fresh in-memory server; one attempt per runtime (no retries) and ``gateway`` config."""
    settings = Settings(home=data_home, roots=(root,), retry_attempts=1, gateway=GatewayConfig.parse(gateway))
    async with Client(build_server(settings)) as client:
        yield client


async def call(c: Client, tool: str, **args: Any) -> dict[str, Any]:
    """Call ``tool``; it must succeed. Its structured (camelCase) result."""
    result = await c.call_tool(tool, full(tool, args))
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def spawn(c: Client, root: Path, name: str, model: str, runtime: str, **extra: Any) -> None:
    await call(c, "spawn_worker", agentId=AGENT, name=name, model=model, runtimeMode=runtime,
               workdir=str(root / "work"), **extra)  # fmt: skip


async def dispatch(c: Client, task: str, workers: list[str], **extra: Any) -> dict[str, Any]:
    """Dispatch to ``workers`` and wait for the run to end."""
    run = await call(c, "dispatch_task", agentId=AGENT, task=task, workers=workers, waitSeconds=30, **extra)
    assert run["status"] in ("completed", "failed", "canceled"), run
    return run


def candidates(step: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(c["runtimeMode"], c["breaker"], c["eligible"]) for c in step["routing"]["candidates"]]


def events(data_home: Path, name: str) -> list[dict[str, Any]]:
    lines = (data_home / "logs" / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == name]


async def test_a_failing_runtime_opens_its_breaker_and_later_dispatches_route_around_it(
    data_home: Path, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-codex"
    monkeypatch.setenv("MCP_ORCHESTRATOR_CODEX_BIN", str(missing))
    config = {"candidates": {"codex_cli": ["cli", "mock"]}, "breaker": {"consecutiveFailures": 2}}
    async with server(data_home, root, **config) as c:
        await spawn(c, root, "cx", "codex_cli", "cli", role="reviewer")
        for n in range(2):  # the CLI fails twice: each step falls back to mock, then the circuit opens
            run = await dispatch(c, f"review the parser, take {n}", ["cx"])
            assert run["status"] == "completed", run
            (step,) = run["steps"]
            assert (step["runtimeMode"], step["fallbackFrom"]["failureClass"]) == ("mock", "unavailable")
            assert candidates(step) == [("cli", "closed", True), ("mock", "closed", True)]
            assert [a["runtimeMode"] for a in step["attempts"]] == ["cli", "mock"]

        (proc,) = (await call(c, "scheduler"))["processes"]
        board = {e["key"]: e for e in proc["gateway"]["endpoints"]}
        cli = board[f"codex_cli/cli@{missing}"]
        assert (cli["breaker"]["state"], cli["availability"], cli["errors"]) == ("open", "degraded", 2)

        run = await dispatch(c, "review the parser, take 3", ["cx"])
        assert run["status"] == "completed", run
        (step,) = run["steps"]
        assert (step["runtimeMode"], step["fallbackFrom"]) == ("mock", None)
        assert step["routing"]["chosen"] == "mock"
        assert candidates(step) == [("mock", "closed", True), ("cli", "open", False)]
        assert step["routing"]["candidates"][1]["reason"] == "circuit open"
        assert [a["runtimeMode"] for a in step["attempts"]] == ["mock"], "the open circuit was not tried"

        # With nowhere else to go, the open circuit fails the step at once, saying why and for how long.
        await spawn(c, root, "cx-only", "codex_cli", "cli", role="reviewer", fallbackPolicy="never")
        run = await dispatch(c, "review the parser, take 4", ["cx-only"])
        (step,) = run["steps"]
        assert (run["status"], step["failureClass"], len(step["attempts"])) == ("failed", "unavailable", 1)
        assert "is open; retry in" in step["output"], step["output"]

    routed = events(data_home, "routing")
    assert [e["routing"].get("chosen") for e in routed] == ["cli", "cli", "mock", None]  # null is left out


async def test_a_budget_stops_a_multi_step_run_before_it_overspends(data_home: Path, root: Path) -> None:
    async with server(data_home, root) as c:
        await spawn(c, root, "cx", "codex_cli", "mock")
        await spawn(c, root, "gm", "gemini_cli", "mock", role="reviewer")
        task = f"add input validation {APPROVE}"
        plan: dict[str, Any] = {"strategy": "codex_writes_gemini_reviews", "workers": ["cx", "gm"]}

        free = await dispatch(c, task, **plan)  # what each step costs, recorded by the gateway
        assert free["status"] == "completed", free
        writer, reviewer = (s["usage"]["totalTokens"] for s in free["steps"])

        limit = writer + reviewer - 1  # the writer fits; writer + reviewer would not
        run = await dispatch(c, task, budget={"maxTokens": limit}, **plan)
        assert run["budget"] == {"maxTokens": limit, "maxCostUsd": None}
        assert (run["status"], run["error"]["class"]) == ("failed", "budget_exceeded"), run
        wrote, review = run["steps"]
        assert (wrote["status"], review["status"], review["failureClass"]) == ("completed", "failed", "budget_exceeded")
        assert review["output"].startswith(f"budget_exceeded: the run's budget of {limit} tokens would be exceeded")
        assert review["usage"] is None and review["outputBytes"] == 0, "the reviewer never started"
        spent = sum(s["usage"]["totalTokens"] for s in run["steps"] if s["usage"])
        assert spent == writer <= limit

        refused = await c.call_tool(
            "dispatch_task", {"agentId": AGENT, "task": task, "workers": ["cx"], "budget": {"maxTokens": 0}}
        )
        assert refused.is_error, "a budget of nothing is refused up front"


async def test_a_hedged_reviewer_step_cancels_the_silent_cli_and_kills_its_tree(
    data_home: Path, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "codex.pid"
    codex = tmp_path / "codex"
    codex.write_text(f"#!/bin/sh\nexec {sys.executable} {FIXTURES / 'sleeper.py'} {pidfile} 3600\n")
    codex.chmod(0o755)
    monkeypatch.setenv("MCP_ORCHESTRATOR_CODEX_BIN", str(codex))
    config = {
        "candidates": {"codex_cli": ["cli", "mock"]},
        "hedge": {"roles": ["reviewer"], "hedgeDelaySeconds": 0.5, "maxHedges": 1},
    }
    async with server(data_home, root, **config) as c:
        await spawn(c, root, "cx", "codex_cli", "cli", role="reviewer")
        run = await dispatch(c, "review the parser", ["cx"])
        assert run["status"] == "completed", run
        (step,) = run["steps"]
        assert step["runtimeMode"] == "mock" and step["output"].startswith("mock answer")
        hedges = {h["runtimeMode"]: h for h in step["routing"]["hedges"]}
        assert (hedges["cli"]["outcome"], hedges["mock"]["outcome"]) == ("canceled", "won")
        assert hedges["mock"]["startedAfterMs"] >= 500, "the hedge waited for the delay"
        assert [a["runtimeMode"] for a in step["attempts"]] == ["mock"]
        output = await c.read_resource(f"runs://{run['runId']}/steps/0/output")
        assert output.contents[0].text.startswith("mock answer")  # type: ignore[union-attr]
    await wait_until(pidfile.exists, "the fake codex's pid file")
    tree = {int(p) for p in pidfile.read_text().split()}
    await wait_until(lambda: not alive(tree), f"the canceled codex's process tree ({tree}) to be gone")
