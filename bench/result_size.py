"""The size of tool results as the calling model pays for them: characters of text and structured content.

A real in-memory server runs a 2-step mock run (``codex_writes_gemini_reviews``: a writer, then a
reviewer). Measured: ``dispatch_task`` and ``get_run`` in the default view and with ``detail: "full"``
(where the server has it), and ``readiness`` / ``runtimes`` likewise. Prints one JSON object.

    python bench/result_size.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.types import CallToolResult, TextContent

from mcp_orchestrator.config import Settings
from mcp_orchestrator.server import build_server

AGENT = "bench"


def _chars(obj: object) -> int:
    return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))


def _size(result: CallToolResult) -> dict[str, int]:
    text = "".join(b.text for b in result.content if isinstance(b, TextContent))
    return {"text": len(text), "structured": _chars(result.structured_content)}


async def _measure(client: Client, tool: str, args: dict[str, Any], has_detail: bool) -> dict[str, Any]:
    default = await client.call_tool(tool, args)
    assert not default.is_error, default.content
    out: dict[str, Any] = {"default": _size(default)}
    if has_detail:
        full = await client.call_tool(tool, {**args, "detail": "full"})
        assert not full.is_error, full.content
        out["full"] = _size(full)
    return out


async def main() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        home, root = Path(tmp) / "home", Path(tmp) / "root"
        root.mkdir()
        async with Client(build_server(Settings(home=home, roots=(root,)))) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            detail = {name: "detail" in t.input_schema.get("properties", {}) for name, t in tools.items()}
            for name, model in (("writer", "codex_cli"), ("reviewer", "gemini_cli")):
                spawned = await client.call_tool(
                    "spawn_worker", {"agentId": AGENT, "name": name, "model": model, "runtimeMode": "mock"}
                )
                assert not spawned.is_error, spawned.content
            args = {
                "agentId": AGENT,
                "task": "Add a function that returns the sum of two numbers.",
                "strategy": "codex_writes_gemini_reviews",
                "workers": ["writer", "reviewer"],
                "waitSeconds": 30,
            }
            first = await client.call_tool("dispatch_task", args)
            assert first.structured_content is not None and first.structured_content["status"] == "completed"
            run_id = first.structured_content["runId"]
            results = {
                "dispatch_task": await _measure(
                    client, "dispatch_task", {**args, "idempotencyKey": "k"}, detail["dispatch_task"]
                ),
                "get_run": await _measure(client, "get_run", {"runId": run_id}, detail["get_run"]),
                "readiness": await _measure(client, "readiness", {}, detail["readiness"]),
                "runtimes": await _measure(client, "runtimes", {}, detail["runtimes"]),
            }
    return {
        "benchmark": "result_size",
        "what": "characters of a tool result's text content and structured content (compact JSON)",
        "run": "2 steps, mock runtime, codex_writes_gemini_reviews",
        "results": results,
    }


if __name__ == "__main__":
    print(json.dumps(anyio.run(main)))
