"""kill -9 of both MCP servers (separate data dirs) with 100 runs queued, then a restart of one: all 100
complete, each exactly once (the workflows' histories hold one step activity each)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.servers import ServerProcess
from support.temporal_dev import DevServer
from support.temporal_workers import worker_env, worker_process
from temporalio.client import Client as TemporalClient

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PER_SERVER = 50


async def call(c: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await c.call_tool(tool, args)
    assert not result.is_error, f"{tool}: {result.content}"
    assert result.structured_content is not None
    return result.structured_content


async def dispatch_then_die(env: dict[str, str], log: Path, root: Path, tag: str) -> list[str]:
    """Spawn a mock worker, dispatch PER_SERVER runs, kill -9 the server; the run ids."""
    server = ServerProcess(env, log, new_session=True)
    ids: list[str] = []
    try:
        await server.ready()
        with contextlib.suppress(Exception), anyio.move_on_after(60):  # the server dies under the client
            async with Client(server.url, read_timeout_seconds=60) as c:
                name = f"m-{tag}"  # the cluster's registry holds one worker per name
                await call(c, "spawn_worker", agentId="default", name=name, model="mock", workdir=str(root / "work"))
                for i in range(PER_SERVER):
                    run = await call(
                        c,
                        "dispatch_task",
                        agentId="default",
                        task=f"{tag} {i} [[mock delay=0.2]]",
                        workers=[name],
                        waitSeconds=0,
                    )
                    ids.append(run["runId"])
                server.kill9()
    finally:
        server.stop()
    assert len(ids) == PER_SERVER, "every dispatch answered before the kill"
    return ids


async def test_both_servers_killed_then_one_restarted_every_run_completes_once(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    prefix = temporal_prefix.rstrip("-")
    root = (tmp_path / "root").resolve()
    (root / "work").mkdir(parents=True)
    envs = []
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        env = worker_env(temporal_server, prefix, home, (root,))
        env["MCP_ORCHESTRATOR_TEMPORAL_HEARTBEAT_SECONDS"] = "5"
        envs.append(env)
    worker = {"MCP_ORCHESTRATOR_BACKEND_CAPS": "mock/mock=4"}  # a backlog: most runs wait for a slot
    with worker_process(temporal_server, prefix, tmp_path / "worker", (root,), ["mock/mock"], extra_env=worker):
        ids = await dispatch_then_die(envs[0], tmp_path / "a.log", root, "a")
        ids += await dispatch_then_die(envs[1], tmp_path / "b.log", root, "b")
        server = ServerProcess(envs[0], tmp_path / "a2.log")
        try:
            await server.ready()
            async with Client(server.url, read_timeout_seconds=120) as c:
                ended = [await call(c, "get_run", runId=run_id, waitSeconds=60, detail="full") for run_id in ids]
        finally:
            server.stop()
    assert [r["status"] for r in ended] == ["completed"] * len(ids)
    assert all(len(r["steps"]) == 1 and r["steps"][0]["attempt"] == 1 for r in ended)
    cluster = await TemporalClient.connect(temporal_server.address)
    for run_id in ids:  # exactly once: one step activity scheduled in each run's history
        history = await cluster.get_workflow_handle(run_id).fetch_history()
        scheduled = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
        assert len(scheduled) == 1, run_id
