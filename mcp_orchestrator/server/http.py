"""Serving over SSE or Streamable HTTP: one orchestrator for the whole process, quiet access logs."""

from __future__ import annotations

from typing import Literal

import uvicorn

from mcp_orchestrator.config import Settings
from mcp_orchestrator.server.app import build_server
from mcp_orchestrator.server.state import AppState
from mcp_orchestrator.service import Orchestrator

__all__ = ["serve_http"]


async def serve_http(settings: Settings, transport: Literal["sse", "streamable-http"], host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; runs keep going across client connections."""
    orch = Orchestrator(settings)
    async with orch.running():
        server = build_server(settings, state=AppState(orch))
        app = server.sse_app(host=host) if transport == "sse" else server.streamable_http_app(host=host)
        # Access logs would go to stdout; diagnostics belong on stderr, and uvicorn's own log does.
        config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning")
        await uvicorn.Server(config).serve()
