"""The cluster's part of ``diag`` on the Temporal engine: task queues nobody polls, backlogs that age, a cluster
that does not answer.

The input is the cluster view the service reads from Temporal (``describe_task_queue`` of the deployment's
queues: the runs queue, the workspace queue and one step queue per backend of this data directory's workers;
a backend of workers pinned to a machine by that machine's queue, ``<queue>@<machine>``, beside its workspace
queue).
Each finding comes with the command that fixes it, like every other rule.
"""

from __future__ import annotations

from typing import Any

from mcp_orchestrator.observability.models import Action

__all__ = ["BACKLOG_AGE_WARN_MS", "cluster_actions"]

BACKLOG_AGE_WARN_MS = 30_000  # a task waiting this long for a poller that exists: too few worker processes


def cluster_actions(cluster: dict[str, Any] | None) -> list[Action]:
    """The actions a cluster view calls for (none off Temporal, where ``cluster`` is ``None``)."""
    if not cluster:
        return []
    queues: dict[str, dict[str, Any]] = cluster.get("queues") or {}
    where = f"{cluster.get('address')} (namespace {cluster.get('namespace')})"
    if cluster.get("error") or (queues and all("error" in q for q in queues.values())):
        reason = cluster.get("error") or next(iter(queues.values()))["error"]
        return [
            Action(
                id="cluster.unreachable",
                severity="critical",
                rationale=f"the Temporal cluster at {where} does not answer, so no run can start or progress: "
                f"{reason}. Start it, or point MCP_ORCHESTRATOR_TEMPORAL_ADDRESS (and the API key or TLS "
                "settings) at it.",
                evidence={"address": cluster.get("address"), "namespace": cluster.get("namespace"), "error": reason},
                command="temporal operator cluster health --address " + str(cluster.get("address")),
            )
        ]
    out: list[Action] = []
    for name, q in sorted(queues.items()):
        if "error" in q:
            continue
        base, _, machine = name.partition("@")
        backend = _backend(base)
        backlog, age = int(q.get("backlog", 0)), int(q.get("backlogAgeMs", 0))
        evidence = {"taskQueue": name, "pollers": q.get("pollers", []), "backlog": backlog, "backlogAgeMs": age}
        key = f"{backend}@{machine}" if backend and machine else backend or name  # the action's id
        start = "mcp-orchestrator worker" + (f" --machine {machine}" if machine else "")
        start += f" --backend {backend}" if backend else ""
        if not q.get("pollers"):
            what = f"backend {backend}" if backend else f"task queue {name}"
            who = "no worker process" + (f" of machine {machine}" if machine else "")
            out.append(
                Action(
                    id=f"cluster.no_workers.{key}",
                    severity="error" if backlog else "warn",
                    rationale=f"{who} polls {what} on {where}: its runs wait"
                    + (f" ({backlog} task(s) queued)." if backlog else " as soon as one is dispatched."),
                    evidence=evidence,
                    command=f"{start}   # on "
                    + (f"machine {machine}" if machine else "a machine that can run it")
                    + ", with MCP_ORCHESTRATOR_ENGINE=temporal",
                )
            )
        elif backlog and age >= BACKLOG_AGE_WARN_MS:
            out.append(
                Action(
                    id=f"cluster.backlog.{key}",
                    severity="warn",
                    rationale=f"{backlog} task(s) on {name} wait {age / 1000:.0f} s for one of "
                    f"{len(q['pollers'])} worker(s): add worker processes or raise their caps.",
                    evidence=evidence,
                    command=start,
                )
            )
    return out


def _backend(queue: str) -> str | None:
    """``<prefix>.<model>.<runtime>`` -> ``model/runtime``; ``None`` for the runs and workspace queues."""
    parts = queue.rsplit(".", 2)
    if len(parts) < 3 or parts[-1] in ("runs", "workspace"):
        return None
    return f"{parts[-2]}/{parts[-1]}"
