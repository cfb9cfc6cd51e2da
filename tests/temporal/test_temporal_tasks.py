"""MCP Tasks on the Temporal engine (issue 16): tasks started on server A, which then stops, are answered to
completion and canceled by server B, which shares only the cluster (its own data directory), through the Tasks
extension; A, restarted, shows the same runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from e2e.tasks_client import CreateTask, TasksClient, cancel, get, poll, start
from mcp import Client
from support.temporal_dev import DevServer
from support.temporal_workers import temporal_settings, worker_process

from mcp_orchestrator.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

AGENT = "tasker"


async def _ok(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_a_task_started_on_one_server_is_finished_and_canceled_through_another(
    temporal_server: DevServer, temporal_prefix: str, root: Path, tmp_path: Path
) -> None:
    prefix = temporal_prefix.rstrip("-")
    with worker_process(temporal_server, prefix, tmp_path / "worker", (root,), ["mock/mock"]):
        on_a = temporal_settings(temporal_server, prefix, tmp_path / "a", (root,))
        on_b = temporal_settings(temporal_server, prefix, tmp_path / "b", (root,))
        async with Client(build_server(on_a), extensions=[TasksClient()]) as ca:
            await _ok(ca, "spawn_worker", {"agentId": AGENT, "name": "m", "model": "mock", "workdir": str(root)})
            with anyio.fail_after(15):  # the handles come back at once, not after the runs
                quick = await start(ca, "dispatch_task", {"agentId": AGENT, "task": "quick [[mock delay=2]]"})
                long = await start(ca, "dispatch_task", {"agentId": AGENT, "task": "long [[mock delay=120]]"})
            assert isinstance(quick, CreateTask) and isinstance(long, CreateTask), (quick, long)
            assert quick.status == "working" and quick.task_id.startswith("run_")
        # Server A is gone; B's data dir holds nothing of these runs: the cluster answers for them.
        async with Client(build_server(on_b), extensions=[TasksClient()]) as cb:
            with anyio.fail_after(60):
                seen = await get(cb, quick.task_id)
                assert seen["status"] == "working", seen
                final = await poll(cb, quick.task_id)
            assert final["status"] == "completed", final
            result = final["result"]
            assert result["structuredContent"]["runId"] == quick.task_id
            assert result["structuredContent"]["status"] == "completed"

            with anyio.fail_after(60):
                assert (await get(cb, long.task_id))["status"] == "working"
                assert (await cancel(cb, long.task_id))["resultType"] == "complete"
                ended = await poll(cb, long.task_id)
            assert ended["status"] == "cancelled" and "result" not in ended
            waited = await _ok(cb, "get_run", {"runId": quick.task_id, "waitSeconds": 1})
        # A restarted follows its runs again: its own copies say the same.
        async with Client(build_server(on_a), extensions=[TasksClient()]) as ca:
            mine = await _ok(ca, "get_run", {"runId": quick.task_id, "waitSeconds": 10})
            assert result["structuredContent"] == waited == mine
            assert (await _ok(ca, "get_run", {"runId": long.task_id, "waitSeconds": 10}))["status"] == "canceled"
            assert (await get(ca, long.task_id))["status"] == "cancelled"
