"""The workers registry shared by the cluster: a worker spawned or stopped on one server is so on every server."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import pytest
from mcp import Client
from support.temporal_dev import DevServer
from support.temporal_workers import call, listed, two_servers

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_a_worker_spawned_on_server_a_is_used_listed_and_stopped_on_server_b(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    async with two_servers(temporal_server, temporal_prefix.rstrip("-"), tmp_path) as (ca, cb, work, _):
        await call(ca, "spawn_worker", agentId="default", name="m", model="mock", workdir=work, role="writer")
        # B reads a named worker from the cluster at once (describe); its listing follows within a moment.
        run = await call(cb, "dispatch_task", agentId="default", task="[[mock say=on-b]]", workers=["m"])
        assert run["status"] == "completed", run
        await listed(cb, {"m": "idle"})
        taken = await cb.call_tool("spawn_worker", {"agentId": "alice", "name": "m", "model": "mock", "workdir": work})
        assert taken.is_error and "already exists" in str(taken.content[0]), taken.content

        refused = await cb.call_tool("stop_worker", {"agentId": "alice", "name": "m"})
        assert refused.is_error and "belongs to agent 'default'" in str(refused.content[0]), refused.content
        stopped = await call(cb, "stop_worker", agentId="default", name="m")
        assert stopped["status"] == "stopped", stopped
        on_a = await ca.call_tool("dispatch_task", {"agentId": "default", "task": "x", "workers": ["m"]})
        assert on_a.is_error and "is stopped" in str(on_a.content[0]), on_a.content  # A sees the stop at once
        await listed(ca, {"m": "stopped"})

        again = await call(ca, "spawn_worker", agentId="default", name="m", model="mock", workdir=work)
        assert again["status"] == "idle", again  # a stopped name is its owner's to spawn again
        await listed(cb, {"m": "idle"})
        run = await call(cb, "dispatch_task", agentId="default", task="[[mock say=again]]")  # B's own choice: m
        assert run["status"] == "completed", run


async def test_one_name_spawned_on_both_servers_at_once_is_one_worker(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    async with two_servers(temporal_server, temporal_prefix.rstrip("-"), tmp_path, worker=False) as (ca, cb, work, _):
        outcomes: dict[str, bool] = {}

        async def spawn(side: str, c: Client, agent: str) -> None:
            args = {"agentId": agent, "name": "w", "model": "mock", "workdir": work}
            outcomes[side] = not (await c.call_tool("spawn_worker", args)).is_error

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(spawn, "a", ca, "default")
                tg.start_soon(spawn, "b", cb, "alice")
        assert sorted(outcomes.values()) == [False, True], outcomes
        owner = "default" if outcomes["a"] else "alice"
        for c in (ca, cb):
            await listed(c, {"w": "idle"})
            mine = [w for w in (await call(c, "list_workers"))["workers"] if w["name"] == "w"]
            assert [w["ownerAgentId"] for w in mine] == [owner], mine


async def test_the_registry_never_waits_on_a_worker_process(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    async with two_servers(temporal_server, temporal_prefix.rstrip("-"), tmp_path) as (ca, cb, work, proc):
        assert proc is not None
        os.killpg(proc.pid, signal.SIGKILL)  # the deployment's only worker process
        proc.wait()
        with anyio.fail_after(20):  # every read and write below is answered by the Temporal server alone
            await call(ca, "spawn_worker", agentId="default", name="m", model="mock", workdir=work)
            await listed(cb, {"m": "idle"})
            await call(cb, "stop_worker", agentId="default", name="m")
            await listed(ca, {"m": "stopped"})
