"""Collaboration strategies, by name."""

from __future__ import annotations

from typing import get_args

from mcp_orchestrator.contracts import StrategyName
from mcp_orchestrator.errors import InvalidArgument
from mcp_orchestrator.strategies.base import Strategy, StrategyContext
from mcp_orchestrator.strategies.single import SingleWorker

__all__ = ["Strategy", "StrategyContext", "get_strategy"]

_STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (SingleWorker,)}


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; ``InvalidArgument`` listing the valid names otherwise."""
    cls = _STRATEGIES.get(name)
    if cls is None:
        valid = ", ".join(n for n in get_args(StrategyName) if n in _STRATEGIES)
        raise InvalidArgument("strategy", f"unknown strategy {name!r}", hint=f"Use one of: {valid}.")
    return cls()
