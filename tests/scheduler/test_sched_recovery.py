"""Crash and lease recovery of queued work (issue #5, point 7): real server processes on one data
directory, ``kill -9`` (and ``SIGSTOP`` for a lease that expires while its holder still exists).

Queued runs are executed by a fake codex CLI that appends every execution to ``ledger.txt`` in the
workdir: "exactly once" is checked on that side effect as well as on each run's steps and attempts.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from sched_support import AGENT, ServerProcess, call, eventually, fake_codex, ledger, served
from support.executors import inline
from support.servers import REPO

from mcp_orchestrator.store import JsonRunStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    """This module tests the serving process's own scheduler and leases: ``serve`` in inline mode."""
    return inline(server_env)


def answering_env(server_env: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    binary = fake_codex(tmp_path / "bin", "answering")
    return {**server_env, "MCP_ORCHESTRATOR_CODEX_BIN": str(binary), "MCP_ORCHESTRATOR_FSYNC": "0", **extra}


async def queue_behind_blocker(
    client: Client, workdir: Path, count: int, blocker_delay: float
) -> tuple[str, list[str]]:
    """A mock run occupying the only slot, then ``count`` runs of the fake CLI queued behind it."""
    await call(client, "spawn_worker", agentId=AGENT, name="slow", model="mock")
    await call(client, "spawn_worker", agentId=AGENT, name="cx", model="codex_cli", workdir=str(workdir))
    blocker = await call(
        client, "dispatch_task", agentId=AGENT, task=f"[[mock delay={blocker_delay}]]", workers=["slow"], waitSeconds=0
    )

    async def blocker_running() -> bool:
        return bool((await call(client, "get_run", runId=blocker["runId"]))["status"] == "running")

    await eventually(blocker_running, 10)
    queued = []
    for i in range(count):
        run = await call(client, "dispatch_task", agentId=AGENT, task=f"job {i}", workers=["cx"], waitSeconds=0)
        assert run["status"] == "accepted"
        queued.append(run["runId"])
    view = await call(client, "scheduler")
    assert (view["depth"]["interactive"], view["running"]) == (count, 1)
    return blocker["runId"], queued


async def all_done(client: Client, run_ids: list[str], seconds: float) -> dict[str, dict[str, Any]]:
    """Every run once terminal."""

    async def finished() -> bool:
        return bool((await call(client, "scheduler"))["unfinishedRuns"] == 0)

    await eventually(finished, seconds, interval=0.2)
    return {run_id: await call(client, "get_run", runId=run_id) for run_id in run_ids}


def assert_exactly_once(runs: dict[str, dict[str, Any]], workdir: Path, home: Path, executor: str) -> None:
    """Every queued run completed by ``executor``, with one step of one attempt, and the CLI ran once for each."""
    for run_id, run in runs.items():
        assert run["status"] == "completed", run
        (step,) = run["steps"]
        assert step["status"] == "completed" and step["attempt"] == 1 and len(step["attempts"]) == 1
        assert run["executedBy"] == executor, run["executedBy"]
        steps_dir = home / "runs" / run_id / "steps"
        assert sorted(p.name for p in steps_dir.iterdir()) == ["0"]  # no second step was ever spooled
    expected = sorted(f"job {i}" for i in range(len(runs)))
    assert sorted(ledger(workdir)) == expected  # each job executed exactly once


def instance_label(view: dict[str, Any], pid: int) -> str:
    (label,) = [p["instance"] for p in view["processes"] if p["instance"].startswith(f"{pid}@")]
    return str(label)


async def test_kill9_with_100_queued_then_restart_runs_each_exactly_once(
    server_env: dict[str, str], tmp_path: Path, root: Path, data_home: Path
) -> None:
    workdir = root / "work"
    env = answering_env(server_env, tmp_path, MCP_ORCHESTRATOR_MAX_RUNNING="1")
    server = ServerProcess(env, tmp_path / "a.log")
    try:
        await server.ready()
        async with Client(server.url) as client:
            blocker, queued = await queue_behind_blocker(client, workdir, 100, 600)
    finally:
        server.kill9()
    store = JsonRunStore(data_home, fsync=False)
    assert {store.get_run(r).status for r in queued} == {"accepted"}
    assert ledger(workdir) == []

    # An operator looks at the scheduler while no server runs: a read-only look takes nothing over.
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "mcp_orchestrator", "scheduler"], env=env, cwd=str(REPO), check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["unfinishedRuns"] == 101
    assert {store.get_run(r).status for r in queued} == {"accepted"}

    restarted = {**env, "MCP_ORCHESTRATOR_MAX_RUNNING": "8"}
    async with served(restarted, tmp_path / "b.log") as (b, client):
        started = time.monotonic()
        runs = await all_done(client, queued, 60)
        elapsed = time.monotonic() - started
        label = instance_label(await call(client, "scheduler"), b.pid)
        killed = await call(client, "get_run", runId=blocker)
        workers = (await call(client, "list_workers"))["workers"]
    assert_exactly_once(runs, workdir, data_home, label)
    assert killed["status"] == "failed" and killed["error"]["class"] == "interrupted"  # never re-executed
    assert {w["name"]: w["status"] for w in workers} == {"slow": "idle", "cx": "idle"}
    assert list((data_home / "active").iterdir()) == []
    print(f"\n100 recovered runs completed in {elapsed:.2f} s after the restart")


