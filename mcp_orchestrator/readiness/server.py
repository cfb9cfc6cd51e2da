"""The server probe: ``python -m mcp_orchestrator serve`` starts over stdio and answers ``tools/list`` in time.

The spawned server gets the caller's environment (so a bad ``MCP_ORCHESTRATOR_*`` setting shows up
here) but a temporary data directory and root: a probe must never recover, adopt or run anything in
the real data directory. Inside a running server (the ``readiness`` tool) nothing is spawned: the
probe lists the running server's own tools instead (``lister``), so a server never starts a server.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp.types import ListToolsResult, Tool

from mcp_orchestrator.readiness._common import elapsed_ms, make_result
from mcp_orchestrator.readiness.models import ProbeResult, ProbeStatus

__all__ = ["TOKEN_BUDGET", "ToolLister", "probe_server"]

PROBE = "server"
TOKEN_BUDGET = 2000  # tools/list, compact JSON characters / 4 (the e2e contract test's budget)
ToolLister = Callable[[], Awaitable[list[Tool]]]


def _leaves(error: BaseException) -> list[str]:
    """The messages of an exception or of every exception inside a group."""
    if isinstance(error, BaseExceptionGroup):
        return [m for inner in error.exceptions for m in _leaves(inner)]
    return [f"{type(error).__name__}: {error}"]


def _judge(tools: list[Tool], mode: str, ev: dict[str, Any]) -> ProbeResult:
    wire = ListToolsResult(tools=tools).model_dump_json(by_alias=True, exclude_none=True)
    tokens = len(wire) // 4
    names = sorted(t.name for t in tools)
    bare = [t.name for t in tools if not t.description or t.output_schema is None]
    facts = {"mode": mode, "tools": len(tools), "toolNames": names, "toolsListTokens": tokens}
    status: ProbeStatus = "ok"
    notes, fixes = [], []
    if not tools:
        status = "fail"
        notes.append("it lists no tools")
        fixes.append("reinstall the package: pip install --force-reinstall mcp-orchestrator")
    if tokens > TOKEN_BUDGET:
        status = "fail" if status == "fail" else "warn"
        notes.append(f"tools/list is about {tokens} tokens (budget {TOKEN_BUDGET})")
        fixes.append("shorten tool docstrings (python bench/tools_tokens.py shows where the tokens go)")
    if bare:
        status = "fail" if status == "fail" else "warn"
        notes.append(f"tools without a description or output schema: {', '.join(bare)}")
        fixes.append("document each tool and return a pydantic contract")
    where = "this server (in-process)" if mode == "in-process" else "a fresh server over stdio"
    head = f"{where} lists {len(tools)} tools (~{tokens} tokens) in {ev.get('latency_ms')} ms"
    return make_result(PROBE, status, "; ".join([head, *notes]), "; ".join(fixes), facts=facts, **ev)


async def probe_server(
    environ: Mapping[str, str], *, time_limit: float = 30.0, lister: ToolLister | None = None
) -> ProbeResult:
    """Probe the MCP server: spawn it over stdio (or, with ``lister``, list the running one's tools)."""
    start = time.perf_counter()
    if lister is not None:
        tools = await lister()
        return _judge(tools, "in-process", {"latency_ms": elapsed_ms(start)})
    argv = [sys.executable, "-m", "mcp_orchestrator", "serve"]
    with tempfile.TemporaryDirectory(prefix="mcp-orch-probe-") as tmp, tempfile.TemporaryFile("w+") as errlog:
        root = Path(tmp) / "root"
        root.mkdir()
        env = {**environ, "MCP_ORCHESTRATOR_HOME": str(Path(tmp) / "home"), "MCP_ORCHESTRATOR_ROOTS": str(root)}
        env["MCP_ORCHESTRATOR_EXECUTOR"] = "inline"  # a probe runs no work: no executor to leave behind
        params = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=str(root))
        ev: dict[str, Any] = {"command": shlex.join(argv)}
        problem = ""
        try:
            with anyio.fail_after(time_limit):
                try:
                    async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=time_limit) as client:
                        info = client.server_info
                        tools = (await client.list_tools()).tools
                except* (OSError, MCPError, anyio.BrokenResourceError, anyio.ClosedResourceError) as group:
                    problem = "; ".join(_leaves(group))
        except TimeoutError:
            problem = f"no tools/list answer within {time_limit:g} s"
        ev["latency_ms"] = elapsed_ms(start)
        if problem:
            errlog.seek(0)
            stderr = errlog.read()[-600:].strip()
            ev["facts"] = {"mode": "spawned", "stderr": stderr}
            fix = f"run `{shlex.join(argv)}` by hand and read its stderr; check the MCP_ORCHESTRATOR_* settings"
            return make_result(PROBE, "fail", f"the server did not answer: {problem}", fix, **ev)
    ev["version"] = info.version if info is not None else None
    return _judge(tools, "spawned", ev)
