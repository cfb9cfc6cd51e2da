"""Cancel and deadlines with real child processes (issue #5, points 2 and 5).

The server is a real process; its codex worker is a fake CLI that starts a grandchild
``sleep <marker>`` and never answers. The queued run ends ``canceled`` at once and never starts;
the running one ends ``canceled``, and a deadline ends a running one as ``deadline_exceeded``: in
both cases nothing of the step's process tree is left in /proc.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sched_support import AGENT, call, eventually, fake_codex, ledger, marker, served, tree_of
from support.executors import inline
from support.procs import descendants, pids_with_arg

pytestmark = pytest.mark.anyio


@pytest.fixture
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    """This module tests the serving process's own scheduler and leases: ``serve`` in inline mode."""
    return inline(server_env)


def tree_gone(server_pid: int, sleep_marker: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not tree_of(server_pid, sleep_marker)

    return check


def hang_env(server_env: dict[str, str], tmp_path: Path, sleep_marker: str, **extra: str) -> dict[str, str]:
    binary = fake_codex(tmp_path / "bin", "hanging", sleep_marker)
    return {**server_env, "MCP_ORCHESTRATOR_CODEX_BIN": str(binary), **extra}


async def test_cancel_queued_at_once_and_running_kills_the_tree(
    server_env: dict[str, str], tmp_path: Path, root: Path
) -> None:
    mark = marker()
    env = hang_env(server_env, tmp_path, mark, MCP_ORCHESTRATOR_MAX_RUNNING="1")
    workdir = root / "work"
    async with served(env, tmp_path / "server.log") as (server, client):
        await call(client, "spawn_worker", agentId=AGENT, name="cx", model="codex_cli", workdir=str(workdir))
        running = await call(client, "dispatch_task", agentId=AGENT, task="hang first", waitSeconds=0)

        async def tree_up() -> bool:
            return len(pids_with_arg(mark)) == 1 and ledger(workdir) == ["hang first"]

        await eventually(tree_up, 20)
        tree = tree_of(server.pid, mark)
        assert len(tree) >= 2  # the fake CLI and its sleep grandchild (at least)

        queued = await call(client, "dispatch_task", agentId=AGENT, task="never starts", waitSeconds=0)
        assert queued["status"] == "accepted"
        started = time.monotonic()
        canceled = await call(client, "cancel_run", agentId=AGENT, runId=queued["runId"])
        assert time.monotonic() - started < 2.0  # at once: nothing to stop
        assert canceled["status"] == "canceled"
        assert canceled["error"]["class"] == "canceled"
        assert canceled["steps"] == []
        assert canceled["startedAt"] is None
        assert canceled["queueWaitMs"] is not None
        assert tree_of(server.pid, mark) == tree  # the running step was not disturbed

        canceled = await call(client, "cancel_run", agentId=AGENT, runId=running["runId"])
        assert canceled["status"] == "canceled"
        assert canceled["error"]["class"] == "canceled"
        assert [s["status"] for s in canceled["steps"]] == ["canceled"]
        # The tree was killed before the run was recorded as canceled (allow the kernel a moment to reap).
        await eventually(tree_gone(server.pid, mark), 2, interval=0.02)
        assert descendants(server.pid) == set()

        # The queued run never ran; the slot is free again and the worker idle.
        assert ledger(workdir) == ["hang first"]
        assert (await call(client, "scheduler"))["running"] == 0
        (worker,) = (await call(client, "list_workers"))["workers"]
        assert worker["status"] == "idle"


async def test_deadline_while_running_kills_the_tree(server_env: dict[str, str], tmp_path: Path, root: Path) -> None:
    mark = marker()
    env = hang_env(server_env, tmp_path, mark)
    workdir = root / "work"
    async with served(env, tmp_path / "server.log") as (server, client):
        await call(client, "spawn_worker", agentId=AGENT, name="cx", model="codex_cli", workdir=str(workdir))
        run = await call(client, "dispatch_task", agentId=AGENT, task="hang", waitSeconds=0, deadlineSeconds=1.5)

        async def tree_up() -> bool:
            return len(pids_with_arg(mark)) == 1

        await eventually(tree_up, 10)
        run = await call(client, "get_run", runId=run["runId"], waitSeconds=30)
        assert run["status"] == "failed"
        assert run["error"]["class"] == "deadline_exceeded"
        (step,) = run["steps"]
        assert step["status"] == "failed" and step["failureClass"] == "deadline_exceeded"
        assert step["attempt"] == 1  # a deadline is not retried
        # SIGTERM then, after the grace, SIGKILL: well within a few seconds of the 1.5 s deadline.
        assert 1000 <= run["runMs"] < 6000
        await eventually(tree_gone(server.pid, mark), 2, interval=0.02)
        assert ledger(workdir) == ["hang"]
