"""The JSON document store: one file per worker and per run, in a data directory.

Layout under ``home``::

    runs/<runId>/run.json          one run (ids sort by creation time)
    runs/<runId>/steps/<i>/output.log   a step's full output, size-capped
    active/<runId>                 marker while the run is not terminal
    index/worker/<name>/<runId>    marker per worker taking part in a run
    index/agent/<sha>/<runId>      marker per owning agent
    idempotency/<sha>.json         {runId} for (agentId, idempotencyKey)
    workers/<name>.json            one worker
    panic.json                     the panic switch
    quarantine/                    corrupt or half-written documents, with a reason file
    owned/ processes/ cancel/      leases, heartbeats and cancel requests between processes

A change rewrites one of a document's two checksummed slots in place (``store.slots``); a new or outgrown
document is written whole (temp file, fsync, rename). Read-modify-writes hold a per-document lock (a run's:
an ``flock`` of ``run.json`` itself; a worker's: ``workers/<name>.json.lock``), so several server processes
of one release can share one directory. A write touches a constant number of files whatever
the number of stored runs; listing reads only as many documents as the page needs, and caches what it
parsed by (mtime, size). Markers are hard links to one empty file (``markers/``), not files of their own.

This module owns runs (with idempotency), workers and the panic switch; documents, markers and
quarantine are ``store.documents``, listings ``store.index``, leases ``store.leases``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from mcp_orchestrator.contracts import PanicState, RunRecord, WorkerRecord
from mcp_orchestrator.errors import Conflict, CorruptDocument, NewerDocument, NotFound
from mcp_orchestrator.store._files import atomic_write, doc_lock, locked_fd
from mcp_orchestrator.store.base import RunStore
from mcp_orchestrator.store.index import RunIndex, sha
from mcp_orchestrator.store.leases import LeaseFiles
from mcp_orchestrator.store.slots import read_fd

__all__ = ["JsonRunStore", "check_name_free"]

log = logging.getLogger(__name__)


def check_name_free(existing: WorkerRecord | None, worker: WorkerRecord) -> None:
    """Refuse ``worker`` a name held by ``existing``: a worker that is not stopped, or another agent's."""
    if existing is not None and existing.status != "stopped":
        raise Conflict(
            f"A worker named {worker.name!r} already exists (owner {existing.owner_agent_id}).",
            hint="Choose another name, or stop that worker first.",
        )
    if existing is not None and existing.owner_agent_id != worker.owner_agent_id:
        raise Conflict(
            f"The name {worker.name!r} belongs to a stopped worker of agent {existing.owner_agent_id}.",
            hint="Choose another name.",
        )


