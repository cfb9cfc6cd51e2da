"""Static bearer tokens: a tokens file of hashes, and the verifier the SDK's bearer middleware calls.

The file (``MCP_ORCHESTRATOR_TOKENS``, default ``<home>/tokens.json``) holds, per token, a SHA-256
hash of it (never the token), the agentIds it may act as and its scopes. Tokens are 256-bit random
strings, so an unsalted fast hash is enough: nobody can guess a preimage. Lookups compare every
hash in constant time. The verifier re-reads the file when its mtime or size changes, so a
revocation takes effect on the next request, without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from datetime import datetime
from pathlib import Path

from mcp.server.auth.provider import AccessToken
from pydantic import Field, ValidationError

from mcp_orchestrator.contracts import Contract, utcnow
from mcp_orchestrator.errors import InvalidArgument, NotFound, StoreError
from mcp_orchestrator.guards import check_agent_id
from mcp_orchestrator.server.auth.principal import SCOPES, Scope
from mcp_orchestrator.store._files import atomic_write, doc_lock

__all__ = ["TOKEN_PREFIX", "StaticTokenVerifier", "TokenEntry", "TokenFile", "TokenStore", "hash_token"]

TOKEN_PREFIX = "mcpo_"


class TokenEntry(Contract):
    """One issued token: its id, the hash of its value, who it is and what it may do."""

    id: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    agents: list[str]
    scopes: list[Scope]
    label: str = ""
    created_at: datetime
    revoked_at: datetime | None = None


class TokenFile(Contract):
    """The tokens file (``store/tokens.schema.json``)."""

    schema_version: int = 1
    tokens: list[TokenEntry] = Field(default_factory=list)


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Reads and changes the tokens file; every change is atomic and under the file's lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> TokenFile:
        """The file's content (an absent file holds no tokens)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return TokenFile()
        except OSError as e:
            raise StoreError(f"cannot read the tokens file {self.path}: {e}") from e
        try:
            return TokenFile.model_validate_json(raw)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "-"
            raise StoreError(f"the tokens file {self.path} is invalid at {where}: {first['msg']}") from e

    def _save(self, doc: TokenFile) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, (doc.model_dump_json(indent=1) + "\n").encode())
        os.chmod(self.path, 0o600)

    def add(self, agents: list[str], scopes: list[Scope], label: str = "") -> tuple[str, TokenEntry]:
        """Issue a token; returns its value (shown once, never stored) and its entry."""
        if not agents and "operator" not in scopes:
            raise InvalidArgument("agent", "a token needs at least one agentId", hint="Pass --agent NAME.")
        for agent in agents:
            check_agent_id(agent)
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise InvalidArgument("scope", f"{bad or 'none given'}", hint=f"Use some of: {', '.join(SCOPES)}.")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        entry = TokenEntry(
            id="tok_" + secrets.token_hex(4),
            sha256=hash_token(token),
            agents=sorted(set(agents)),
            scopes=sorted(set(scopes)),
            label=label,
            created_at=utcnow(),
        )
        with doc_lock(self.path):
            doc = self.load()
            doc.tokens.append(entry)
            self._save(doc)
        return token, entry

    def revoke(self, token_id: str) -> TokenEntry:
        """Mark a token revoked (kept in the file for the record); ``NotFound`` if no such id."""
        with doc_lock(self.path):
            doc = self.load()
            for i, entry in enumerate(doc.tokens):
                if entry.id == token_id:
                    if entry.revoked_at is None:
                        doc.tokens[i] = entry.model_copy(update={"revoked_at": utcnow()})
                        self._save(doc)
                    return doc.tokens[i]
        raise NotFound("token", token_id, hint="`mcp-orchestrator token list` shows the ids.")


class StaticTokenVerifier:
    """A ``TokenVerifier`` over the tokens file, re-read whenever it changes on disk."""

    def __init__(self, store: TokenStore) -> None:
        self.store = store
        self._stamp: tuple[int, int] | None = None
        self._entries: list[TokenEntry] = []

    def _current(self) -> list[TokenEntry]:
        try:
            st = os.stat(self.store.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            try:
                self._entries = [t for t in self.store.load().tokens if t.revoked_at is None]
            except StoreError:
                self._entries = []  # an unreadable file admits nobody (fail closed)
            self._stamp = stamp
        return self._entries

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's access info when it hashes to an active entry, else ``None`` (a 401)."""
        digest = hash_token(token)
        match: TokenEntry | None = None
        for entry in self._current():  # compare against every entry: the time does not depend on which matched
            if hmac.compare_digest(entry.sha256, digest):
                match = entry
        if match is None:
            return None
        return AccessToken(
            token=token,
            client_id=match.id,
            scopes=list(match.scopes),
            subject=match.id,
            claims={"agents": list(match.agents), "label": match.label},
        )


def describe(entry: TokenEntry) -> dict[str, object]:
    """A token entry for ``token list`` (the hash is left out: it identifies nothing a reader needs)."""
    data: dict[str, object] = json.loads(entry.model_dump_json(exclude={"sha256"}))
    data["status"] = "revoked" if entry.revoked_at else "active"
    return data
