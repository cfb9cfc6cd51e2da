"""The orchestrator service layer. ``Orchestrator`` (``orchestrator``: the process's lifetime) is built from
one class per idea: ``core`` (what a run's execution uses), ``panic_guard`` (the write guard),
``workers`` (the registry), ``run_reads`` (get, wait, list, cancel) and ``lifecycle`` (accept, queue,
execute, resume). How a run executes: ``execution`` over ``attempts`` over ``steps`` (they see the
orchestrator only through ``host.RunHost``); ``hedging``, ``retry``, ``policy``, ``recovery``; replaying a run again
(``rerun``), and the executor process that runs them for front ends (``executor``, ``daemon``).
It imports strategies, the engine, runtimes, the store, ``gateway`` and ``observability``, never the MCP
surface; ``tests/unit/test_import_graph.py`` holds the package to no cycles."""

from __future__ import annotations

import typing

from mcp_orchestrator.config import Settings
from mcp_orchestrator.lazy import lazy_exports as _lazy

if typing.TYPE_CHECKING:
    from mcp_orchestrator.service.executor import ExecutorLink
    from mcp_orchestrator.service.orchestrator import Orchestrator

__all__ = ["Orchestrator", "front_end_orchestrator"]


def front_end_orchestrator(settings: Settings, link: ExecutorLink | None = None) -> Orchestrator:
    """An orchestrator that hands its runs to the data directory's executor (``serve``'s default), through
    ``link`` when one was made already (``serve`` starts the executor before it starts the orchestrator)."""
    from mcp_orchestrator.service.executor import ExecutorLink
    from mcp_orchestrator.service.orchestrator import Orchestrator

    return Orchestrator(settings, executor=link or ExecutorLink(settings))


# The orchestrator imports the whole service; ``executor`` alone is what ``serve`` needs at start (issue 15).
_MODULES = ("orchestrator",)

if not typing.TYPE_CHECKING:  # mypy sees the imports above, and no catch-all attribute
    __getattr__, __dir__ = _lazy(__name__, globals(), __all__, _MODULES)
