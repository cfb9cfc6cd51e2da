"""The ``tools/list`` contract as a real client sees it: eight tools, each documented, typed and annotated,
and cheap enough that every conversation can afford the listing."""

from __future__ import annotations

import json

import pytest
from e2e_support import TOOLS, connect
from mcp.types import ListToolsResult

pytestmark = pytest.mark.anyio

READ_ONLY = {"list_workers", "runtimes", "readiness", "scheduler", "get_run", "list_worker_runs", "diag", "optimize"}
DESTRUCTIVE = {"stop_worker", "cancel_run", "panic"}
MUTATING = TOOLS - READ_ONLY
TOKEN_BUDGET = 2000


@pytest.fixture
async def listing(server_env: dict[str, str]) -> ListToolsResult:
    async with connect("stdio", server_env) as client:
        return await client.list_tools()


async def test_exactly_the_issue_tools(listing: ListToolsResult) -> None:
    names = [t.name for t in listing.tools]
    assert set(names) == TOOLS, f"unexpected: {sorted(set(names) - TOOLS)}, missing: {sorted(TOOLS - set(names))}"
    assert len(names) == len(set(names))
    assert listing.next_cursor is None


async def test_every_tool_is_documented_typed_and_annotated(listing: ListToolsResult) -> None:
    for tool in listing.tools:
        assert tool.description and len(tool.description) >= 20, tool.name
        assert tool.output_schema is not None and tool.output_schema.get("type") == "object", tool.name
        assert tool.input_schema.get("type") == "object", tool.name
        ann = tool.annotations
        assert ann is not None, tool.name
        assert ann.read_only_hint is not None, tool.name
        if tool.name in READ_ONLY:
            assert ann.read_only_hint is True, tool.name
        elif tool.name in MUTATING:
            assert ann.read_only_hint is False, tool.name
        if tool.name in DESTRUCTIVE:
            assert ann.destructive_hint is True, tool.name
        elif tool.name in MUTATING:
            assert ann.destructive_hint is False, tool.name
        if tool.name in MUTATING:
            assert "agentId" in tool.input_schema.get("required", []), tool.name


async def test_panic_tells_how_to_release(listing: ListToolsResult) -> None:
    [panic] = [t for t in listing.tools if t.name == "panic"]
    assert "mcp-orchestrator panic off" in (panic.description or "")


async def test_listing_fits_the_token_budget(listing: ListToolsResult) -> None:
    # Serialized the way the SDK puts it on the wire (camelCase aliases, no nulls), then ~4 characters a token.
    wire = listing.model_dump_json(by_alias=True, exclude_none=True)
    assert json.loads(wire)["tools"][0]["inputSchema"]  # really the wire shape
    tokens = len(wire) / 4
    assert tokens <= TOKEN_BUDGET, f"tools/list is about {tokens:.0f} tokens (budget {TOKEN_BUDGET})"
