"""What a server on another data directory sees of a run the cluster executed: the step's worker and its output."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from support.temporal_dev import DevServer
from support.temporal_workers import call, temporal_settings, worker_process

from mcp_orchestrator.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_step_output_and_worker_label_are_read_from_the_cluster_on_another_server(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    root = (tmp_path / "root").resolve()
    (root / "work").mkdir(parents=True)
    prefix = temporal_prefix.rstrip("-")
    with worker_process(temporal_server, prefix, tmp_path / "worker", (root,), ["mock/mock"]):
        on_a = temporal_settings(temporal_server, prefix, tmp_path / "a", (root,))
        on_b = temporal_settings(temporal_server, prefix, tmp_path / "b", (root,))
        async with Client(build_server(on_a)) as ca, Client(build_server(on_b)) as cb:
            work = str(root / "work")
            await call(ca, "spawn_worker", agentId="default", name="m", model="mock", workdir=work)
            short = await call(ca, "dispatch_task", agentId="default", task="[[mock say=short]]", waitSeconds=30)
            big = await call(ca, "dispatch_task", agentId="default", task="[[mock bytes=40000]]", waitSeconds=30)
            assert short["status"] == big["status"] == "completed", (short, big)

            for c in (ca, cb):  # neither server holds the spool: it is in the worker's data directory
                seen = await call(c, "get_run", runId=big["runId"], detail="full")
                assert seen["steps"][0]["executedBy"].startswith("worker "), seen["steps"][0]
                whole = (await c.read_resource(f"runs://{short['runId']}/steps/0/output")).contents[0]
                assert getattr(whole, "text", "").startswith("short"), whole
                cut = (await c.read_resource(f"runs://{big['runId']}/steps/0/output")).contents[0]
                excerpt = getattr(cut, "text", "")
                assert "[excerpt: the full output (40000 bytes) is spooled on worker " in excerpt, excerpt[-300:]
                assert len(excerpt) < 40000
