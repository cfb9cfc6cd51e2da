"""Run lifecycle behaviours through an in-memory MCP client (the real server object, no subprocess)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.records import full

from mcp_orchestrator.config import Settings
from mcp_orchestrator.server import build_server

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as c:
        yield c


async def call(c: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await c.call_tool(tool, full(tool, args))
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def error(c: Client, tool: str, **args: Any) -> str:
    result = await c.call_tool(tool, args)
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert text != f"Error executing tool {tool}", "an unexpected crash, not a clean ToolError"
    return str(text)


async def test_total_timeout_ends_step_as_timeout(client: Client) -> None:
    await call(client, "spawn_worker", agentId="a", name="slow", model="mock", timeoutSeconds=1)
    run = await call(client, "dispatch_task", agentId="a", task="[[mock delay=30]]", waitSeconds=20)
    assert run["status"] == "failed"
    assert run["steps"][0]["failureClass"] == "timeout"
    assert run["error"]["class"] == "timeout"
    assert run["steps"][0]["durationMs"] < 5000


async def test_dispatch_timeout_bounds_the_run(client: Client) -> None:
    await call(client, "spawn_worker", agentId="a", name="w", model="mock")
    run = await call(client, "dispatch_task", agentId="a", task="[[mock delay=30]]", timeoutSeconds=1, waitSeconds=20)
    assert run["status"] == "failed"
    assert run["steps"][0]["failureClass"] == "timeout"


async def test_stall_timeout_stops_a_silent_worker(client: Client) -> None:
    await call(client, "spawn_worker", agentId="a", name="quiet", model="mock", stallSeconds=1)
    run = await call(client, "dispatch_task", agentId="a", task="say hi [[mock stall=30]]", waitSeconds=20)
    assert run["status"] == "failed"
    assert run["steps"][0]["failureClass"] == "stalled"
    assert run["steps"][0]["outputBytes"] > 0  # what it said before going silent is kept


async def test_scripted_failure_is_recorded_with_its_class(client: Client) -> None:
    await call(client, "spawn_worker", agentId="a", name="w", model="mock")
    run = await call(client, "dispatch_task", agentId="a", task="[[mock fail=rate_limited]]")
    assert run["status"] == "failed"
    assert run["steps"][0]["failureClass"] == "rate_limited"
    assert run["error"]["class"] == "rate_limited"
    worker = (await call(client, "list_workers"))["workers"][0]
    assert worker["status"] == "idle"


async def test_mock_output_is_deterministic(client: Client) -> None:
    await call(client, "spawn_worker", agentId="a", name="w", model="mock")
    first = await call(client, "dispatch_task", agentId="a", task="same task")
    second = await call(client, "dispatch_task", agentId="a", task="same task")
    assert first["steps"][0]["output"] == second["steps"][0]["output"]
    assert first["runId"] != second["runId"]


async def test_wait_zero_returns_accepted_or_running_then_completes(client: Client) -> None:
    await call(client, "spawn_worker", agentId="a", name="w", model="mock")
    run = await call(client, "dispatch_task", agentId="a", task="t [[mock delay=0.5]]", waitSeconds=0)
    assert run["status"] in ("accepted", "running")
    done = await call(client, "get_run", runId=run["runId"], waitSeconds=10)
    assert done["status"] == "completed"


async def test_panic_refuses_writes_but_not_reads(client: Client, settings: Settings) -> None:
    await call(client, "spawn_worker", agentId="a", name="w", model="mock")
    running = await call(client, "dispatch_task", agentId="a", task="[[mock delay=30]]", waitSeconds=0)
    state = await call(client, "panic", agentId="b", reason="runaway cost")
    assert state["engaged"] is True
    text = await error(client, "dispatch_task", agentId="a", task="more")
    assert "runaway cost" in text and "mcp-orchestrator panic off" in text
    await error(client, "spawn_worker", agentId="a", name="w2", model="mock")
    run = await call(client, "get_run", runId=running["runId"], waitSeconds=10)
    assert run["status"] == "canceled"
    assert "panic" in run["error"]["message"]
    assert (await call(client, "list_worker_runs"))["runs"]


async def test_unknown_runtime_for_model_is_refused_with_valid_modes(client: Client) -> None:
    text = await error(client, "spawn_worker", agentId="a", name="w", model="claude_cli", runtimeMode="google_sdk")
    assert "cli" in text and "mock" in text


async def test_workdir_jail(client: Client, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    for bad in ["../outside", str(outside), "escape", "work/\x00x", "missing"]:
        text = await error(client, "spawn_worker", agentId="a", name="w", model="mock", workdir=bad)
        assert "workdir" in text
    ok = await call(client, "spawn_worker", agentId="a", name="w", model="mock", workdir="work")
    assert ok["workdir"] == str(root / "work")


async def test_cancel_while_waiting_does_not_cancel_the_run(client: Client) -> None:
    await call(client, "spawn_worker", agentId="a", name="w", model="mock")
    with anyio.move_on_after(0.5):
        await client.call_tool("dispatch_task", {"agentId": "a", "task": "job [[mock delay=1.5]]", "waitSeconds": 30})
    runs = (await call(client, "list_worker_runs", agentId="a"))["runs"]
    assert len(runs) == 1
    done = await call(client, "get_run", runId=runs[0]["runId"], waitSeconds=10)
    assert done["status"] == "completed"
