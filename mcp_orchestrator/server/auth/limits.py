"""Per-principal limits: a dispatch rate (token bucket) and a cap on concurrent sessions.

The session cap counts a principal's open SSE streams and its Streamable HTTP sessions (the
handshake era: an ``initialize`` without a session id opens one; ``DELETE`` or the SDK's idle
timeout ends it). Stateless (2026-07-28) requests open no session and are not counted. A refused
session gets 429 with ``Retry-After``; nothing already accepted is touched.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_orchestrator.errors import RateLimited

__all__ = ["DispatchLimiter", "SessionCap"]

PEEK_LIMIT = 64 * 1024


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class DispatchLimiter:
    """At most ``count`` dispatches per ``seconds`` per principal, with bursts up to ``count``."""

    count: int
    seconds: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, principal: str) -> None:
        """Spend one dispatch of ``principal``'s allowance, or raise ``RateLimited`` with the wait."""
        now = self.clock()
        rate = self.count / self.seconds
        bucket = self._buckets.setdefault(principal, _Bucket(float(self.count), now))
        bucket.tokens = min(float(self.count), bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens < 1:
            wait = math.ceil((1 - bucket.tokens) / rate)
            raise RateLimited(f"{self.count} dispatches per {self.seconds:g} s", max(1, wait))
        bucket.tokens -= 1


def _principal(scope: Scope) -> str | None:
    user = scope.get("user")
    return user.access_token.client_id if isinstance(user, AuthenticatedUser) else None


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope.get("headers", []) if k.lower() == name), None)


class SessionCap:
    """ASGI middleware (inside the SDK's authentication) refusing a principal's session over the cap."""

    def __init__(self, app: ASGIApp, limit: int, live_sessions: Callable[[], set[str]]) -> None:
        self.app = app
        self.limit = limit
        self.live_sessions = live_sessions  # the transport's open session ids (they may end on their own)
        self._streams: dict[str, int] = {}
        self._sessions: dict[str, set[str]] = {}

    def _count(self, who: str) -> int:
        live = self.live_sessions()
        mine = self._sessions.get(who, set()) & live
        self._sessions[who] = mine
        return len(mine) + self._streams.get(who, 0)

    async def _refuse(self, send: Send, who: str) -> None:
        body = json.dumps(
            {
                "error": "too_many_sessions",
                "error_description": f"this credential already has {self.limit} open sessions; close one "
                "(or let it idle out) and retry",
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"5")]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        who = _principal(scope) if scope["type"] == "http" else None
        if who is None:
            await self.app(scope, receive, send)
            return
        method = scope.get("method")
        if method == "GET" and scope.get("path", "").rstrip("/").endswith("/sse"):
            if self._count(who) >= self.limit:
                await self._refuse(send, who)
                return
            self._streams[who] = self._streams.get(who, 0) + 1
            try:
                await self.app(scope, receive, send)
            finally:
                self._streams[who] -= 1
            return
        if method == "POST" and _header(scope, b"mcp-session-id") is None:
            receive, opening = await _peek_initialize(receive)
            if opening:
                if self._count(who) >= self.limit:
                    await self._refuse(send, who)
                    return
                send = self._recording(send, who)
        await self.app(scope, receive, send)

    def _recording(self, send: Send, who: str) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                sid = next((v for k, v in message.get("headers", []) if k.lower() == b"mcp-session-id"), None)
                if sid is not None:
                    self._sessions.setdefault(who, set()).add(sid.decode("latin-1"))
            await send(message)

        return wrapped


async def _peek_initialize(receive: Receive) -> tuple[Receive, bool]:
    """Read the start of the body to see whether it opens a session; the app still reads all of it."""
    buffered: list[Message] = []
    size = 0
    while size < PEEK_LIMIT:
        message = await receive()
        buffered.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    head = b"".join(m.get("body", b"") for m in buffered if m["type"] == "http.request")
    opening = False
    if b'"initialize"' in head:  # parse only what may be an initialize (most requests are not)
        try:
            parsed = json.loads(head)
            opening = isinstance(parsed, dict) and parsed.get("method") == "initialize"
        except ValueError:
            opening = True  # a cut or odd body naming initialize: count it, the SDK will judge the rest

    async def replay() -> Message:
        if buffered:
            return buffered.pop(0)
        return await receive()

    return replay, opening
