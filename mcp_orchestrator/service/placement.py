"""Machine placement: a worker pinned to a machine (``spawn_worker.machine``) has its steps, and its plans'
git workspace operations, executed by the worker processes of that machine only (the Temporal engine's
``<queue>@<machine>`` task queues). An unpinned worker's go to the shared queues, as before.

The local engine has one machine, this one (``MCP_ORCHESTRATOR_MACHINE``, else the hostname): another is
refused at spawn. On Temporal a worker pinned to another machine names its workdir as a path there; the
server cannot see it, so it takes it as given (absolute), and the worker process on that machine jails it to
its own roots before each step and git operation.

A multi-worker plan shares its workers' workdirs (the reviewer reads the writer's pending change, a writer's
fallback writes in the other writer's workdir, the writers' worktrees and their changes go through one
workspace queue), so all its workers must be placed alike: on one machine, or all unpinned. A plan that
mixes placements is refused at dispatch.
"""

from __future__ import annotations

import os
from pathlib import Path

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import WorkerRecord
from mcp_orchestrator.errors import InvalidArgument
from mcp_orchestrator.guards import check_machine

__all__ = ["check_placeable", "check_placement", "plan_machine", "remote_workdir"]

_MAX_PATH = 4096


def check_placeable(machine: str, settings: Settings) -> None:
    """Refuse a machine name that is invalid, or (on the local engine) not this machine."""
    check_machine(machine)
    if settings.engine != "temporal" and machine != settings.machine:
        raise InvalidArgument(
            "machine",
            f"{machine!r} is not this machine ({settings.machine!r}): the local engine runs every step here",
            hint="Placement on other machines needs the Temporal engine (MCP_ORCHESTRATOR_ENGINE=temporal, with "
            f"`mcp-orchestrator worker --machine {machine}` there); omit machine, or pass {settings.machine!r}.",
        )


def remote_workdir(workdir: str | None, machine: str) -> Path:
    """The workdir of a worker pinned to another machine: an absolute path there, checked for shape only."""
    if not workdir:
        raise InvalidArgument(
            "workdir",
            f"is required for a worker on machine {machine!r}",
            hint=f"Pass the absolute path of its directory on {machine} (inside that worker process's roots).",
        )
    if "\x00" in workdir or len(workdir) > _MAX_PATH or not os.path.isabs(workdir):
        raise InvalidArgument(
            "workdir",
            f"must be an absolute path on machine {machine!r}",
            hint="e.g. /srv/repos/app; the worker process there checks it against its MCP_ORCHESTRATOR_ROOTS.",
        )
    return Path(os.path.normpath(workdir))


def plan_machine(workers: list[WorkerRecord]) -> str | None:
    """The machine a plan's workspace operations run on: its workers' (``None``: unpinned, the shared queue)."""
    machines = {w.machine for w in workers}
    return next(iter(machines)) if len(machines) == 1 else None


def check_placement(strategy: str, workers: list[WorkerRecord]) -> None:
    """Refuse a multi-worker plan whose workers are not all placed alike (one machine, or all unpinned)."""
    placed: dict[str, list[str]] = {}
    for w in workers:
        placed.setdefault(w.machine or "", []).append(w.name)
    if len(placed) < 2:
        return
    order = sorted(placed.items(), key=lambda p: (not p[0], p[0]))  # the machines by name, then the unpinned
    where = "; ".join(f"{'machine ' + m if m else 'unpinned'}: {', '.join(names)}" for m, names in order)
    raise InvalidArgument(
        "workers",
        f"the {strategy} plan shares its workers' workdirs (git worktrees, the writer's change read by the "
        f"reviewer), but they are placed apart ({where})",
        hint="Use workers spawned with the same machine (or all without one) for one plan: spawn_worker with "
        "that machine, and name them in workers.",
    )
