"""How an HTTP server is exposed: bind address, credentials, Host/Origin allowlists, limits.

Off loopback nothing is served without a credential: ``check`` refuses to start and names the
settings to give. On loopback auth is off unless the same settings turn it on.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, TransportSecuritySettings

from mcp_orchestrator.errors import OrchestratorError
from mcp_orchestrator.server.auth.jwt import JwtSettings, JwtVerifier
from mcp_orchestrator.server.auth.principal import SCOPES
from mcp_orchestrator.server.auth.tokens import TOKEN_PREFIX, StaticTokenVerifier, TokenStore

__all__ = ["Exposure", "ExposureRefused", "default_tokens_path", "is_loopback"]

LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")


class ExposureRefused(OrchestratorError):
    """The server would be reachable off loopback without a credential (or is misconfigured)."""


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_tokens_path(home: Path, environ: Mapping[str, str] | None = None) -> Path:
    """``MCP_ORCHESTRATOR_TOKENS``, else ``<home>/tokens.json``."""
    env = os.environ if environ is None else environ
    raw = env.get("MCP_ORCHESTRATOR_TOKENS")
    return Path(raw).expanduser() if raw else home / "tokens.json"


def _rate(raw: str) -> tuple[int, float]:
    count, _, seconds = raw.partition("/")
    try:
        value = (int(count), float(seconds or 60))
    except ValueError:
        raise ExposureRefused(f"dispatch rate {raw!r} is not COUNT/SECONDS (e.g. 60/60)") from None
    if value[0] < 1 or value[1] <= 0:
        raise ExposureRefused(f"dispatch rate {raw!r} must allow at least 1 dispatch in a positive window")
    return value


@dataclass(frozen=True)
class Exposure:
    """Everything about serving over HTTP that is not the orchestrator itself."""

    transport: str
    host: str
    port: int
    tokens: Path | None = None
    jwt: JwtSettings | None = None
    public_url: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_REQUEST_BODY_SIZE
    max_sessions: int = 16
    dispatch_rate: tuple[int, float] = (60, 60.0)

    @property
    def path(self) -> str:
        """The MCP endpoint's path."""
        return "/sse" if self.transport == "sse" else "/mcp"

    @property
    def auth_enabled(self) -> bool:
        """Whether requests need a credential."""
        return self.tokens is not None or self.jwt is not None

    @property
    def resource_url(self) -> str:
        """This server's URL as clients reach it (the OAuth resource identifier)."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    def check(self) -> None:
        """Refuse a configuration that would expose the server without a credential."""
        if not is_loopback(self.host) and not self.auth_enabled:
            raise ExposureRefused(
                f"refusing to serve on {self.host}: off loopback every request needs a credential. Give "
                "MCP_ORCHESTRATOR_TOKENS / --tokens FILE (create tokens with `mcp-orchestrator token add`), or "
                "--auth-issuer URL with --auth-audience (OAuth 2.1 JWTs); or bind --host 127.0.0.1."
            )

    def transport_security(self) -> TransportSecuritySettings:
        """The SDK's Host/Origin guard: the bind address and localhost, plus what was allowed explicitly."""
        names = [*LOCAL_NAMES]
        if self.host not in ("0.0.0.0", "::", *LOCAL_NAMES):
            names.append(f"[{self.host}]" if ":" in self.host else self.host)
        hosts = [*(f"{n}:*" for n in names), *names, *self.allowed_hosts]
        origins = [*(f"http://{n}:*" for n in names), *self.allowed_origins]
        return TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins)

    def auth_settings(self) -> AuthSettings | None:
        """The SDK's auth settings (resource server only), or ``None`` when auth is off."""
        if not self.auth_enabled:
            return None
        issuer = self.jwt.issuer if self.jwt else self.resource_url
        return AuthSettings(
            issuer_url=issuer,
            resource_server_url=self.resource_url,
            required_scopes=None,  # scopes are checked per tool: reads need runs:read, writes runs:write
            validate_token_resource=False,  # the JWT verifier checks the audience itself
        )

    def verifier(self) -> CombinedVerifier | None:
        """The token verifier, or ``None`` when auth is off."""
        if not self.auth_enabled:
            return None
        static = StaticTokenVerifier(TokenStore(self.tokens)) if self.tokens else None
        oauth = JwtVerifier(self.jwt) if self.jwt else None
        return CombinedVerifier(static, oauth)

    @classmethod
    def from_options(
        cls,
        *,
        transport: str,
        host: str,
        port: int,
        home: Path,
        tokens: str | None = None,
        no_auth: bool = False,
        issuer: str | None = None,
        audience: str | None = None,
        jwks_url: str | None = None,
        agents_claim: str | None = None,
        public_url: str | None = None,
        allowed_hosts: Sequence[str] = (),
        allowed_origins: Sequence[str] = (),
        max_body_bytes: int | None = None,
        max_sessions: int | None = None,
        dispatch_rate: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Exposure:
        """Command-line options over ``MCP_ORCHESTRATOR_*`` variables (see the README's "Exposing the server")."""
        env = os.environ if environ is None else environ

        def listed(name: str, given: Sequence[str]) -> tuple[str, ...]:
            return (*given, *(v.strip() for v in env.get(name, "").split(",") if v.strip()))

        issuer = issuer or env.get("MCP_ORCHESTRATOR_AUTH_ISSUER") or None
        if no_auth and not is_loopback(host):
            raise ExposureRefused(f"--no-auth is only allowed on loopback, not on {host}")
        token_path: Path | None = None
        if not no_auth:
            token_path = Path(tokens).expanduser() if tokens else default_tokens_path(home, env)
            explicit = bool(tokens or env.get("MCP_ORCHESTRATOR_TOKENS"))
            if not explicit and not TokenStore(token_path).load().tokens:
                token_path = None  # no tokens issued: token auth stays off (on loopback) until `token add`
        base = cls(transport=transport, host=host, port=port, public_url=public_url)
        jwt_settings = None
        if issuer and not no_auth:
            jwt_settings = JwtSettings(
                issuer=issuer,
                audience=audience or env.get("MCP_ORCHESTRATOR_AUTH_AUDIENCE") or base.resource_url,
                jwks_url=jwks_url or env.get("MCP_ORCHESTRATOR_AUTH_JWKS_URL") or None,
                agents_claim=agents_claim or env.get("MCP_ORCHESTRATOR_AUTH_AGENTS_CLAIM") or "agent_ids",
            )
        sessions = max_sessions or int(env.get("MCP_ORCHESTRATOR_MAX_SESSIONS") or 16)
        body = max_body_bytes or int(env.get("MCP_ORCHESTRATOR_MAX_BODY_BYTES") or DEFAULT_MAX_REQUEST_BODY_SIZE)
        return cls(
            transport=transport,
            host=host,
            port=port,
            tokens=token_path,
            jwt=jwt_settings,
            public_url=public_url or env.get("MCP_ORCHESTRATOR_PUBLIC_URL") or None,
            allowed_hosts=listed("MCP_ORCHESTRATOR_ALLOWED_HOSTS", allowed_hosts),
            allowed_origins=listed("MCP_ORCHESTRATOR_ALLOWED_ORIGINS", allowed_origins),
            max_body_bytes=body,
            max_sessions=sessions,
            dispatch_rate=_rate(dispatch_rate or env.get("MCP_ORCHESTRATOR_DISPATCH_RATE") or "60/60"),
        )


class CombinedVerifier:
    """Static tokens (``mcpo_...``) from the tokens file, anything else as a JWT of the issuer."""

    def __init__(self, static: StaticTokenVerifier | None, oauth: JwtVerifier | None) -> None:
        self.static = static
        self.oauth = oauth

    async def verify_token(self, token: str) -> AccessToken | None:
        """Access info for a valid token, else ``None`` (the middleware answers 401)."""
        if token.startswith(TOKEN_PREFIX):
            return await self.static.verify_token(token) if self.static else None
        if self.oauth is None:
            return None
        access = await self.oauth.verify_token(token)
        if access is not None:
            access.scopes = [s for s in access.scopes if s in SCOPES]
        return access
