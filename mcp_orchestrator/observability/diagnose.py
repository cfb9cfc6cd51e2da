"""``diag`` and ``optimize``: anomalies over a window of runs, each with a ready-to-run remediation.

Inputs are the run event log (the window: the last N runs in it), the store (workers, the panic
switch, runs still queued) and the runtime adapters' status. ``diag`` reports faults: failure rate
by runtime and class, frequent timeouts and stalls, missing or outdated CLIs, starvation, an engaged
panic switch and open breakers (there are no breakers yet: always none). ``optimize`` reports
tuning: frequent fallbacks, slow runtimes, growing queue waits and retries (the rules are in
``rules.py``). ``diagnose`` is a pure function of its inputs: the fixtures in ``fixtures/diag/`` pin
every rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import RuntimeInfo, utcnow
from mcp_orchestrator.errors import NotFound, StoreError
from mcp_orchestrator.observability.history import load_history
from mcp_orchestrator.observability.models import SEVERITIES, Diagnosis
from mcp_orchestrator.observability.rules import RULES, Inputs, Window
from mcp_orchestrator.observability.runlog import log_path
from mcp_orchestrator.store import JsonRunStore

__all__ = ["Inputs", "Kind", "at_least", "diagnose", "diagnose_home", "gather", "load_inputs"]

Kind = Literal["diag", "optimize"]
MAX_QUEUED_READ = 500


def gather(settings: Settings, store: JsonRunStore, runtimes: list[RuntimeInfo], window: int | None = None) -> Inputs:
    """Read the log (its last ``window`` runs) and the store of ``settings.home`` (blocking: off the event loop)."""
    now = utcnow()
    queued: list[tuple[str, str, float]] = []
    for run_id in store.active_run_ids()[:MAX_QUEUED_READ]:
        try:
            run = store.get_run(run_id)
        except (NotFound, StoreError):
            continue
        if run.status == "accepted":
            queued.append((run_id, run.priority, (now - run.created_at).total_seconds()))
    return Inputs(
        runs=load_history(log_path(settings.home), window),
        settings=settings,
        runtimes=runtimes,
        workers=store.list_workers(),
        panic=store.get_panic(),
        queued=queued,
        sources=["log", "store", "runtimes"],
        now=now,
    )


def at_least(severity: str, threshold: str) -> bool:
    """Whether ``severity`` is ``threshold`` or worse."""
    ranks: tuple[str, ...] = SEVERITIES
    return ranks.index(severity) >= ranks.index(threshold)


def diagnose(kind: Kind, inputs: Inputs, window: int) -> Diagnosis:
    """The actions of ``kind`` over the last ``window`` runs of ``inputs``, most severe first."""
    runs = inputs.runs[-window:] if window > 0 else []
    w = Window(runs, inputs)
    actions = [a for rule in RULES[kind] for a in rule(w)]
    actions.sort(key=lambda a: (-SEVERITIES.index(a.severity), a.id))
    return Diagnosis(
        kind=kind,
        window=window,
        runs=len(runs),
        generated_at=inputs.now,
        sources=inputs.sources,
        open_breakers=[],
        actions=actions,
    )


def diagnose_home(
    kind: Kind,
    settings: Settings,
    store: JsonRunStore,
    runtimes: list[RuntimeInfo],
    window: int,
    cluster: dict[str, Any] | None = None,
) -> Diagnosis:
    """Gather the inputs of ``settings.home`` and diagnose them (blocking); ``cluster``: the Temporal
    deployment's queues, where the engine is Temporal."""
    inputs = gather(settings, store, runtimes, window)
    if cluster is not None:
        inputs.cluster = cluster
        inputs.sources.append("cluster")
    return diagnose(kind, inputs, window)


def load_inputs(path: Path, settings: Settings) -> Inputs:
    """Inputs from a log file alone (fixtures; no store, no runtimes)."""
    return Inputs(runs=load_history(path), settings=settings)