async def test_a_live_server_takes_over_the_queue_of_a_killed_one(
    server_env: dict[str, str], tmp_path: Path, root: Path, data_home: Path
) -> None:
    workdir = root / "work"
    env = answering_env(
        server_env,
        tmp_path,
        MCP_ORCHESTRATOR_MAX_RUNNING="1",
        MCP_ORCHESTRATOR_LEASE_SECONDS="1",
        MCP_ORCHESTRATOR_HEARTBEAT_SECONDS="0.2",
    )
    a = ServerProcess(env, tmp_path / "a.log")
    try:
        async with served(env, tmp_path / "b.log") as (b, client_b):
            await a.ready()
            async with Client(a.url) as client_a:
                blocker, queued = await queue_behind_blocker(client_a, workdir, 20, 600)
            a.kill9()
            killed_at = time.monotonic()

            async def taken_over() -> bool:
                return not any(store_owner(data_home, r) == a.pid for r in queued)

            await eventually(taken_over, 10)
            takeover = time.monotonic() - killed_at
            runs = await all_done(client_b, queued, 60)
            label = instance_label(await call(client_b, "scheduler"), b.pid)
            killed = await call(client_b, "get_run", runId=blocker)
            workers = (await call(client_b, "list_workers"))["workers"]
    finally:
        a.stop()
    assert_exactly_once(runs, workdir, data_home, label)
    assert killed["status"] == "failed" and killed["error"]["class"] == "interrupted"
    assert {w["name"]: w["status"] for w in workers} == {"slow": "idle", "cx": "idle"}  # the dead one's freed
    assert takeover < 2.0, takeover  # a dead pid on this host is noticed at B's next heartbeat (0.2 s)


async def test_an_expired_lease_moves_the_queue_and_the_old_holder_never_runs_it(
    server_env: dict[str, str], tmp_path: Path, root: Path, data_home: Path
) -> None:
    """A stops (SIGSTOP) without dying: its heartbeat goes stale, B takes its queued runs when the lease
    expires; A then wakes up with those runs still in its own queue and must not run any of them."""
    workdir = root / "work"
    lease = 1.0
    env = answering_env(
        server_env,
        tmp_path,
        MCP_ORCHESTRATOR_MAX_RUNNING="1",
        MCP_ORCHESTRATOR_LEASE_SECONDS=str(lease),
        MCP_ORCHESTRATOR_HEARTBEAT_SECONDS="0.2",
    )
    a = ServerProcess(env, tmp_path / "a.log")
    try:
        async with served(env, tmp_path / "b.log") as (b, client_b):
            await a.ready()
            async with Client(a.url) as client_a:
                _, queued = await queue_behind_blocker(client_a, workdir, 20, 1.5)
                a.signal(signal.SIGSTOP)
                stopped_at = time.monotonic()

                async def taken_over() -> bool:
                    return not any(store_owner(data_home, r) == a.pid for r in queued)

                await eventually(taken_over, 10)
                assert time.monotonic() - stopped_at >= lease - 0.3  # not before the lease expired
                runs = await all_done(client_b, queued, 60)
                label = instance_label(await call(client_b, "scheduler"), b.pid)
                a.signal(signal.SIGCONT)  # A's blocker ends now; its own queue still holds the 20 runs

                async def a_drained() -> bool:
                    view = await call(client_a, "scheduler")
                    return bool(view["depth"] == {"interactive": 0, "batch": 0} and view["running"] == 0)

                await eventually(a_drained, 20, interval=0.2)
    finally:
        a.stop()
    assert_exactly_once(runs, workdir, data_home, label)


def store_owner(home: Path, run_id: str) -> int | None:
    """The pid of the process that holds ``run_id`` according to its document."""
    run = JsonRunStore(home, fsync=False).get_run(run_id)
    return run.owner.pid if run.owner is not None else None
