"""Replay packages: ``<home>/runs/<runId>/replay.json``, one per run.

Written once when a run is dispatched (the frozen request, the effective policy and its version,
the runtime selected for each worker) and completed when it ends (each step's path and outcome).
``diff`` compares two packages' paths; ``service.rerun`` dispatches a package's request again. Everything
is redacted before it is written; the service calls ``record_dispatch`` and ``record_outcome`` and
neither ever raises into a run (a package that cannot be written is logged and skipped).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import RunRecord, WorkerRecord, utcnow
from mcp_orchestrator.errors import CorruptDocument, NotFound
from mcp_orchestrator.gateway.router import has_credentials
from mcp_orchestrator.guards import check_run_id
from mcp_orchestrator.observability.models import (
    EffectivePolicy,
    PathDelta,
    ReplayDiff,
    ReplayOutcome,
    ReplayPackage,
    ReplayRequest,
    ReplayStep,
    WorkerProfile,
)
from mcp_orchestrator.observability.redact import Redactor
from mcp_orchestrator.store import slots
from mcp_orchestrator.store._files import dir_lock

__all__ = [
    "diff",
    "effective_policy",
    "load",
    "mark_rerun",
    "outcome_of",
    "profile_of",
    "record_dispatch",
    "record_outcome",
    "replay_path",
]

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1024)
def replay_path(home: Path, run_id: str) -> Path:
    """Where the replay package of ``run_id`` lives."""
    return home / "runs" / run_id / "replay.json"


def effective_policy(settings: Settings, workers: list[WorkerRecord]) -> EffectivePolicy:
    """The settings that decide a run's path, with a version id that hashes them."""
    body: dict[str, Any] = {
        "runtime_default": settings.default_runtime,
        "fallback_policies": {w.name: w.fallback_policy for w in workers},
        "sdk_credentials": {mode: has_credentials(mode) for mode in ("openai_sdk", "google_sdk")},
        "retry": {
            "attempts": settings.retry_attempts,
            "baseSeconds": settings.retry_base_seconds,
            "capSeconds": settings.retry_cap_seconds,
            "totalSeconds": settings.retry_total_seconds,
        },
        "caps": {
            "maxRunning": settings.max_running,
            "queueLimits": dict(sorted(settings.queue_limits.items())),
            "backendCaps": dict(sorted(settings.backend_caps.items())),
            "batchEvery": settings.batch_every,
            "agingSeconds": settings.aging_seconds,
        },
        "timeouts": {"stepTimeoutSeconds": settings.step_timeout_seconds, "stallSeconds": settings.stall_seconds},
    }
    # Worker names are identities, not policy: a rerun on workers with other names has the same version.
    hashed = {**body, "fallback_policies": [w.fallback_policy for w in workers]}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
    return EffectivePolicy(version=f"pol_{digest}", **body)


def profile_of(w: WorkerRecord) -> WorkerProfile:
    """The profile a replay package records for worker ``w``."""
    return WorkerProfile.model_validate(w.model_dump(include=set(WorkerProfile.model_fields)))


def _write(path: Path, package: ReplayPackage, redactor: Redactor | None) -> None:
    """Write ``package`` compact; ``redactor`` None: it was redacted already (a package read back)."""
    data = package.model_dump(mode="json")
    slots.put(path, json.dumps(redactor.data(data) if redactor else data, separators=(",", ":")).encode(), fsync=False)


def record_dispatch(settings: Settings, run: RunRecord, workers: list[WorkerRecord], redactor: Redactor) -> None:
    """Write the package of a run just created (once: an existing package is left alone)."""
    path = replay_path(settings.home, run.run_id)
    deadline = (run.deadline_at - run.created_at).total_seconds() if run.deadline_at else None
    try:
        with dir_lock(path.parent):  # the run's directory: no lock file per run
            if path.exists():
                return
            package = ReplayPackage(
                run_id=run.run_id,
                created_at=run.created_at,
                request=ReplayRequest(
                    agent_id=run.agent_id,
                    task=run.task,
                    strategy=run.strategy,
                    workers=[profile_of(w) for w in workers],
                    priority=run.priority,
                    runtime_mode=run.runtime_mode,
                    timeout_seconds=run.timeout_seconds,
                    deadline_seconds=deadline,
                    continue_session=run.continue_session,
                    apply_result=run.apply_result,
                    keep_worktrees=run.keep_worktrees,
                ),
                policy=effective_policy(settings, workers),
                runtimes={w.name: run.runtime_mode or w.runtime_mode for w in workers},
            )
            _write(path, package, redactor)
    except (OSError, ValueError) as e:
        log.warning("replay: could not write the package of %s: %s", run.run_id, e)


