"""Long-running calls as MCP Tasks (issue 16): real ``serve`` processes over Streamable HTTP, the SDK's
client speaking the extension (``tasks_client``), the executor daemon running the runs."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError
from mcp.types import CallToolResult
from scheduler.sched_support import eventually, fake_codex, marker
from support.procs import pids_with_arg
from support.servers import ServerProcess
from tasks_client import CreateTask, TasksClient, cancel, get, listen, poll, start, update

from mcp_orchestrator.server import tools
from mcp_orchestrator.server.registry import TASK_TOOLS

pytestmark = pytest.mark.anyio

AGENT = "tasker"


async def _ok(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args, read_timeout_seconds=60)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def test_every_tool_that_starts_a_run_supports_tasks() -> None:
    starters = {name for name, fn in vars(tools).items() if callable(fn) and ".dispatch(" in _source(fn)}
    assert starters and starters <= TASK_TOOLS


def _source(fn: Any) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


@pytest.mark.slow
async def test_a_task_survives_kill_9_and_is_finished_by_another_server(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    first = ServerProcess(server_env, tmp_path / "first.log")
    second = ServerProcess(server_env, tmp_path / "second.log")
    try:
        await first.ready()
        async with Client(first.url, extensions=[TasksClient()], read_timeout_seconds=60) as client:
            assert client.protocol_version == "2026-07-28"
            await _ok(client, "spawn_worker", {"agentId": AGENT, "name": "slow", "model": "mock"})
            with anyio.fail_after(15):  # the handle comes back at once, not after the 30 s run
                handle = await start(client, "dispatch_task", {"agentId": AGENT, "task": "long [[mock delay=30]]"})
            assert isinstance(handle, CreateTask), handle
            assert handle.task_id.startswith("run_") and handle.status == "working"
            assert handle.ttl_ms and handle.ttl_ms > 0 and handle.poll_interval_ms
            run = await _ok(client, "get_run", {"runId": handle.task_id})  # taskId is the runId
            assert run["status"] in ("accepted", "running")
        first.kill9()  # gone without a goodbye; the executor daemon keeps the run going

        await second.ready()
        ext = TasksClient()
        async with Client(second.url, extensions=[ext], read_timeout_seconds=60) as client:
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    ended: dict[str, Any] = {}

                    async def follow() -> None:
                        ended.update(await listen(client, [handle.task_id, "run_0000000000000000dead"]))

                    tg.start_soon(follow)
                    seen = await get(client, handle.task_id)
                    assert seen["status"] == "working" and seen["resultType"] == "complete"
                    assert seen["statusMessage"]
                    final = await poll(client, handle.task_id)
            assert final["status"] == "completed"
            assert ended["resultType"] == "complete"  # the listen stream ended once the task did
            statuses = [n["status"] for n in ext.notes]
            assert statuses[0] == "working" and statuses[-1] == "completed"
            assert {n["taskId"] for n in ext.notes} == {handle.task_id}  # the unknown id was not followed
            assert ext.notes[-1]["result"] == final["result"]

        async with Client(second.url, read_timeout_seconds=60) as plain:  # the synchronous call's result
            waited = await plain.call_tool("get_run", {"runId": handle.task_id, "waitSeconds": 1})
        result = CallToolResult.model_validate(final["result"])
        assert result.structured_content == waited.structured_content
        assert result.structured_content is not None and result.structured_content["status"] == "completed"
        assert [c.model_dump() for c in result.content] == [c.model_dump() for c in waited.content]
    finally:
        first.stop()
        second.stop()


@pytest.mark.slow
async def test_tasks_cancel_kills_the_workers_process_tree(
    server_env: dict[str, str], tmp_path: Path, root: Path
) -> None:
    sleep_marker = marker()
    env = {**server_env, "MCP_ORCHESTRATOR_CODEX_BIN": str(fake_codex(tmp_path / "bin", "hanging", sleep_marker))}
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        await server.ready()
        async with Client(server.url, extensions=[TasksClient()], read_timeout_seconds=60) as client:
            worker = {"agentId": AGENT, "name": "hang", "model": "codex_cli", "workdir": str(root / "work")}
            await _ok(client, "spawn_worker", worker)
            handle = await start(client, "dispatch_task", {"agentId": AGENT, "task": "hang", "workers": ["hang"]})
            assert isinstance(handle, CreateTask), handle

            async def tree_started() -> bool:  # the fake CLI's grandchild `sleep <marker>` runs
                return bool(pids_with_arg(sleep_marker))

            async def tree_gone() -> bool:
                return not pids_with_arg(sleep_marker)

            await eventually(tree_started, 30)
            ack = await update(client, handle.task_id, {"nothing": {"action": "accept"}})  # no input is outstanding
            assert ack["resultType"] == "complete"
            with anyio.fail_after(30):
                assert (await cancel(client, handle.task_id))["resultType"] == "complete"
                final = await poll(client, handle.task_id)
            await eventually(tree_gone, 30)
            assert final["status"] == "cancelled" and "result" not in final
            with pytest.raises(MCPError) as unknown:
                await get(client, "run_0000000000000000dead")
            assert unknown.value.error.code == -32602
    finally:
        server.stop()


@pytest.mark.slow
async def test_a_client_without_the_extension_gets_todays_result(server_env: dict[str, str], tmp_path: Path) -> None:
    server = ServerProcess(server_env, tmp_path / "server.log")
    try:
        await server.ready()
        for mode in ("auto", "legacy"):
            async with Client(server.url, mode=mode, read_timeout_seconds=60) as client:  # type: ignore[arg-type]
                await _ok(client, "spawn_worker", {"agentId": AGENT, "name": f"w-{mode}", "model": "mock"})
                args = {"agentId": AGENT, "task": "quick [[mock delay=0.5]]", "workers": [f"w-{mode}"]}
                run = await _ok(client, "dispatch_task", args)
                assert run["status"] == "completed" and run["runId"].startswith("run_")
        async with Client(server.url, extensions=[TasksClient()], read_timeout_seconds=60) as client:
            # the SDK client resolves the task by polling; the caller sees the ordinary result
            args = {"agentId": AGENT, "task": "quick [[mock delay=0.5]]", "workers": ["w-auto"]}
            result = await client.call_tool("dispatch_task", args)
            assert result.structured_content is not None and result.structured_content["status"] == "completed"
    finally:
        server.stop()
