"""Collaboration strategies, by name.

``get_strategy(name)`` gives a fresh strategy; ``audit_summary(run)`` renders what a run did as
Markdown; ``apply_workspace`` applies an isolated writer's recorded change to a workdir. The strategies
drive a ``base.StrategyContext`` and cannot tell which engine runs them (git operations go through
``remote``). Below the service: may import ``runtimes``, ``contracts`` and ``errors``.
"""

from __future__ import annotations

from typing import get_args

from mcp_orchestrator.contracts import StrategyName
from mcp_orchestrator.errors import InvalidArgument
from mcp_orchestrator.strategies.audit import audit_summary
from mcp_orchestrator.strategies.base import (
    Strategy,
    StrategyContext,
    StrategyOptions,
    StrategyResult,
    run_options,
)
from mcp_orchestrator.strategies.handoff import CodexWritesGeminiReviews, GeminiWritesCodexReviews, SecurityRedteamPass
from mcp_orchestrator.strategies.parallel import ParallelDualWriteReview
from mcp_orchestrator.strategies.playbooks import ParallelGenerateAdjudicate, ReviewerFirstPlan
from mcp_orchestrator.strategies.single import SingleWorker
from mcp_orchestrator.strategies.verdicts import parse_verdict
from mcp_orchestrator.strategies.workspace import ApplyError, apply_workspace, discard_run_worktrees

__all__ = [
    "ApplyError",
    "Strategy",
    "StrategyContext",
    "StrategyOptions",
    "StrategyResult",
    "apply_workspace",
    "audit_summary",
    "discard_run_worktrees",
    "get_strategy",
    "parse_verdict",
    "run_options",
]

_STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        SingleWorker,
        CodexWritesGeminiReviews,
        GeminiWritesCodexReviews,
        ParallelDualWriteReview,
        SecurityRedteamPass,
        ReviewerFirstPlan,
        ParallelGenerateAdjudicate,
    )
}


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``; ``InvalidArgument`` listing the valid names otherwise."""
    cls = _STRATEGIES.get(name)
    if cls is None:
        valid = ", ".join(n for n in get_args(StrategyName) if n in _STRATEGIES)
        raise InvalidArgument("strategy", f"unknown strategy {name!r}", hint=f"Use one of: {valid}.")
    return cls()
