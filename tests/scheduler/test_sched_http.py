"""Issue #5 over Streamable HTTP: dispatch returns at once and get_run follows the run; the ``scheduler``
tool and the ``mcp-orchestrator scheduler`` command show the queues per class and what runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from sched_support import AGENT, call, eventually, served
from support.servers import REPO

pytestmark = pytest.mark.anyio

TERMINAL = ("completed", "failed", "canceled")


async def test_dispatch_without_waiting_then_poll_get_run(server_env: dict[str, str], tmp_path: Path) -> None:
    async with served(server_env, tmp_path / "server.log") as (_, client):
        await call(client, "spawn_worker", agentId=AGENT, name="w", model="mock")
        with anyio.fail_after(5):
            run = await call(client, "dispatch_task", agentId=AGENT, task="poll me [[mock delay=0.5]]", waitSeconds=0)
        assert run["status"] in ("accepted", "running")  # returned before the half-second step could end
        assert run["endedAt"] is None and run["priority"] == "interactive"
        seen = {run["status"]}
        with anyio.fail_after(20):
            while run["status"] not in TERMINAL:
                await anyio.sleep(0.05)
                run = await call(client, "get_run", runId=run["runId"])
                seen.add(run["status"])
        assert run["status"] == "completed", run
        assert "running" in seen  # the poll saw it move through running
        assert [s["status"] for s in run["steps"]] == ["completed"]
        assert run["queueWaitMs"] is not None and run["queueWaitMs"] < 5000
        assert run["runMs"] >= 500
        assert run["executedBy"]  # which server process ran it


async def test_scheduler_tool_and_cli_show_depth_per_class_and_running(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**server_env, "MCP_ORCHESTRATOR_MAX_RUNNING": "1", "MCP_ORCHESTRATOR_HEARTBEAT_SECONDS": "0.2"}
    async with served(env, tmp_path / "server.log") as (_, client):
        await call(client, "spawn_worker", agentId=AGENT, name="w", model="mock")
        blocker = await call(client, "dispatch_task", agentId=AGENT, task="[[mock delay=600]]", waitSeconds=0)

        async def blocker_running() -> bool:
            return bool((await call(client, "get_run", runId=blocker["runId"]))["status"] == "running")

        await eventually(blocker_running, 10)
        queued = [await call(client, "dispatch_task", agentId=AGENT, task=f"i{i}", waitSeconds=0) for i in range(3)] + [
            await call(client, "dispatch_task", agentId=AGENT, task=f"b{i}", waitSeconds=0, priority="batch")
            for i in range(2)
        ]
        assert {r["status"] for r in queued} == {"accepted"}

        view = await call(client, "scheduler")
        assert view["depth"] == {"interactive": 3, "batch": 2}
        assert view["running"] == 1
        assert view["unfinishedRuns"] == 6
        assert view["oldestWaitMs"]["interactive"] >= 0
        (proc,) = view["processes"]
        assert proc["maxRunning"] == 1
        assert proc["queueLimits"] == {"interactive": 1000, "batch": 10_000}
        assert proc["backends"]["mock/mock"]["running"] == 1

        # The operator's command reads every live server's heartbeat (refreshed every 0.2 s here).
        async def cli_agrees() -> bool:
            done = await anyio.run_process(
                [sys.executable, "-m", "mcp_orchestrator", "scheduler"], env=env, cwd=str(REPO), check=False
            )
            assert done.returncode == 0, done.stderr.decode()
            shown = json.loads(done.stdout)
            return bool(shown["depth"] == {"interactive": 3, "batch": 2} and shown["running"] == 1)

        await eventually(cli_agrees, 20, interval=0.2)

        # The command is read-only: it took nothing over and the queue is as it was.
        view = await call(client, "scheduler")
        assert (view["depth"], view["running"]) == ({"interactive": 3, "batch": 2}, 1)
        for run in [blocker, *queued]:
            await call(client, "cancel_run", agentId=AGENT, runId=run["runId"])
        view = await call(client, "scheduler")
        assert (view["depth"], view["running"], view["unfinishedRuns"]) == ({"interactive": 0, "batch": 0}, 0, 0)


def test_cli_scheduler_without_a_server(server_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcp_orchestrator", "scheduler"],
        env=server_env,
        cwd=str(REPO),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    shown = json.loads(done.stdout)
    assert shown["depth"] == {"interactive": 0, "batch": 0}
    assert shown["running"] == 0
