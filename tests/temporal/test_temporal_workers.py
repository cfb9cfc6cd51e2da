"""A worker's state across the cluster: busy on every server while a step of any server's run runs on it, and
a stop from any server cancels its running step on the worker process that runs it (as a local stop does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.procs import alive
from support.temporal_dev import DevServer
from support.temporal_machines import Machine, long_run, served_machines
from support.temporal_workers import call, listed, two_servers

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ENDED = ("completed", "failed", "canceled")


async def ended(c: Client, run_id: str, within: float = 60.0) -> dict[str, Any]:
    """The run as ``c`` reads it once it has ended (a server that does not follow it asks the cluster)."""
    with anyio.fail_after(within):
        while (run := await call(c, "get_run", runId=run_id, detail="full"))["status"] not in ENDED:  # noqa: ASYNC110
            await anyio.sleep(0.1)  # a run another server follows: nothing here to wait on
    return run


async def test_a_worker_is_busy_on_every_server_while_a_step_runs_on_it(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    async with two_servers(temporal_server, temporal_prefix.rstrip("-"), tmp_path) as (ca, cb, work, _):
        for name in ("m", "n"):
            await call(ca, "spawn_worker", agentId="default", name=name, model="mock", workdir=work)
        run = await call(
            ca, "dispatch_task", agentId="default", task="[[mock delay=120]]", workers=["m"], waitSeconds=0
        )
        for c in (cb, ca):  # B holds nothing of A's run; both see m busy, n idle
            await listed(c, {"m": "busy", "n": "idle"}, within=30)
        busy = (await call(cb, "list_workers", status="busy"))["workers"]
        assert [w["name"] for w in busy] == ["m"], busy

        await call(cb, "cancel_run", agentId="default", runId=run["runId"])
        assert (await ended(ca, run["runId"]))["status"] == "canceled"
        for c in (cb, ca):  # the step ended: idle again everywhere
            await listed(c, {"m": "idle", "n": "idle"}, within=30)
        assert not (await call(cb, "list_workers", status="busy"))["workers"]


async def test_stop_worker_on_another_server_cancels_its_step_on_the_worker_process(
    temporal_server: DevServer, temporal_prefix: str, machines: tuple[Machine, Machine]
) -> None:
    a, _ = machines
    async with served_machines(temporal_server, temporal_prefix.rstrip("-"), machines, 300) as (ca, cb):
        run_id, tree = await long_run(ca, a)  # A's run, its step on machine A's worker process
        assert alive(tree) == tree

        stopped = await call(cb, "stop_worker", agentId="default", name="cx")  # B holds nothing of it
        assert stopped["status"] == "stopped", stopped
        with anyio.fail_after(15):  # the activity's heartbeat learned of the cancel and killed the tree
            while alive(tree):  # noqa: ASYNC110 - processes of another "machine"
                await anyio.sleep(0.05)
        for c in (cb, ca):  # ended as a local stop ends it: the step and the run canceled, saying why
            run = await ended(c, run_id)
            assert run["status"] == "canceled", run
            assert run["error"]["class"] == "canceled", run["error"]
            (step,) = run["steps"]
            assert step["status"] == "canceled", step
            assert step["failureClass"] == "canceled", step
            assert "worker cx was stopped by default" in step["output"], step
            await listed(c, {"cx": "stopped"}, within=30)


async def test_a_worker_stopped_while_a_run_waits_to_use_it_gets_no_step_of_it(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    backends = ["codex_cli/mock", "gemini_cli/mock"]
    async with two_servers(temporal_server, temporal_prefix.rstrip("-"), tmp_path, backends=backends) as servers:
        ca, cb, work, _ = servers
        await call(ca, "spawn_worker", agentId="default", name="w", model="codex_cli", runtimeMode="mock", workdir=work)
        await call(
            ca, "spawn_worker", agentId="default", name="r", model="gemini_cli", runtimeMode="mock", workdir=work
        )
        run = await call(
            ca,
            "dispatch_task",
            agentId="default",
            task="[[mock delay=8]] write it",
            strategy="codex_writes_gemini_reviews",
            workers=["w", "r"],
            waitSeconds=0,
        )
        await listed(cb, {"w": "busy"}, within=30)  # the writer's step runs: the reviewer's turn is to come
        await call(cb, "stop_worker", agentId="default", name="r")
        done = await ended(ca, run["runId"], within=90)
        assert done["status"] == "canceled", done
        writer, reviewer = done["steps"]
        assert writer["status"] == "completed", writer
        assert reviewer["status"] == "canceled", reviewer
        assert "the worker was stopped" in reviewer["output"], reviewer
