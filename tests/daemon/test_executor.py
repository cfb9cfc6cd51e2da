"""Issue #13: runs outlive the client session. ``serve`` hands each run to the data directory's executor, a
detached process of its own session, so a run goes on however its session ends (EOF, SIGKILL of the server, its
whole process group killed); a later session follows it and cancels it; the executor exits when idle.

The mock runtime shows the hand-over; the ``clis`` tests run a real codex worker (a process tree) against the
loopback model server, with the real Claude Code and codex as the assistants that start the runs.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import Any

import anyio
import pytest
from daemon_support import call, cli, eventually, session
from mcp import Client
from support.executors import executor_process
from support.servers import ServerProcess

pytestmark = pytest.mark.anyio

WAYS = ("eof", "sigkill", "group_kill")


async def dispatch_then_end(env: dict[str, str], way: str, log: Path, worker: dict[str, Any], task: str) -> str:
    """Spawn ``worker``, dispatch ``task`` with waitSeconds 0, and end the session ``way``; the run id."""
    args = {"agentId": "alice", "task": task, "workers": [worker["name"]], "waitSeconds": 0}
    if way == "eof":
        async with session(env) as client:
            await call(client, "spawn_worker", {"agentId": "alice", **worker})
            run = await call(client, "dispatch_task", args)
        return str(run["runId"])
    server = ServerProcess(env, log, new_session=True)
    try:
        await server.ready()
        with contextlib.suppress(Exception), anyio.move_on_after(10):  # the server dies under the client
            async with Client(server.url, read_timeout_seconds=60) as client:
                await call(client, "spawn_worker", {"agentId": "alice", **worker})
                run = await call(client, "dispatch_task", args)
                server.kill9() if way == "sigkill" else server.kill_group()
        return str(run["runId"])
    finally:
        server.stop()


async def follow(env: dict[str, str], run_id: str, seconds: float) -> dict[str, Any]:
    """The run as a new session sees it after waiting up to ``seconds`` for it to end."""
    async with session(env) as client:
        return await call(client, "get_run", {"runId": run_id, "waitSeconds": seconds})


@pytest.mark.parametrize("way", WAYS)
async def test_a_mock_run_outlives_its_session(server_env: dict[str, str], tmp_path: Path, way: str) -> None:
    tag = secrets.token_hex(4)
    worker = {"name": f"m-{way.replace('_', '-')}", "model": "mock"}
    run_id = await dispatch_then_end(server_env, way, tmp_path / "server.log", worker, f"[[mock delay=2]] {tag}")
    run = await follow(server_env, run_id, 20)
    assert run["status"] == "completed", run
    assert tag in run["steps"][0]["output"]


async def test_status_while_running_then_idle_exit(server_env: dict[str, str], data_home: Path) -> None:
    env = {**server_env, "MCP_ORCHESTRATOR_EXECUTOR_IDLE_SECONDS": "2"}
    async with session(env) as client:
        await call(client, "spawn_worker", {"agentId": "alice", "name": "w", "model": "mock"})
        run = await call(client, "dispatch_task", {"agentId": "alice", "task": "[[mock delay=3]] x", "waitSeconds": 0})
        code, status = await cli(env, "daemon", "status")
        assert code == 0 and status["alive"] and status["running"] == [run["runId"]], status
        assert status["idleExitSeconds"] == 2.0
        proc = executor_process(data_home)
        assert proc is not None and proc.pid == status["pid"]
    # Busy while its run executes, though no session is left; idle for 2 s after it ends, then gone.
    await eventually(lambda: executor_process(data_home) is None, 15, "the executor exits once idle")
    code, status = await cli(env, "daemon", "status")
    assert code == 1 and not status["alive"], status
    async with session(env) as client:
        done = await call(client, "get_run", {"runId": run["runId"]})
    assert done["status"] == "completed", done


async def test_daemon_stop_cancels_what_runs_and_says_why(server_env: dict[str, str], data_home: Path) -> None:
    async with session(server_env) as client:
        await call(client, "spawn_worker", {"agentId": "alice", "name": "w", "model": "mock"})
        run = await call(
            client, "dispatch_task", {"agentId": "alice", "task": "[[mock delay=60]] long", "waitSeconds": 0}
        )
        await eventually(lambda: _status_has(server_env, run["runId"]), 10, "the run executes in the executor")
        code, out = await cli(server_env, "daemon", "stop")
        assert code == 0 and out["stopped"], out
        assert executor_process(data_home) is None
        ended = await call(client, "get_run", {"runId": run["runId"]})
    assert ended["status"] == "canceled", ended
    assert "stopped by the operator" in ended["error"]["message"]


async def _status_has(env: dict[str, str], run_id: str) -> bool:
    _, status = await cli(env, "daemon", "status")
    return run_id in status.get("running", [])


async def test_a_lost_hand_over_is_picked_up(server_env: dict[str, str], data_home: Path) -> None:
    """A run stored as the executor's whose message never came (a front end killed in between) still runs."""
    from mcp_orchestrator.config import Settings
    from mcp_orchestrator.service import Orchestrator
    from mcp_orchestrator.service.executor import ExecutorLink

    settings = Settings.from_env(server_env)
    link = ExecutorLink(settings)
    link.claim = _never_told  # type: ignore[method-assign]
    orch = Orchestrator(settings, executor=link)
    async with orch.running(take_over=False):
        await orch.spawn_worker("alice", "w", "mock")
        run = await orch.dispatch("alice", "[[mock delay=0.2]] lost")
        assert run.status == "accepted"
        done = await orch.wait_run(run.run_id, 20)
    assert done.status == "completed", done