class JsonRunStore(LeaseFiles, RunIndex, RunStore):
    """``RunStore`` over JSON documents in a directory (see the module docstring)."""

    def __init__(self, home: Path, *, fsync: bool = True) -> None:
        for sub in ("runs", "active", "index/worker", "index/agent", "idempotency", "workers", "quarantine"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        super().__init__(home, fsync=fsync)
        self._output_paths: dict[tuple[str, int], Path] = {}

    # ---- runs ------------------------------------------------------------------------------

    def create_run(self, run: RunRecord, *, keyed: bool = True) -> RunRecord:
        """Store a new run, or return the earlier run with the same idempotency key (unless not ``keyed``)."""
        if run.idempotency_key is None or not keyed:
            self._create_run(run)
            return run
        key_path = self.home / "idempotency" / f"{sha(run.agent_id + chr(0) + run.idempotency_key)}.json"
        with doc_lock(key_path):
            if key_path.exists():
                try:
                    earlier = json.loads(key_path.read_bytes())["runId"]
                    return self.get_run(earlier)
                except (ValueError, KeyError, TypeError, NotFound) as e:
                    self.quarantine(key_path, f"unusable idempotency record: {e}")
            self._create_run(run)
            atomic_write(key_path, json.dumps({"runId": run.run_id}).encode(), fsync=self.fsync)
        return run

    def _create_run(self, run: RunRecord) -> None:
        path = self._run_path(run.run_id)
        path.parent.mkdir(parents=True, exist_ok=False)
        if run.owner is not None and run.owner.instance:
            self.own(run.run_id, run.owner.instance)
        self._mark(self.home / "active", run.run_id)
        for name in run.workers:
            self._mark(self.home / "index" / "worker" / name, run.run_id)
        self._mark(self.home / "index" / "agent" / sha(run.agent_id), run.run_id)
        self._write(path, run)

    def update_run(self, run_id: str, change: Callable[[RunRecord], RunRecord]) -> RunRecord:
        """Read, change and write one run under its lock; drop its active marker once terminal."""
        path = self._run_path(run_id)
        fd = locked_fd(path)  # the document itself is locked: no lock file per run
        if fd is None:
            raise NotFound("run", run_id)
        try:
            data = read_fd(fd)
            current = self._parse(path, data, RunRecord)
            updated = change(current)
            if updated is not current:
                self._write(path, updated, fd=fd, data=data)
        finally:
            os.close(fd)
        if updated.terminal:
            (self.home / "active" / run_id).unlink(missing_ok=True)
            (self.home / "cancel" / run_id).unlink(missing_ok=True)
            for ref in (current.owner, updated.owner):
                if ref is not None and ref.instance:
                    self.disown(run_id, ref.instance)
        return updated

    def get_run(self, run_id: str) -> RunRecord:
        """Load one run; a corrupt document is quarantined and reported as missing."""
        run = self._load_or_quarantine(self._run_path(run_id), RunRecord)
        if run is None:
            raise NotFound("run", run_id, hint="List runs with list_worker_runs.")
        return run

    def step_output_path(self, run_id: str, index: int) -> Path:
        """Where step ``index`` of ``run_id`` spools its full output."""
        key = (run_id, index)
        path = self._output_paths.get(key)
        if path is None:  # asked for at a step's start and end, by the resource, by redaction: built once
            if len(self._output_paths) > 4096:
                self._output_paths.clear()
            path = self._output_paths[key] = self._run_path(run_id).parent / "steps" / str(index) / "output.log"
        return path

    # ---- workers ---------------------------------------------------------------------------

    def _worker_path(self, name: str) -> Path:
        return self.home / "workers" / f"{name}.json"

    def put_worker(self, worker: WorkerRecord, *, create: bool = False) -> WorkerRecord:
        """Store a worker. ``create`` refuses a name held by a worker that is not stopped."""
        path = self._worker_path(worker.name)
        with doc_lock(path):
            if create:
                check_name_free(self._load_or_quarantine(path, WorkerRecord), worker)
            self._write(path, worker)
        return worker

    def update_worker(self, name: str, change: Callable[[WorkerRecord], WorkerRecord]) -> WorkerRecord:
        """Read, change and write one worker under its lock."""
        path = self._worker_path(name)
        with doc_lock(path):
            current = self._read(path, WorkerRecord)
            if current is None:
                raise NotFound("worker", name, hint="List workers with list_workers.")
            updated = change(current)
            if updated is not current:
                self._write(path, updated)
        return updated

    def get_worker(self, name: str) -> WorkerRecord:
        """Load one worker."""
        worker = self._load_or_quarantine(self._worker_path(name), WorkerRecord)
        if worker is None:
            raise NotFound("worker", name, hint="Spawn it with spawn_worker, or list workers with list_workers.")
        return worker

    def list_workers(self) -> list[WorkerRecord]:
        """Every stored worker, by name; corrupt documents are quarantined."""
        out = []
        for path in sorted((self.home / "workers").glob("*.json")):
            try:
                w = self._load_or_quarantine(path, WorkerRecord)
            except NewerDocument as e:
                log.warning("list_workers skips %s", e)
                continue
            if w is not None:
                out.append(w)
        return out

    # ---- panic -----------------------------------------------------------------------------

    def get_panic(self) -> PanicState:
        """The panic state; a corrupt panic document counts as engaged (fail closed)."""
        path = self.home / "panic.json"
        try:
            state = self._read(path, PanicState)
        except CorruptDocument as e:
            self.quarantine(path, e.reason)
            return PanicState(engaged=True, reason="the panic document was corrupt", engaged_by="store")
        return state or PanicState(engaged=False)

    def set_panic(self, state: PanicState) -> PanicState:
        """Store the panic state."""
        path = self.home / "panic.json"
        with doc_lock(path):
            self._write(path, state)
        return state

    # ---- maintenance -----------------------------------------------------------------------

    def check(self) -> list[tuple[str, str]]:
        """Verify every document; quarantine the corrupt and half-written ones. Returns what moved."""
        moved: list[tuple[str, str]] = []

        def visit(path: Path, model: type[BaseModel]) -> None:
            try:
                self._read(path, model)
            except CorruptDocument as e:
                if self.quarantine(path, e.reason) is not None:
                    moved.append((str(path), e.reason))
            except NewerDocument as e:  # not corrupt: a newer release wrote it; it stays where it is
                log.warning("store check: %s", e)

        for path in (self.home / "workers").glob("*.json"):
            visit(path, WorkerRecord)
        self._sweep_tmp(self.home / "workers", moved)
        for run_id in list(self.iter_run_ids()):
            run_dir = self.home / "runs" / run_id
            visit(run_dir / "run.json", RunRecord)
            self._sweep_tmp(run_dir, moved)
        return moved

    def remove_run_files(self, run_id: str) -> None:
        """Delete a run directory entirely (used only by tests and retention)."""
        shutil.rmtree(self.home / "runs" / run_id, ignore_errors=True)
