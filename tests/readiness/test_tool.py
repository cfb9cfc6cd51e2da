"""The ``readiness`` tool through the in-memory MCP client: the same report, and no server started from a server."""

from __future__ import annotations

import os

import pytest
from mcp import Client
from support.procs import descendants

from mcp_orchestrator.config import Settings
from mcp_orchestrator.readiness.models import ReadinessReport
from mcp_orchestrator.server import build_server

pytestmark = pytest.mark.anyio


async def test_the_readiness_tool_returns_the_report(probe_settings: Settings) -> None:
    async with Client(build_server(probe_settings)) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        tool = listed["readiness"]
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
        before = descendants(os.getpid())
        result = await client.call_tool("readiness", {"detail": "full"})
        assert not result.is_error, result.content
        assert result.structured_content is not None
        report = ReadinessReport.model_validate(result.structured_content)
    assert descendants(os.getpid()) <= before  # every probe's child process is gone
    probes = {p.probe: p for p in report.probes}
    server = probes["server"]
    assert server.status == "ok", server.summary
    assert server.evidence.facts["mode"] == "in-process"
    assert server.evidence.command is None  # nothing spawned
    assert "readiness" in server.evidence.facts["toolNames"]
    assert probes["store"].status == "ok", probes["store"].summary
    assert probes["worker:mock"].status == "ok"
    assert report.status == max((p.status for p in report.probes), key=("ok", "warn", "fail").index)
