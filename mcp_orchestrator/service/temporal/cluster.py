"""The cluster as ``diag`` sees it: the deployment's task queues on Temporal, read for one diagnosis.

A running server asks its own engine (``Orchestrator.cluster_overview``); the ``diag`` command, which runs no
service, connects for the one read here. An unreachable cluster is an answer too: the view then carries the
error, and the diagnosis says what failed, where, and how to fix it.
"""

from __future__ import annotations

from typing import Any

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import WorkerRecord
from mcp_orchestrator.errors import OrchestratorError

__all__ = ["backends_of", "read_cluster"]


def backends_of(workers: list[WorkerRecord]) -> list[tuple[str, str, str | None]]:
    """The (model, runtime, machine) backends of the workers that can still take work (machine ``None``: the
    shared queue of an unpinned worker)."""
    found = {(w.model, w.runtime_mode, w.machine) for w in workers if w.status != "stopped"}
    return sorted(found, key=lambda b: (b[0], b[1], b[2] or ""))


async def read_cluster(settings: Settings, workers: list[WorkerRecord]) -> dict[str, Any]:
    """Connect to ``settings``' cluster and describe its queues for ``workers``' backends."""
    from mcp_orchestrator.engine.temporal.engine import TemporalEngine

    cfg = settings.temporal
    try:
        async with TemporalEngine(cfg) as engine:
            return await engine.cluster_view(backends_of(workers))
    except (OrchestratorError, RuntimeError, OSError) as e:
        reason = getattr(e, "message", None) or str(e)  # the connect hint is the server's; diag says its own
        return {"address": cfg.address, "namespace": cfg.namespace, "queues": {}, "error": reason}
