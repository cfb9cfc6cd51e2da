"""OAuth 2.1 resource server: JWT access tokens checked against the issuer's JWKS.

The JWKS address comes from ``--auth-jwks-url`` or from the issuer's metadata
(``/.well-known/oauth-authorization-server``, then ``/.well-known/openid-configuration``). Keys are
cached; a token whose ``kid`` is not in the cache makes one refetch. Refetches are at least
``REFETCH_INTERVAL`` apart (a later one waits its turn), and a kid still missing after one is not
looked for again for ``MISSING_TTL`` seconds, so a flood of junk kids cannot hammer the issuer. Only asymmetric
algorithms are accepted; ``iss``, ``aud`` and ``exp`` are required and checked.

The agentIds a token may act as come from a claim (``agent_ids`` by default: a list or a
space-separated string), else from ``sub`` when it is a valid agentId. Scopes come from ``scope``
(space-separated) or ``scp``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import jwt
from mcp.server.auth.provider import AccessToken

from mcp_orchestrator.errors import InvalidArgument
from mcp_orchestrator.guards import check_agent_id

__all__ = ["JwtSettings", "JwtVerifier"]

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
REFETCH_INTERVAL = 1.0
MISSING_TTL = 30.0
FETCH_TIMEOUT = 5.0


@dataclass(frozen=True)
class JwtSettings:
    """Where tokens come from and whom they must be for."""

    issuer: str
    audience: str
    jwks_url: str | None = None
    agents_claim: str = "agent_ids"
    leeway_seconds: float = 30.0


class JwtVerifier:
    """A ``TokenVerifier`` for JWT access tokens of one issuer and audience."""

    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._keys: dict[str, jwt.PyJWK] = {}
        self._jwks_url = settings.jwks_url
        self._last_fetch: float | None = None
        self._missing: dict[str, float] = {}
        self._lock = anyio.Lock()

    async def _get(self, client: httpx2.AsyncClient, url: str) -> Any:
        response = await client.get(url)
        response.raise_for_status()
        return response.json()

    async def _discover(self, client: httpx2.AsyncClient) -> str:
        base = self.settings.issuer.rstrip("/")
        for suffix in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
            try:
                meta = await self._get(client, base + suffix)
            except (httpx2.HTTPError, ValueError):
                continue
            if isinstance(meta, dict) and isinstance(meta.get("jwks_uri"), str):
                return str(meta["jwks_uri"])
        raise LookupError(f"the issuer {base} publishes no jwks_uri; give --auth-jwks-url")

    async def refresh(self) -> None:
        """Fetch the issuer's keys now (raises when the issuer cannot be reached)."""
        async with httpx2.AsyncClient(timeout=FETCH_TIMEOUT) as client:
            if self._jwks_url is None:
                self._jwks_url = await self._discover(client)
            data = await self._get(client, self._jwks_url)
        keys: dict[str, jwt.PyJWK] = {}
        for raw in data.get("keys", []) if isinstance(data, dict) else []:
            try:
                key = jwt.PyJWK(raw)
            except jwt.PyJWTError as e:
                log.warning("JWKS: skipping a key the verifier cannot use: %s", e)
                continue
            keys[str(raw.get("kid", ""))] = key
        self._keys = keys

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        if kid in self._keys:
            return self._keys[kid]
        if time.monotonic() - self._missing.get(kid, -MISSING_TTL) < MISSING_TTL:
            return None
        async with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            if self._last_fetch is not None:
                await anyio.sleep(max(0.0, self._last_fetch + REFETCH_INTERVAL - time.monotonic()))
            self._last_fetch = time.monotonic()
            try:
                await self.refresh()
            except (httpx2.HTTPError, ValueError, LookupError) as e:
                log.warning("JWKS: cannot fetch the issuer's keys: %s", e)
            if kid not in self._keys:
                if len(self._missing) > 1000:  # junk kids: forget the old ones rather than grow
                    self._missing.clear()
                self._missing[kid] = time.monotonic()
        return self._keys.get(kid)

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's access info when it is a valid JWT for this audience, else ``None`` (a 401)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        key = await self._key(str(header.get("kid", "")))
        if key is None:
            return None
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as e:
            log.info("JWT refused: %s", e)
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or "jwt"),
            scopes=_scopes(claims),
            expires_at=int(claims["exp"]),
            resource=self.settings.audience,
            subject=str(claims.get("sub")) if claims.get("sub") is not None else None,
            claims={"agents": self._agents(claims), "iss": claims.get("iss")},
        )

    def _agents(self, claims: dict[str, Any]) -> list[str]:
        raw = claims.get(self.settings.agents_claim)
        if isinstance(raw, str):
            raw = raw.split()
        if raw is None and isinstance(claims.get("sub"), str):
            raw = [claims["sub"]]
        out = []
        for agent in raw if isinstance(raw, list) else []:
            try:
                out.append(check_agent_id(agent))
            except InvalidArgument:
                continue
        return out


def _scopes(claims: dict[str, Any]) -> list[str]:
    raw = claims.get("scope", claims.get("scp", []))
    if isinstance(raw, str):
        raw = raw.split()
    return [s for s in raw if isinstance(s, str)] if isinstance(raw, list) else []
