"""Idempotency keys shared by the cluster: the same (agentId, idempotencyKey) on any server is one run."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import Client
from support.temporal_dev import DevServer
from support.temporal_workers import call, listed, two_servers
from temporalio.client import Client as TemporalClient

from mcp_orchestrator.engine.temporal.client import RUN_WORKFLOW
from mcp_orchestrator.engine.temporal.keys import claim_key
from mcp_orchestrator.service.lifecycle import new_run_id
from mcp_orchestrator.service.temporal import keys

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@asynccontextmanager
async def _two_servers(
    server: DevServer, prefix: str, tmp_path: Path
) -> AsyncIterator[tuple[Client, Client, subprocess.Popen[str]]]:
    """One mock worker process and servers A and B on their own data dirs; A spawns worker ``m`` of ``default``
    and ``n`` of ``alice``, and B lists them (the workers registry is the cluster's)."""
    async with two_servers(server, prefix, tmp_path) as (ca, cb, work, proc):
        assert proc is not None
        await call(ca, "spawn_worker", agentId="default", name="m", model="mock", workdir=work)
        await call(ca, "spawn_worker", agentId="alice", name="n", model="mock", workdir=work)
        await listed(cb, {"m": "idle", "n": "idle"})
        yield ca, cb, proc


async def _run_ids(server: DevServer, prefix: str, sentinel: str) -> list[str]:
    """Every run workflow of the deployment, once visibility lists ``sentinel`` (started after all the others)."""
    cluster = await TemporalClient.connect(server.address)
    where = f"WorkflowType = '{RUN_WORKFLOW}' AND TaskQueue = '{prefix}.runs'"
    with anyio.fail_after(20):
        while True:
            ids = sorted([w.id async for w in cluster.list_workflows(where)])
            if sentinel in ids:
                return ids
            await anyio.sleep(0.2)  # visibility has no event to wait on


async def test_an_idempotency_key_used_on_server_a_gives_server_b_the_same_run(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    prefix = temporal_prefix.rstrip("-")
    async with _two_servers(temporal_server, prefix, tmp_path) as (ca, cb, _):
        first = await call(ca, "dispatch_task", agentId="default", task="[[mock say=first]]", idempotencyKey="k1")
        assert first["status"] == "completed", first
        again = await call(cb, "dispatch_task", agentId="default", task="[[mock say=second]]", idempotencyKey="k1")
        assert again["runId"] == first["runId"] and again["status"] == "completed", again
        assert again["answer"].startswith("first"), again  # the first run's answer: nothing ran again
        on_a = await call(ca, "dispatch_task", agentId="default", task="x", idempotencyKey="k1", waitSeconds=0)
        assert on_a["runId"] == first["runId"], on_a

        alice = await call(cb, "dispatch_task", agentId="alice", task="[[mock say=a]]", idempotencyKey="k1")
        other = await call(cb, "dispatch_task", agentId="default", task="[[mock say=o]]", idempotencyKey="k2")
        assert len({first["runId"], alice["runId"], other["runId"]}) == 3  # a key is per agent
        assert alice["status"] == other["status"] == "completed", (alice, other)
        sentinel = (await call(cb, "dispatch_task", agentId="default", task="last", waitSeconds=0))["runId"]

        started = await _run_ids(temporal_server, prefix, sentinel)
        assert started == sorted([first["runId"], alice["runId"], other["runId"], sentinel])


async def test_the_same_key_dispatched_on_both_servers_at_once_starts_one_run(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    prefix = temporal_prefix.rstrip("-")
    async with _two_servers(temporal_server, prefix, tmp_path) as (ca, cb, _):
        seen: dict[tuple[str, int], str] = {}

        async def dispatch(side: str, c: Client, i: int) -> None:
            run = await call(c, "dispatch_task", agentId="default", task=f"[[mock say={side}{i}]]",
                             idempotencyKey=f"same-{i}", waitSeconds=0)  # fmt: skip
            seen[side, i] = run["runId"]

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(5):
                    tg.start_soon(dispatch, "a", ca, i)
                    tg.start_soon(dispatch, "b", cb, i)
        assert all(seen["a", i] == seen["b", i] for i in range(5)), seen
        for i in range(5):
            ended = await call(cb, "get_run", runId=seen["a", i], waitSeconds=30)
            assert ended["status"] == "completed", ended
        sentinel = (await call(ca, "dispatch_task", agentId="default", task="last", waitSeconds=0))["runId"]
        started = await _run_ids(temporal_server, prefix, sentinel)
        assert started == sorted({seen["a", i] for i in range(5)} | {sentinel})


async def test_a_key_whose_server_died_before_starting_its_run_is_taken_up_by_the_next_dispatch(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = temporal_prefix.rstrip("-")
    monkeypatch.setattr(keys, "ADOPT_AFTER", 1.0)
    async with _two_servers(temporal_server, prefix, tmp_path) as (ca, cb, _):
        cluster = await TemporalClient.connect(temporal_server.address)
        orphan = new_run_id()  # a server claimed the key for this run, then died before storing and starting it
        assert await claim_key(cluster, prefix, f"{prefix}.runs", "default", "orphan", orphan) == orphan
        taken = await call(cb, "dispatch_task", agentId="default", task="[[mock say=taken]]", idempotencyKey="orphan")
        assert taken["runId"] == orphan and taken["status"] == "completed", taken
        again = await call(ca, "dispatch_task", agentId="default", task="x", idempotencyKey="orphan", waitSeconds=0)
        assert again["runId"] == orphan, again


async def test_a_used_key_is_answered_while_no_worker_process_answers_queries(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    prefix = temporal_prefix.rstrip("-")
    async with _two_servers(temporal_server, prefix, tmp_path) as (ca, cb, proc):
        done = await call(ca, "dispatch_task", agentId="default", task="[[mock say=done]]", idempotencyKey="done")
        assert done["status"] == "completed", done
        busy = await call(ca, "dispatch_task", agentId="default", task="[[mock delay=120]]", idempotencyKey="busy",
                          waitSeconds=0)  # fmt: skip
        with anyio.fail_after(20):  # the step runs on the worker
            while True:
                if (await call(ca, "get_run", runId=busy["runId"]))["status"] == "running":
                    break
                await anyio.sleep(0.1)  # the run's follower has no event for this test to wait on
        os.killpg(proc.pid, signal.SIGKILL)  # the only worker process: nobody answers a workflow query now
        proc.wait()

        with anyio.fail_after(30):
            ended = await call(cb, "dispatch_task", agentId="default", task="x", idempotencyKey="done", waitSeconds=0)
            running = await call(cb, "dispatch_task", agentId="default", task="x", idempotencyKey="busy",
                                 waitSeconds=0)  # fmt: skip
        assert ended["runId"] == done["runId"] and ended["status"] == "completed", ended
        assert ended["answer"].startswith("done"), ended  # an ended run's record is its workflow's result
        assert running["runId"] == busy["runId"] and running["status"] == "running", running
