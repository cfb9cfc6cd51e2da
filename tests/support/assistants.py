"""Scripting the real assistants (Claude Code, codex) through the loopback model server."""

from __future__ import annotations

import json
from typing import Any

from .model_server import Envelope, Turn

__all__ = ["codex_function_call", "codex_item", "codex_tool_search", "sse"]


def sse(*events: dict[str, Any]) -> Turn:
    """A raw Responses-API SSE turn made of ``events``."""
    body = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
    return Turn.raw(Envelope(body=body, content_type="text/event-stream"))


def codex_item(item: dict[str, Any], response_id: str) -> Turn:
    """One output item, then ``response.completed``: a whole codex model turn."""
    usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    return sse(
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": {"id": response_id, "usage": usage}},
    )


def codex_tool_search(query: str, call_id: str) -> Turn:
    """codex 0.169 defers MCP tools behind tool_search: a scripted model searches first."""
    item = {"type": "tool_search_call", "id": f"ts_{call_id}", "call_id": call_id, "status": "completed",
            "execution": "client", "arguments": {"query": query}}  # fmt: skip
    return codex_item(item, f"resp_{call_id}")


def codex_function_call(server: str, tool: str, args: dict[str, Any], call_id: str) -> Turn:
    """A call of MCP ``tool`` of the server codex knows as ``server`` (namespace ``mcp__<server>``)."""
    item = {"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id, "status": "completed",
            "namespace": f"mcp__{server}", "name": tool, "arguments": json.dumps(args)}  # fmt: skip
    return codex_item(item, f"resp_{call_id}")
