"""Retention: ``mcp-orchestrator prune`` enforces a TTL and a storage cap on runs, replays and the log.

A run is removable once it is finished (a terminal document and no ``active/`` marker): older than
its TTL, or the oldest finished runs while the total is over the cap. Unfinished runs, and runs
whose document cannot be read, are never touched. The log keeps or drops whole runs (a run's
story stays complete); lines that name no run are kept. The pruned log is written beside the live
one and swapped in under the log's exclusive lock, after copying whatever was appended meanwhile.

Settings (environment): ``MCP_ORCHESTRATOR_RETAIN_DAYS`` (every TTL, default 30),
``MCP_ORCHESTRATOR_RETAIN_{RUNS,REPLAYS,LOG}_DAYS`` and ``MCP_ORCHESTRATOR_{RUNS,REPLAYS,LOG}_CAP_MB``
(defaults 2048, 256 and 256).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from mcp_orchestrator.contracts import RunRecord, utcnow
from mcp_orchestrator.observability.logcheck import aware
from mcp_orchestrator.observability.models import PruneReport, PruneSection
from mcp_orchestrator.observability.replay import replay_path
from mcp_orchestrator.observability.runlog import exclusive, log_path
from mcp_orchestrator.store import JsonRunStore
from mcp_orchestrator.store.index import sha
from mcp_orchestrator.store.slots import TornDocument, document

__all__ = ["RetentionPolicy", "prune"]

MB = 1 << 20


@dataclass(frozen=True)
class RetentionPolicy:
    """How long, and how much, of each kind of data to keep."""

    runs_days: float = 30.0
    replays_days: float = 30.0
    log_days: float = 30.0
    runs_bytes: int = 2048 * MB
    replays_bytes: int = 256 * MB
    log_bytes: int = 256 * MB

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetentionPolicy:
        """The policy from ``MCP_ORCHESTRATOR_RETAIN_*`` and ``*_CAP_MB`` (see the module docstring)."""
        env = os.environ if environ is None else environ
        default = float(env.get("MCP_ORCHESTRATOR_RETAIN_DAYS") or cls.runs_days)
        out: dict[str, float | int] = {}
        for kind, cap in (("runs", cls.runs_bytes), ("replays", cls.replays_bytes), ("log", cls.log_bytes)):
            out[f"{kind}_days"] = float(env.get(f"MCP_ORCHESTRATOR_RETAIN_{kind.upper()}_DAYS") or default)
            raw = env.get(f"MCP_ORCHESTRATOR_{kind.upper()}_CAP_MB")
            out[f"{kind}_bytes"] = int(float(raw) * MB) if raw else cap
        return cls(**out)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, float]:
        """The policy as reported by ``prune``."""
        return {to_camel(k): float(v) for k, v in self.__dict__.items()}


@dataclass
class _Finished:
    run: RunRecord
    ended: datetime
    size: int
    replay_size: int


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _read_run(home: Path, run_id: str) -> RunRecord | None:
    # Read-only on purpose: the store's reader quarantines a corrupt document, and a dry run must not move anything.
    try:
        return RunRecord.model_validate_json(document((home / "runs" / run_id / "run.json").read_bytes()))
    except (OSError, ValidationError, TornDocument):
        return None


def _evict(items: list[_Finished], total: int, cap: int, size_of: str) -> list[_Finished]:
    """The oldest ``items`` to drop until ``total`` fits ``cap``."""
    out = []
    for item in sorted(items, key=lambda f: f.ended):
        if total <= cap:
            break
        out.append(item)
        total -= getattr(item, size_of)
    return out


def _forget(home: Path, store: JsonRunStore, run: RunRecord) -> None:
    """Remove a finished run's directory and every marker that points at it."""
    store.remove_run_files(run.run_id)
    for name in run.workers:
        (home / "index" / "worker" / name / run.run_id).unlink(missing_ok=True)
    (home / "index" / "agent" / sha(run.agent_id) / run.run_id).unlink(missing_ok=True)
    if run.idempotency_key is not None:
        key = home / "idempotency" / f"{sha(run.agent_id + chr(0) + run.idempotency_key)}.json"
        try:
            if json.loads(key.read_bytes()).get("runId") == run.run_id:
                key.unlink(missing_ok=True)
        except (OSError, ValueError, AttributeError):
            pass


