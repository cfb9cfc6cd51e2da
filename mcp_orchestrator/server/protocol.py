"""The optional protocol methods: resource subscriptions, ``logging/setLevel`` and ``completion/complete``.

``register_protocol(server)`` adds them to a built server as low-level handlers (``MCPServer`` has
no decorators for the first two) and wraps the server's lifespan so the run watcher and the log
bridge live exactly as long as the services do. The server then advertises ``resources.subscribe``,
``logging`` and ``completions`` (the SDK derives capabilities from the handlers present).

- ``resources/subscribe`` / ``unsubscribe`` (handshake era) and ``subscriptions/listen`` (2026 era)
  on ``runs://{runId}`` and ``runs://{runId}/summary``: see ``run_watch``. A run URI the caller
  cannot read is refused as not found, like a read; other URIs are accepted and never fire.
- ``logging/setLevel``: see ``log_bridge``.
- ``completion/complete``: see ``completions``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from mcp import MCPError
from mcp.server import MCPServer
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import ResourceUpdated
from mcp.types import (
    INVALID_PARAMS,
    CompleteRequestParams,
    EmptyResult,
    SetLevelRequestParams,
    SubscribeRequestParams,
    SubscriptionsListenRequestParams,
    UnsubscribeRequestParams,
)

from mcp_orchestrator.errors import NotFound, UsageError
from mcp_orchestrator.observability.redact import Redactor
from mcp_orchestrator.server.completions import complete
from mcp_orchestrator.server.identity import caller, visible
from mcp_orchestrator.server.log_bridge import LEVELS, LogBridge
from mcp_orchestrator.server.run_watch import RunWatch, run_of_uri
from mcp_orchestrator.server.state import AppState

__all__ = ["register_protocol"]

Lifespan = Callable[[Any], AbstractAsyncContextManager[AppState]]


def _connection_key(ctx: ServerRequestContext[AppState]) -> int:
    """One key per client connection: the SDK builds a new ``ServerSession`` proxy per request."""
    return id(getattr(ctx.session, "_connection", ctx.session))


async def _check_run_uri(ctx: ServerRequestContext[AppState], uri: str) -> str | None:
    """The run id of a run URI the caller may read; refuses (as not found) one it may not."""
    run_id = run_of_uri(uri)
    if run_id is None:
        return None
    try:
        run = await ctx.lifespan_context.orch.get_run(run_id)
        if caller() is not None:
            visible(run.agent_id, "run", run_id)
    except NotFound as e:
        raise MCPError(INVALID_PARAMS, f"{e} (resource {uri})") from e
    except UsageError as e:
        raise MCPError(INVALID_PARAMS, str(e)) from e
    return run_id


def _redactor(state: AppState) -> Redactor:
    """The orchestrator's redactor; before a front end's orchestrator starts, one alike (both read the
    environment's secrets when they are made)."""
    return Redactor() if state.pending else state.orch.redactor


def register_protocol(server: MCPServer[AppState]) -> None:
    """Serve subscriptions, log levels and completions on ``server``."""
    low = server._lowlevel_server  # the SDK offers no public hook for these methods
    bus = server._subscriptions  # the bus ``ctx.notify_resource_updated`` publishes to

    async def publish(uri: str) -> None:
        await bus.publish(ResourceUpdated(uri=uri))

    watch = RunWatch(publish)
    bridge = LogBridge()
    inner: Lifespan = low.lifespan

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[AppState]:
        async with inner(app) as state, bridge.running(_redactor(state)), anyio.create_task_group() as tg:
            tg.start_soon(watch.run, lambda: state.orch)
            try:
                yield state
            finally:
                tg.cancel_scope.cancel()

    low.lifespan = lifespan

    async def subscribe(ctx: ServerRequestContext[AppState], params: SubscribeRequestParams) -> EmptyResult:
        uri = str(params.uri)
        run_id = await _check_run_uri(ctx, uri)
        if run_id is not None:
            await watch.prime(ctx.lifespan_context.orch, run_id)
        watch.subscribe(uri, _connection_key(ctx), ctx.session)
        return EmptyResult()

    async def unsubscribe(ctx: ServerRequestContext[AppState], params: UnsubscribeRequestParams) -> EmptyResult:
        watch.unsubscribe(str(params.uri), _connection_key(ctx))
        return EmptyResult()

    async def set_level(ctx: ServerRequestContext[AppState], params: SetLevelRequestParams) -> EmptyResult:
        if params.level not in LEVELS:
            raise MCPError(INVALID_PARAMS, f"unknown log level {params.level!r}; use one of {', '.join(LEVELS)}")
        bridge.set_level(_connection_key(ctx), ctx.session, params.level)
        return EmptyResult()

    low.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
    low.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
    low.add_request_handler("completion/complete", CompleteRequestParams, complete)

    listen = low.get_request_handler("subscriptions/listen")
    if listen is not None:
        serve_listen = listen.handler

        async def listen_runs(ctx: ServerRequestContext[AppState], params: SubscriptionsListenRequestParams) -> Any:
            uris = list(params.notifications.resource_subscriptions or ())
            for uri in uris:
                run_id = await _check_run_uri(ctx, uri)
                if run_id is not None:
                    await watch.prime(ctx.lifespan_context.orch, run_id)
            with watch.listening(uris):
                return await serve_listen(ctx, params)

        low.add_request_handler("subscriptions/listen", SubscriptionsListenRequestParams, listen_runs)
