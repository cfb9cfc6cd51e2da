"""Serving over SSE or Streamable HTTP: one orchestrator for the whole process, quiet access logs.

The exposure decides what a request must carry: off loopback a credential always (the SDK's bearer
middleware and protected-resource metadata), a Host and Origin on the allowlist (the SDK's
rebinding guard), a body under the size limit; per principal, a cap on open sessions and a
dispatch rate.
"""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from mcp.server import MCPServer
from mcp.server.auth.json_response import PydanticJSONResponse
from mcp.shared.auth import ProtectedResourceMetadata
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from mcp_orchestrator.config import Settings
from mcp_orchestrator.server.app import build_server
from mcp_orchestrator.server.auth.exposure import Exposure
from mcp_orchestrator.server.auth.limits import DispatchLimiter, SessionCap
from mcp_orchestrator.server.auth.principal import SCOPES
from mcp_orchestrator.server.state import AppState
from mcp_orchestrator.service import Orchestrator, front_end_orchestrator

__all__ = ["build_http_app", "serve_http"]


def build_http_app(server: MCPServer[AppState], exposure: Exposure) -> Starlette:
    """The Starlette app for ``exposure``'s transport, with its guards and limits in place."""
    security = exposure.transport_security()
    if exposure.auth_enabled:
        _root_metadata(server, exposure)
    live: Callable[[], set[str]]
    if exposure.transport == "sse":
        app = server.sse_app(
            host=exposure.host, transport_security=security, max_request_body_size=exposure.max_body_bytes
        )
        live = set
    else:
        app = server.streamable_http_app(
            host=exposure.host, transport_security=security, max_request_body_size=exposure.max_body_bytes
        )
        manager = server.session_manager
        # The SDK keeps its open sessions here; reading it lets an idled-out session stop counting.
        live = lambda: set(getattr(manager, "_server_instances", {}))  # noqa: E731
    if exposure.auth_enabled:
        # Appended last, so it runs inside the SDK's authentication and sees the verified user.
        app.user_middleware.append(Middleware(SessionCap, limit=exposure.max_sessions, live_sessions=live))
    return app


def _root_metadata(server: MCPServer[AppState], exposure: Exposure) -> None:
    """Serve the protected-resource metadata at the bare well-known path too (the SDK serves the path-suffixed one)."""
    auth = exposure.auth_settings()
    assert auth is not None and auth.resource_server_url is not None
    metadata = ProtectedResourceMetadata(
        resource=auth.resource_server_url,
        authorization_servers=[auth.issuer_url],
        scopes_supported=list(SCOPES),
        resource_name="mcp-orchestrator",
    )

    async def protected_resource(_: Request) -> Response:
        return PydanticJSONResponse(content=metadata, headers={"Cache-Control": "public, max-age=3600"})

    server.custom_route("/.well-known/oauth-protected-resource", methods=["GET"])(protected_resource)


async def serve_http(settings: Settings, exposure: Exposure) -> None:
    """Serve until SIGINT/SIGTERM; runs keep going across client connections."""
    exposure.check()
    front_end = settings.executor == "daemon"
    orch = front_end_orchestrator(settings) if front_end else Orchestrator(settings)
    async with orch.running(take_over=not front_end):
        limiter = DispatchLimiter(*exposure.dispatch_rate) if exposure.auth_enabled else None
        server = build_server(settings, state=AppState(orch, limiter), exposure=exposure)
        app = build_http_app(server, exposure)
        # Access logs would go to stdout; diagnostics belong on stderr, and uvicorn's own log does.
        config = uvicorn.Config(app, host=exposure.host, port=exposure.port, access_log=False, log_level="warning")
        await uvicorn.Server(config).serve()
