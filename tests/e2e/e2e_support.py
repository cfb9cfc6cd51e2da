"""Helpers for the end-to-end tests: a real ``Client`` on a real ``mcp-orchestrator serve`` subprocess."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp import Client
from mcp.client.sse import sse_client
from mcp.types import CallToolResult, TextContent, TextResourceContents
from support.records import full
from support.servers import REPO, http_server, stdio_params

__all__ = ["TOOLS", "TRANSPORTS", "Progress", "connect", "ok", "panic_cli", "read_text", "refused", "text_of"]

TRANSPORTS = ("stdio", "sse", "streamable-http")

# The tool surface of issues #2, #3 (runtimes), #5 (scheduler), #7 (diag, optimize) and #9 (readiness). A new
# tool is a contract change: add it here on purpose.
TOOLS = frozenset(
    {
        "spawn_worker",
        "list_workers",
        "runtimes",
        "readiness",
        "scheduler",
        "stop_worker",
        "dispatch_task",
        "get_run",
        "list_worker_runs",
        "cancel_run",
        "panic",
        "diag",
        "optimize",
    }
)

# Generous per-call bound: a call that hangs fails the test instead of the whole session.
CALL_TIMEOUT = 30.0


@asynccontextmanager
async def connect(transport: str, env: dict[str, str]) -> AsyncIterator[Client]:
    """A connected ``Client`` on a fresh ``serve --transport <transport>`` subprocess."""
    if transport == "stdio":
        async with Client(stdio_params(env), read_timeout_seconds=CALL_TIMEOUT) as client:
            yield client
        return
    async with http_server(env, transport) as url:
        target: Any = sse_client(url) if transport == "sse" else url
        async with Client(target, read_timeout_seconds=CALL_TIMEOUT) as client:
            yield client


def text_of(result: CallToolResult) -> str:
    """The text blocks of a tool result, joined."""
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def ok(client: Client, tool: str, args: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Call ``tool``; it must succeed. Returns its structured result (camelCase, as on the wire): the full
    record of a tool with a compact view unless ``args`` choose a ``detail``."""
    result = await client.call_tool(tool, full(tool, args), **kwargs)
    assert not result.is_error, f"{tool}({args}) failed: {text_of(result)}"
    assert result.structured_content is not None, f"{tool} returned no structuredContent"
    # The text block mirrors the structured result: clients that read only text see the same thing.
    assert json.loads(text_of(result)) == result.structured_content
    return result.structured_content


async def refused(client: Client, tool: str, args: dict[str, Any]) -> str:
    """Call ``tool``; it must come back as an error result (not a protocol error). Returns the error text."""
    result = await client.call_tool(tool, args)
    assert result.is_error, f"{tool}({args}) should have been refused, got {result.structured_content}"
    text = text_of(result)
    assert text, f"{tool} was refused without a message"
    return text


async def read_text(client: Client, uri: str) -> str:
    """The text of a resource with exactly one text content."""
    result = await client.read_resource(uri)
    assert len(result.contents) == 1, result.contents
    content = result.contents[0]
    assert isinstance(content, TextResourceContents), content
    return content.text


class Progress:
    """A ``progress_callback`` that records messages and sets events when a message contains a needle."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._waiters: list[tuple[str, anyio.Event]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        text = message or ""
        self.messages.append(text)
        for needle, event in self._waiters:
            if needle in text:
                event.set()

    def event_for(self, needle: str) -> anyio.Event:
        """An event set once a message containing ``needle`` arrives (or already has)."""
        event = anyio.Event()
        if any(needle in m for m in self.messages):
            event.set()
        self._waiters.append((needle, event))
        return event


async def panic_cli(env: dict[str, str], action: str) -> dict[str, Any]:
    """Run the operator CLI ``python -m mcp_orchestrator panic <action>`` on the same data directory."""
    with anyio.fail_after(CALL_TIMEOUT):
        proc = await anyio.run_process(
            [sys.executable, "-m", "mcp_orchestrator", "panic", action], env=env, cwd=str(REPO), check=False
        )
    assert proc.returncode == 0, proc.stderr.decode()
    state: dict[str, Any] = json.loads(proc.stdout)
    return state
