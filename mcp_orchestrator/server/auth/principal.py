"""Who is calling: the principal behind a verified credential, and what it may do.

Scopes: ``runs:read`` (read your own workers and runs), ``runs:write`` (also spawn, dispatch,
cancel, stop and engage panic as your agents; implies read), ``operator`` (read everything, and
the operator-only tools ``diag`` and ``optimize``). A principal acts only as the agentIds its
credential lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from mcp.server.auth.provider import AccessToken

__all__ = ["SCOPES", "Principal", "Scope", "principal_of"]

Scope = Literal["runs:read", "runs:write", "operator"]
SCOPES: tuple[str, ...] = get_args(Scope)


@dataclass(frozen=True)
class Principal:
    """A verified caller: an id for logs and limits (never the token), its agentIds and scopes."""

    id: str
    agents: frozenset[str]
    scopes: frozenset[str]

    @property
    def operator(self) -> bool:
        """Whether this credential reads everything."""
        return "operator" in self.scopes

    def can(self, scope: Scope) -> bool:
        """Whether the credential grants ``scope`` (write implies read; operator implies read)."""
        if scope in self.scopes:
            return True
        return scope == "runs:read" and bool({"runs:write", "operator"} & self.scopes)

    def sees(self, agent_id: str) -> bool:
        """Whether this principal may read what ``agent_id`` owns."""
        return self.operator or agent_id in self.agents


def principal_of(token: AccessToken) -> Principal:
    """The principal of a verified token (static or JWT; both verifiers put the agentIds in ``claims``)."""
    claims = token.claims or {}
    agents = claims.get("agents") or []
    return Principal(
        id=token.client_id,
        agents=frozenset(a for a in agents if isinstance(a, str)),
        scopes=frozenset(token.scopes),
    )
