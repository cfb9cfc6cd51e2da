"""Per-process application state reached from every request."""

from __future__ import annotations

from dataclasses import dataclass

from mcp_orchestrator.server.auth.limits import DispatchLimiter
from mcp_orchestrator.service import Orchestrator

__all__ = ["AppState"]


@dataclass
class AppState:
    """What the lifespan yields: the orchestrator service, and the per-principal dispatch limiter (auth on)."""

    orch: Orchestrator
    limiter: DispatchLimiter | None = None
