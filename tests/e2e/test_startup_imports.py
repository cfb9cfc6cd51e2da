"""Issue 15 (start-up): ``serve`` answers the handshake and ``tools/list`` without importing what only a call
needs (the service, the tools' models, the strategies, runtimes and vendor SDKs); a call still gets them.

The real ``python -m mcp_orchestrator serve`` over stdio, run through a wrapper that writes the names in
``sys.modules`` to a file when the process exits, so the test sees what the server imported in the session.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from e2e_support import ok
from mcp import Client, StdioServerParameters
from support.servers import REPO

pytestmark = pytest.mark.anyio

# ``python -m mcp_orchestrator serve``, and the imported modules' names written to argv[1] at exit.
_WRAPPER = """
import atexit, json, runpy, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["mcp_orchestrator", "serve"]
runpy.run_module("mcp_orchestrator", run_name="__main__", alter_sys=True)
"""

# What only a call needs (whichever of them the server would import).
CALL_ONLY = (
    "mcp_orchestrator.service.orchestrator",
    "mcp_orchestrator.server.tools",
    "mcp_orchestrator.strategies",
    "mcp_orchestrator.runtimes",
    "mcp_orchestrator.engine",
    "mcp_orchestrator.readiness",
    "mcp_orchestrator.observability.models",
    "mcp_orchestrator.contracts.wire",
    "openai",
    "google.genai",
    "temporalio",
)


def _params(env: dict[str, str], out: Path) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-c", _WRAPPER, str(out)], env=env, cwd=str(REPO))


def _imported(out: Path) -> set[str]:
    names: list[str] = json.loads(out.read_text())
    return set(names)


async def test_tools_list_imports_nothing_a_call_needs(server_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "modules.json"
    async with Client(_params(server_env, out)) as client:
        tools = await client.list_tools()
    assert len(tools.tools) == 13
    assert {t.name for t in tools.tools} >= {"dispatch_task", "get_run", "spawn_worker"}
    imported = _imported(out)
    assert "mcp_orchestrator.server.app" in imported  # the wrapper saw the real server
    assert [m for m in CALL_ONLY if m in imported] == []


async def test_a_call_still_loads_what_it_needs_and_works(server_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "modules.json"
    async with Client(_params(server_env, out)) as client:
        await client.list_tools()
        worker = await ok(client, "spawn_worker", {"agentId": "a1", "name": "w1", "model": "mock"})
        assert worker["status"] == "idle"
        run = await ok(client, "dispatch_task", {"agentId": "a1", "task": "say hi", "workers": ["w1"]})
        assert run["status"] == "completed", run
    imported = _imported(out)
    assert {"mcp_orchestrator.service.orchestrator", "mcp_orchestrator.server.tools"} <= imported
    assert "mcp_orchestrator.contracts.wire" in imported
