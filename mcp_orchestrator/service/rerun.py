"""``replay rerun``: dispatch a replay package's request again, as its agent, on workers with the same
profiles (the package itself is written and read by ``observability.replay``)."""

from __future__ import annotations

import secrets

from mcp_orchestrator.contracts import RunRecord, RuntimeMode
from mcp_orchestrator.errors import NotFound
from mcp_orchestrator.observability.models import WorkerProfile
from mcp_orchestrator.observability.replay import load, mark_rerun, profile_of
from mcp_orchestrator.service.orchestrator import Orchestrator

__all__ = ["rerun"]


async def _worker_for(orch: Orchestrator, agent: str, profile: WorkerProfile) -> str:
    """The original worker when it still matches its profile, else a new worker with that profile."""
    try:
        current = await orch.io(orch.store.get_worker, profile.name)
        if current.status != "stopped" and current.owner_agent_id == agent and profile_of(current) == profile:
            return current.name
    except NotFound:
        pass
    name = f"{profile.name[:50]}-r{secrets.token_hex(3)}"
    await orch.spawn_worker(
        agent,
        name,
        profile.model,
        runtime_mode=profile.runtime_mode,
        fallback_policy=profile.fallback_policy,
        workdir=profile.workdir,
        role=profile.role,
        timeout_seconds=profile.timeout_seconds,
        stall_seconds=profile.stall_seconds,
        model_name=profile.model_name,
        machine=profile.machine,
    )
    return name


async def rerun(orch: Orchestrator, run_id: str) -> RunRecord:
    """Dispatch the request of ``run_id``'s package again, as its agent, on workers with the same profiles.

    The task is the stored (redacted) one: a secret in the original task is not replayed.
    """
    package = await orch.io(load, orch.settings.home, run_id)
    req = package.request
    names = [await _worker_for(orch, req.agent_id, p) for p in req.workers]
    mode: RuntimeMode | None = req.runtime_mode
    run = await orch.dispatch(
        req.agent_id,
        req.task,
        strategy=req.strategy,
        workers=names,
        timeout_seconds=req.timeout_seconds,
        runtime_mode=mode,
        priority=req.priority,
        deadline_seconds=req.deadline_seconds,
        continue_session=req.continue_session,
        apply_result=req.apply_result,
        keep_worktrees=req.keep_worktrees,
    )
    await orch.io(mark_rerun, orch.settings.home, run.run_id, run_id)
    return run