async def test_a_followed_hand_over_streams_the_runs_events_and_fails_when_refused(
    server_env: dict[str, str], data_home: Path
) -> None:
    """A caller that waits (``follow``) hears the run's events over the claim's own connection, and a claim the
    executor refuses ends the waiting caller's run ``failed`` (unavailable) instead of leaving it accepted."""
    from mcp_orchestrator.config import Settings
    from mcp_orchestrator.service import Orchestrator
    from mcp_orchestrator.service.executor import ExecutorLink

    settings = Settings.from_env(server_env)
    link = ExecutorLink(settings)
    orch = Orchestrator(settings, executor=link)
    kinds: list[str] = []

    async def heard(event: object) -> None:
        kinds.append(getattr(event, "kind", ""))

    async with orch.running(take_over=False):
        await orch.spawn_worker("alice", "w", "mock")
        run = await orch.dispatch("alice", "[[mock delay=0.3]] followed", follow=True)
        done = await orch.wait_run(run.run_id, 20, heard)
        assert done.status == "completed", done
        assert "step_started" in kinds and kinds[-1] == "run_ended", kinds

        link.claim = _refused  # type: ignore[method-assign]
        refused = await orch.dispatch("alice", "never runs", follow=True)
        ended = await orch.wait_run(refused.run_id, 10)
    assert ended.status == "failed", ended
    assert ended.error is not None and ended.error.failure_class == "unavailable", ended.error
    await cli(server_env, "daemon", "stop")


async def _refused(*_: object) -> tuple[bool, None]:
    return False, None


async def _never_told(*_: object) -> tuple[bool, None]:
    return True, None  # as if the message were lost on the way


async def test_kill9_of_the_executor_interrupts_running_and_resumes_queued(
    server_env: dict[str, str], data_home: Path
) -> None:
    """The executor is a server instance like any other: the next one takes over what a killed one held."""
    import os
    import signal

    env = {**server_env, "MCP_ORCHESTRATOR_MAX_RUNNING": "1"}
    async with session(env) as client:
        for name in ("a", "b"):
            await call(client, "spawn_worker", {"agentId": "alice", "name": name, "model": "mock"})
        first = await call(
            client,
            "dispatch_task",
            {"agentId": "alice", "task": "[[mock delay=60]] 1", "workers": ["a"], "waitSeconds": 0},
        )
        await eventually(lambda: _status_has(env, first["runId"]), 10, "the first run executes")
        second = await call(
            client,
            "dispatch_task",
            {"agentId": "alice", "task": "[[mock delay=0.1]] 2", "workers": ["b"], "waitSeconds": 0},
        )
        proc = executor_process(data_home)
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
    await eventually(lambda: executor_process(data_home) is None, 5, "the executor is gone")
    async with session(env) as client:  # this session starts the next executor
        interrupted = await call(client, "get_run", {"runId": first["runId"], "waitSeconds": 20})
        resumed = await call(client, "get_run", {"runId": second["runId"], "waitSeconds": 20})
    assert interrupted["status"] == "failed" and interrupted["error"]["class"] == "interrupted", interrupted
    assert resumed["status"] == "completed", resumed