def outcome_of(run: RunRecord, models: Mapping[str, str]) -> ReplayOutcome:
    """A run's path and outcome, step by step (``models``: worker name -> model)."""
    steps = [
        ReplayStep(
            index=s.index,
            worker_name=s.worker_name,
            model=models.get(s.worker_name, "unknown"),
            role=s.role,
            runtime_mode=s.runtime_mode,
            fallback_from=s.fallback_from.runtime_mode if s.fallback_from else None,
            fallback_class=s.fallback_from.failure_class if s.fallback_from else None,
            status=s.status,
            failure_class=s.failure_class,
            attempts=s.attempt,
            attempt_classes=[a.failure_class for a in s.attempts],
        )
        for s in run.steps
    ]
    failure = run.error.failure_class if run.error else None
    return ReplayOutcome(status=run.status, failure_class=failure, steps=steps, recorded_at=utcnow())


def record_outcome(home: Path, run: RunRecord, redactor: Redactor) -> None:
    """Add the outcome to a finished run's package (a run without a package is skipped)."""
    path = replay_path(home, run.run_id)
    try:
        with dir_lock(path.parent):  # the run's directory: no lock file per run
            package = _read(path)
            if package is None:
                return
            models = {w.name: w.model for w in package.request.workers}
            outcome = outcome_of(run, models)  # only the outcome is new: the rest was redacted when written
            outcome = ReplayOutcome.model_validate(redactor.data(outcome.model_dump(mode="json")))
            _write(path, package.model_copy(update={"outcome": outcome}), None)
    except (OSError, ValueError, CorruptDocument) as e:
        log.warning("replay: could not record the outcome of %s: %s", run.run_id, e)


def _read(path: Path) -> ReplayPackage | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return ReplayPackage.model_validate_json(slots.document(data))
    except slots.TornDocument as e:
        raise CorruptDocument(path, f"a format-{slots.FORMAT} replay package: {e}") from e
    except ValidationError as e:
        raise CorruptDocument(path, f"does not parse as ReplayPackage: {e.errors()[0]['msg']}") from e


def load(home: Path, run_id: str, run: RunRecord | None = None) -> ReplayPackage:
    """The package of ``run_id``; a finished ``run`` fills in an outcome the package lacks."""
    package = _read(replay_path(home, check_run_id(run_id)))
    if package is None:
        raise NotFound("replay", run_id, hint="Runs dispatched before replays existed, or pruned, have none.")
    if package.outcome is None and run is not None and run.terminal:
        models = {w.name: w.model for w in package.request.workers}
        package = package.model_copy(update={"outcome": outcome_of(run, models)})
    return package


def _path(p: ReplayPackage) -> dict[str, Any]:
    """What makes up a run's path, flattened to ``{"steps[0].runtimeMode": "cli", ...}``."""
    flat: dict[str, Any] = {"strategy": p.request.strategy, "policy.version": p.policy.version}
    policy = p.policy.model_dump(mode="json", exclude={"version", "fallback_policies"})
    flat.update({f"policy.{k}": v for k, v in policy.items()})
    for i, w in enumerate(p.request.workers):  # by position: a rerun may use other worker names
        flat[f"workers[{i}]"] = f"{w.model}/{w.role}/{w.fallback_policy}"
        flat[f"runtimes[{i}]"] = p.runtimes.get(w.name)
    if p.outcome is not None:
        flat["outcome.status"] = p.outcome.status
        flat["outcome.failureClass"] = p.outcome.failure_class
        flat["steps.count"] = len(p.outcome.steps)
        for s in p.outcome.steps:
            step = s.model_dump(mode="json", exclude={"index", "worker_name"})
            flat.update({f"steps[{s.index}].{k}": v for k, v in step.items()})
    return flat


def diff(a: ReplayPackage, b: ReplayPackage) -> ReplayDiff:
    """The path delta of two runs: strategy, policy, runtimes, steps and outcomes."""
    pa, pb = _path(a), _path(b)
    deltas = [
        PathDelta(path=k, a=pa.get(k), b=pb.get(k)) for k in sorted(pa.keys() | pb.keys()) if pa.get(k) != pb.get(k)
    ]
    return ReplayDiff(run_a=a.run_id, run_b=b.run_id, same_path=not deltas, deltas=deltas)


def mark_rerun(home: Path, run_id: str, original: str) -> None:
    """Note in the package of ``run_id`` that it reruns ``original``."""
    path = replay_path(home, run_id)
    with dir_lock(path.parent):  # the run's directory: no lock file per run
        package = _read(path)
        if package is not None:
            _write(path, package.model_copy(update={"rerun_of": original}), None)
