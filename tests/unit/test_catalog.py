"""server/catalog.py (issue 15: start-up): ``tools/list`` is answered from ``catalog.json``, which must say
exactly what the registry builds from ``tools.py``; a catalog tool builds and runs the real tool on its call."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.server import MCPServer

from mcp_orchestrator.config import Settings
from mcp_orchestrator.server import build_server
from mcp_orchestrator.server.catalog import CATALOG, advertised, built_tools, render

pytestmark = pytest.mark.anyio


def test_the_catalog_has_not_drifted_from_the_tools() -> None:
    assert CATALOG.read_text(encoding="utf-8") == render(built_tools()), (
        "mcp_orchestrator/server/catalog.json is out of date: run `python -m mcp_orchestrator.schemas` and "
        "commit the result"
    )


async def test_tools_list_says_what_the_built_tools_say(settings: Settings) -> None:
    served = [t.model_dump(mode="json", by_alias=True) for t in await build_server(settings).list_tools()]
    built = [t.model_dump(mode="json", by_alias=True) for t in await MCPServer("x", tools=built_tools()).list_tools()]
    assert served == built
    assert [t["name"] for t in served] == [e["name"] for e in advertised()]


async def test_a_catalog_tool_runs_the_built_tool(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        made = await client.call_tool("spawn_worker", {"agentId": "a1", "name": "w1", "model": "mock"})
        assert not made.is_error
        assert made.structured_content is not None and made.structured_content["name"] == "w1"
        typo = await client.call_tool("list_workers", {"statuss": "idle"})  # still strict: did-you-mean
        assert typo.is_error and "status" in str(typo.content[0])