def prune(
    home: Path, store: JsonRunStore, policy: RetentionPolicy, *, dry_run: bool = False, now: datetime | None = None
) -> PruneReport:
    """Apply ``policy`` to the data directory ``home`` (blocking)."""
    now = now or utcnow()
    active = set(store.active_run_ids())
    finished: list[_Finished] = []
    kept_unfinished = total = 0
    for run_id in list(store.iter_run_ids()):
        size = _size(home / "runs" / run_id)
        total += size
        run = None if run_id in active else _read_run(home, run_id)
        if run is None or not run.terminal:
            kept_unfinished += 1
            continue
        rp = replay_path(home, run_id)
        replay_size = rp.stat().st_size if rp.exists() else 0
        finished.append(_Finished(run, aware(run.ended_at or run.created_at), size, replay_size))
    runs_cutoff = now - timedelta(days=policy.runs_days)
    expired = [f for f in finished if f.ended < runs_cutoff]
    left = [f for f in finished if f.ended >= runs_cutoff]
    gone = expired + _evict(left, total - sum(f.size for f in expired), policy.runs_bytes, "size")
    gone_ids = {f.run.run_id for f in gone}
    runs = PruneSection(
        removed=sorted(gone_ids),
        freed_bytes=sum(f.size for f in gone),
        kept_bytes=total - sum(f.size for f in gone),
        kept_unfinished=kept_unfinished,
    )
    left = [f for f in finished if f.run.run_id not in gone_ids and f.replay_size]
    replays_cutoff = now - timedelta(days=policy.replays_days)
    old = [f for f in left if f.ended < replays_cutoff]
    rest = [f for f in left if f.ended >= replays_cutoff]
    replay_total = sum(f.replay_size for f in left)
    lost = old + _evict(rest, replay_total - sum(f.replay_size for f in old), policy.replays_bytes, "replay_size")
    replays = PruneSection(
        removed=sorted(f.run.run_id for f in lost),
        freed_bytes=sum(f.replay_size for f in lost),
        kept_bytes=replay_total - sum(f.replay_size for f in lost),
        kept_unfinished=kept_unfinished,
    )
    if not dry_run:
        for f in gone:
            _forget(home, store, f.run)
        for f in lost:
            replay_path(home, f.run.run_id).unlink(missing_ok=True)
    log, lines = _prune_log(log_path(home), active, policy, now, dry_run)
    return PruneReport(
        dry_run=dry_run, policy=policy.as_dict(), runs=runs, replays=replays, log=log, log_lines_removed=lines
    )


def _log_runs(path: Path, limit: int) -> dict[str, tuple[datetime, int, int]]:
    """run id -> (last event time, bytes, lines) over the first ``limit`` bytes of the log."""
    runs: dict[str, tuple[datetime, int, int]] = {}
    with path.open("rb") as f:
        pos = 0
        for raw in f:
            pos += len(raw)
            if pos > limit:
                break
            try:
                data = json.loads(raw)
                run_id, ts = str(data["runId"]), aware(datetime.fromisoformat(data["ts"]))
            except (ValueError, KeyError, TypeError):
                continue
            last, size, count = runs.get(run_id, (ts, 0, 0))
            runs[run_id] = (max(last, ts), size + len(raw), count + 1)
    return runs


def _prune_log(
    path: Path, active: set[str], policy: RetentionPolicy, now: datetime, dry_run: bool
) -> tuple[PruneSection, int]:
    if not path.exists():
        return PruneSection(), 0
    size = path.stat().st_size
    with path.open("rb") as f:  # only whole lines: a line being appended right now is left for the swap
        f.seek(max(size - 64 * 1024, 0))
        tail = f.read()
    limit = size - len(tail) + tail.rfind(b"\n") + 1 if b"\n" in tail else size - len(tail)
    runs = _log_runs(path, limit)
    removable = {r: v for r, v in runs.items() if r not in active}
    cutoff = now - timedelta(days=policy.log_days)
    drop = {r for r, (last, _, _) in removable.items() if last < cutoff}
    left = size - sum(removable[r][1] for r in drop)
    for run_id, (_, nbytes, _) in sorted(removable.items(), key=lambda kv: kv[1][0]):
        if left <= policy.log_bytes:
            break
        if run_id not in drop:
            drop.add(run_id)
            left -= nbytes
    freed = sum(removable[r][1] for r in drop)
    lines = sum(removable[r][2] for r in drop)
    section = PruneSection(
        removed=sorted(drop),
        freed_bytes=freed,
        kept_bytes=size - freed,
        kept_unfinished=len([r for r in runs if r in active]),
    )
    if drop and not dry_run:
        _rewrite(path, drop, limit)
    return section, lines


def _rewrite(path: Path, drop: set[str], limit: int) -> None:
    tmp = path.with_name(f"{path.name}.prune-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with path.open("rb") as src, tmp.open("wb") as dst:
            pos = 0
            for raw in src:
                pos += len(raw)
                if pos > limit:
                    break
                try:
                    run_id = json.loads(raw).get("runId")
                except (ValueError, AttributeError):
                    run_id = None
                if run_id not in drop:
                    dst.write(raw)
            with exclusive(path):  # no writer now: copy what was appended since, then swap
                if os.stat(path).st_ino != os.fstat(src.fileno()).st_ino:
                    return  # another prune swapped the log meanwhile: leave it to that one
                src.seek(limit)
                dst.write(src.read())
                dst.flush()
                os.fsync(dst.fileno())
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
