"""What a server on another data directory sees of a run the cluster executed: the step's worker and its output."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.temporal_dev import DevServer
from support.temporal_workers import call, two_servers

from mcp_orchestrator.engine.temporal import visibility

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@asynccontextmanager
async def _two_servers(server: DevServer, prefix: str, tmp_path: Path) -> AsyncIterator[tuple[Client, Client, str]]:
    """One mock worker process and servers A and B on their own data dirs; A has worker ``m`` of ``default``."""
    async with two_servers(server, prefix.rstrip("-"), tmp_path) as (ca, cb, work, _):
        await call(ca, "spawn_worker", agentId="default", name="m", model="mock", workdir=work)
        yield ca, cb, work


async def test_step_output_and_worker_label_are_read_from_the_cluster_on_another_server(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    async with _two_servers(temporal_server, temporal_prefix, tmp_path) as (ca, cb, _):
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


async def _settled(c: Client, count: int) -> list[dict[str, Any]]:
    """Visibility is eventually consistent: wait until it lists ``count`` runs, all ended."""
    with anyio.fail_after(20):
        while True:
            runs = (await call(c, "list_worker_runs", limit=50))["runs"]
            if len(runs) == count and all(r["status"] == "completed" for r in runs):
                return list(runs)
            await anyio.sleep(0.2)  # visibility has no event to wait on


async def _pages(c: Client, **flt: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        args = {"limit": 2} | flt | ({"cursor": cursor} if cursor else {})
        page = await call(c, "list_worker_runs", **args)
        pages.append([r["runId"] for r in page["runs"]])
        cursor = page.get("nextCursor")
        if cursor is None:
            return pages


async def test_list_worker_runs_gives_the_same_pages_on_servers_with_different_data_dirs(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _two_servers(temporal_server, temporal_prefix, tmp_path) as (ca, cb, work):
        await call(ca, "spawn_worker", agentId="alice", name="n", model="mock", workdir=work)
        ids = []
        for agent, task in [("default", "one"), ("alice", "two"), ("default", "three"), ("alice", "four")]:
            run = await call(ca, "dispatch_task", agentId=agent, task=f"[[mock say={task}]]", waitSeconds=30)
            assert run["status"] == "completed", run
            ids.append(run["runId"])
        ids.append((await call(ca, "dispatch_task", agentId="default", task="five", waitSeconds=30))["runId"])

        listed = await _settled(cb, 5)  # B dispatched nothing and holds none of them in its store
        assert [r["runId"] for r in listed] == sorted(ids, reverse=True)  # newest first
        five = listed[0]
        assert five["agentId"] == "default" and five["workers"] == ["m"] and five["task"] == "five"
        assert five["strategy"] == "single_worker" and five["endedAt"] is not None, five
        await _settled(ca, 5)

        pages = await _pages(ca)
        assert pages == await _pages(cb)
        assert pages == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]]
        for flt, want in [
            ({"agentId": "alice"}, [ids[3], ids[1]]),
            ({"workerName": "m"}, [ids[4], ids[2], ids[0]]),
            ({"status": "completed", "strategy": "single_worker"}, sorted(ids, reverse=True)),
            ({"status": "failed"}, []),
        ]:
            on_b_pages = await _pages(cb, **flt)
            assert on_b_pages == await _pages(ca, **flt), flt
            assert [i for p in on_b_pages for i in p] == want, flt

        # A busy cluster's page is read in widening windows of creation time: the same pages.
        monkeypatch.setattr(visibility, "ALL_AT_ONCE", 0)
        monkeypatch.setattr(visibility, "FIRST_WINDOW_MS", 1)
        assert await _pages(cb) == pages
        assert await _pages(ca, agentId="alice", limit=1) == [[ids[3]], [ids[1]]]
