"""The caller's identity inside a tool call: who may act as which agent, and read what.

With auth off (stdio, loopback HTTP without credentials) there is no principal and every check
passes, as before. With auth on, the SDK's bearer middleware has verified the token and put it in
the request context; these helpers turn it into refusals a model can act on.
"""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token

from mcp_orchestrator.errors import Forbidden, NotFound
from mcp_orchestrator.server.auth.principal import Principal, Scope, principal_of

__all__ = ["act_as", "caller", "readable_agent", "require", "visible"]


def caller() -> Principal | None:
    """The verified principal of this request, or ``None`` when auth is off."""
    token = get_access_token()
    return principal_of(token) if token is not None else None


def require(scope: Scope) -> Principal | None:
    """The principal, refused unless its credential grants ``scope``."""
    who = caller()
    if who is not None and not who.can(scope):
        raise Forbidden(
            f"forbidden: this credential lacks the {scope} scope.",
            hint=f"Ask an operator for a token with it (`mcp-orchestrator token add --scope {scope}`).",
        )
    return who


def act_as(agent_id: str) -> Principal | None:
    """Refuse unless the credential may write as ``agent_id``; returns the principal."""
    who = require("runs:write")
    if who is not None and agent_id not in who.agents:
        allowed = ", ".join(sorted(who.agents)) or "none"
        raise Forbidden(
            f"forbidden: this credential may not act as agent {agent_id!r}.",
            hint=f"Use one of the agentIds it allows: {allowed}.",
        )
    return who


def visible(owner_agent: str, kind: str, key: str) -> None:
    """Refuse (as not found: others' ids are not confirmed) what the caller may not read."""
    who = require("runs:read")
    if who is not None and not who.sees(owner_agent):
        raise NotFound(kind, key, hint="This credential sees only its own agents' runs and workers.")


def readable_agent(agent_id: str | None) -> str | None:
    """The agentId a listing must be limited to: the caller's own unless it is an operator."""
    who = require("runs:read")
    if who is None or who.operator:
        return agent_id
    if agent_id is not None:
        if agent_id not in who.agents:
            raise Forbidden(
                f"forbidden: this credential may not read agent {agent_id!r}.",
                hint=f"Use one of its agentIds: {', '.join(sorted(who.agents)) or 'none'}.",
            )
        return agent_id
    if len(who.agents) == 1:
        return next(iter(who.agents))
    raise Forbidden(
        "forbidden: this credential acts as several agents; say which to list.",
        hint=f"Pass agentId, one of: {', '.join(sorted(who.agents)) or 'none'}.",
    )
