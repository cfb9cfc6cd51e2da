"""Helpers for the auth tests: issued tokens, a server bound off loopback, clients with a bearer token, and a
small OAuth issuer (JWKS + metadata) on 127.0.0.1 with keys the test makes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent
from support.servers import ServerProcess

from mcp_orchestrator.server.auth.tokens import TokenStore

__all__ = ["HEADERS", "INIT", "Issuer", "Tokens", "authed_client", "issue_tokens", "serving", "text_of"]

CALL_TIMEOUT = 30.0
# A raw handshake-era initialize, for requests a client library would not let a test shape.
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@dataclass
class Tokens:
    """Token values by name, and the file that holds their hashes."""

    path: Path
    values: dict[str, str]
    ids: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.values[name]


def issue_tokens(home: Path) -> Tokens:
    """alice and bob (read+write as themselves), reader (read only, as alice), op (operator, no agent)."""
    store = TokenStore(home / "tokens.json")
    values: dict[str, str] = {}
    ids: dict[str, str] = {}
    plan: dict[str, tuple[list[str], list[Any]]] = {
        "alice": (["alice"], ["runs:read", "runs:write"]),
        "bob": (["bob"], ["runs:read", "runs:write"]),
        "reader": (["alice"], ["runs:read"]),
        "op": ([], ["operator"]),
    }
    for name, (agents, scopes) in plan.items():
        value, entry = store.add(agents, scopes, label=name)
        values[name], ids[name] = value, entry.id
    return Tokens(store.path, values, ids)


@asynccontextmanager
async def serving(
    env: dict[str, str], log: Path, *args: str, transport: str = "streamable-http", host: str = "0.0.0.0"
) -> AsyncIterator[ServerProcess]:
    """``serve`` bound to ``host`` (default: every interface, so off loopback) with ``args``; yields once it answers."""
    server = ServerProcess(env, log, transport=transport, host=host, extra=args)
    try:
        await server.ready()
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def authed_client(url: str, token: str | None, transport: str = "streamable-http") -> AsyncIterator[Client]:
    """An SDK ``Client`` that sends ``Authorization: Bearer <token>``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if transport == "sse":
        async with Client(sse_client(url, headers=headers), read_timeout_seconds=CALL_TIMEOUT) as client:
            yield client
        return
    async with (
        httpx2.AsyncClient(headers=headers, timeout=CALL_TIMEOUT) as http,
        Client(streamable_http_client(url, http_client=http), read_timeout_seconds=CALL_TIMEOUT) as client,
    ):
        yield client


def text_of(result: CallToolResult) -> str:
    """The text blocks of a tool result, joined."""
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


@dataclass
class _Key:
    kid: str
    private: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "alg": "RS256", "use": "sig"}


@dataclass
class Issuer:
    """An OAuth issuer on 127.0.0.1: RFC 8414 metadata, a JWKS, and tokens signed with its keys."""

    published: list[_Key] = field(default_factory=list)
    jwks_fetches: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        """The issuer identifier."""
        return f"http://127.0.0.1:{self.port}"

    def new_key(self, kid: str, *, publish: bool = True) -> _Key:
        """A fresh RSA key; published in the JWKS unless told otherwise."""
        key = _Key(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        if publish:
            self.published.append(key)
        return key

    def token(self, key: _Key, audience: str, *, kid: str | None = None, ttl: float = 300, **claims: Any) -> str:
        """A signed JWT (``kid`` overrides the header's key id, to forge a bad signature)."""
        now = int(time.time())
        body = {"iss": self.url, "aud": audience, "iat": now, "exp": now + int(ttl), "sub": "svc", **claims}
        return jwt.encode(body, key.private, algorithm="RS256", headers={"kid": kid or key.kid})


@contextmanager
def running_issuer() -> Iterator[Issuer]:
    """Serve an ``Issuer`` in a thread until the block ends."""
    issuer = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/.well-known/oauth-authorization-server":
                body: Any = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks.json"}
            elif self.path == "/jwks.json":
                issuer.jwks_fetches += 1
                body = {"keys": [k.jwk() for k in issuer.published]}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        httpd.shutdown()
        httpd.server_close()
