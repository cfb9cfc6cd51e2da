"""The size of `tools/list` as the calling model pays for it: characters / 4 ~ tokens.

The result is taken from a real in-memory server and measured as the compact JSON of what goes on
the wire (camelCase, no nulls). Prints one JSON object with the total and a per-tool breakdown.

    python bench/tools_tokens.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import anyio
from mcp import Client

from mcp_orchestrator.config import Settings
from mcp_orchestrator.server import build_server


def _chars(obj: object) -> int:
    return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))


async def main() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        home, root = Path(tmp) / "home", Path(tmp) / "root"
        root.mkdir()
        async with Client(build_server(Settings(home=home, roots=(root,)))) as client:
            listed = await client.list_tools()
    wire = listed.model_dump(mode="json", by_alias=True, exclude_none=True)
    per_tool = {
        t["name"]: {
            "tokens": _chars(t) // 4,
            "description": _chars(t.get("description", "")) // 4,
            "inputSchema": _chars(t.get("inputSchema", {})) // 4,
            "outputSchema": _chars(t.get("outputSchema", {})) // 4,
        }
        for t in wire["tools"]
    }
    total = _chars(wire) // 4
    return {
        "benchmark": "tools_tokens",
        "what": "tools/list result, compact JSON characters / 4",
        "tools": len(wire["tools"]),
        "chars": _chars(wire),
        "tokens": total,
        "goal_tokens_max": 2000,
        "per_tool": per_tool,
    }


if __name__ == "__main__":
    print(json.dumps(anyio.run(main)))
