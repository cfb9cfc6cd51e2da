"""`diag` shows the cluster on the Temporal engine: backends nobody polls, and a cluster that does not answer,
each with the command that fixes it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.temporal_dev import DevServer
from support.temporal_workers import temporal_settings, worker_process

from mcp_orchestrator.observability.cluster_rules import cluster_actions
from mcp_orchestrator.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _diag(c: Client) -> dict[str, Any]:
    result = await c.call_tool("diag", {})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def _ids(diagnosis: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in diagnosis["actions"]}


async def test_diag_names_the_backend_no_worker_polls_until_one_does(
    temporal_server: DevServer, temporal_prefix: str, tmp_path: Path
) -> None:
    prefix = temporal_prefix.rstrip("-")
    root = (tmp_path / "root").resolve()
    (root / "work").mkdir(parents=True)
    settings = temporal_settings(temporal_server, prefix, tmp_path / "server", (root,))
    async with Client(build_server(settings)) as c:
        await c.call_tool("spawn_worker", {"agentId": "default", "name": "m", "model": "mock"})
        before = await _diag(c)
        assert "cluster" in before["sources"], before["sources"]
        missing = _ids(before).get("cluster.no_workers.mock/mock")
        assert missing is not None, list(_ids(before))
        assert missing["command"].startswith("mcp-orchestrator worker --backend mock/mock"), missing
        assert missing["evidence"]["taskQueue"] == f"{prefix}.mock.mock"
        with worker_process(temporal_server, prefix, tmp_path / "worker", (root,), ["mock/mock"]):
            with anyio.fail_after(30):  # pollers show up in the cluster's view shortly after they start
                while any(i.startswith("cluster.no_workers") for i in _ids(await _diag(c))):  # noqa: ASYNC110
                    await anyio.sleep(0.5)


async def test_the_diag_command_says_an_unreachable_cluster_and_how_to_reach_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    env.update(
        MCP_ORCHESTRATOR_HOME=str(tmp_path / "home"),
        MCP_ORCHESTRATOR_ENGINE="temporal",
        MCP_ORCHESTRATOR_TEMPORAL_ADDRESS="127.0.0.1:1",  # nobody listens there
    )
    with anyio.fail_after(60):
        proc = await anyio.run_process(
            [sys.executable, "-m", "mcp_orchestrator", "diag", "--actions", "--fail-on", "critical"],
            env=env,
            check=False,
        )
    out = proc.stdout.decode()
    assert proc.returncode == 1, (out, proc.stderr.decode())
    assert "CRITICAL cluster.unreachable" in out and "127.0.0.1:1" in out, out
    assert "MCP_ORCHESTRATOR_TEMPORAL_ADDRESS" in out and "temporal operator cluster health" in out, out


def test_an_aging_backlog_with_too_few_workers_asks_for_more() -> None:
    view = {
        "address": "127.0.0.1:7233",
        "namespace": "default",
        "queues": {
            "p.runs": {"pollers": ["1@a"], "backlog": 0, "backlogAgeMs": 0},
            "p.codex_cli.cli": {"pollers": ["1@a"], "backlog": 7, "backlogAgeMs": 95_000},
            "p.mock.mock": {"pollers": ["1@a"], "backlog": 2, "backlogAgeMs": 400},
        },
    }
    actions = {a.id: a for a in cluster_actions(view)}
    assert set(actions) == {"cluster.backlog.codex_cli/cli"}, actions
    assert actions["cluster.backlog.codex_cli/cli"].severity == "warn"
    assert "7 task(s)" in actions["cluster.backlog.codex_cli/cli"].rationale
    assert cluster_actions(None) == []
