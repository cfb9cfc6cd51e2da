"""A worker's state across the cluster: busy on every server while a step of any server's run runs on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.temporal_dev import DevServer
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
