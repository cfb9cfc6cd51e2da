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

Writes are atomic (temp file, fsync, rename) and read-modify-writes hold a per-document
file lock, so several server processes can share one directory. A write touches a
constant number of files whatever the number of stored runs; listing reads only as
many documents as the page needs, and caches what it parsed by (mtime, size).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from mcp_orchestrator.contracts import STORE_SCHEMA_VERSION, PanicState, RunRecord, RunSummary, WorkerRecord, utcnow
from mcp_orchestrator.errors import Conflict, CorruptDocument, NewerDocument, NotFound
from mcp_orchestrator.store._files import atomic_write, doc_lock
from mcp_orchestrator.store.base import RunFilter, RunStore

__all__ = ["JsonRunStore"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


# Per old version: how to turn its JSON into what the current models read (None: it already reads as is).
# Version 1 differs only in layout (indented), so it needs nothing.
MIGRATIONS: dict[int, Callable[[dict[str, object]], dict[str, object]]] = {}


def _version_of(data: bytes) -> int | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    version = doc.get("schemaVersion") if isinstance(doc, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def _migrate(data: bytes, version: int | None, model: type[M]) -> M | None:
    """An older document brought up to the current models, or None when no migration applies."""
    if version is None or version >= STORE_SCHEMA_VERSION or not any(v >= version for v in MIGRATIONS):
        return None
    doc = json.loads(data)
    for step in sorted(v for v in MIGRATIONS if v >= version):
        doc = MIGRATIONS[step](doc)
    try:
        return model.model_validate(doc)
    except ValidationError:
        return None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class JsonRunStore(RunStore):
    """``RunStore`` over JSON documents in a directory (see the module docstring)."""

    def __init__(self, home: Path, *, fsync: bool = True) -> None:
        self.home = home
        self.fsync = fsync
        for sub in ("runs", "active", "index/worker", "index/agent", "idempotency", "workers", "quarantine"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        self._summary_cache: dict[str, tuple[int, int, RunSummary]] = {}
        self._listings: dict[Path, tuple[int, list[str]]] = {}  # folder -> (mtime, names newest first)
        self._folders: set[Path] = set()  # marker folders this store has made or seen

    # ---- documents -------------------------------------------------------------------------

    def _read(self, path: Path, model: type[M]) -> M | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            doc = model.model_validate_json(data)
        except ValidationError as e:
            version = _version_of(data)
            if version is not None and version > STORE_SCHEMA_VERSION:
                raise NewerDocument(path, version, STORE_SCHEMA_VERSION) from e
            migrated = _migrate(data, version, model)
            if migrated is None:
                raise CorruptDocument(path, f"does not parse as {model.__name__}: {e.errors()[0]['msg']}") from e
            doc = migrated
        version = getattr(doc, "schema_version", STORE_SCHEMA_VERSION)
        if version > STORE_SCHEMA_VERSION:
            raise NewerDocument(path, version, STORE_SCHEMA_VERSION)
        return doc

    def _write(self, path: Path, doc: BaseModel) -> None:
        if getattr(doc, "schema_version", STORE_SCHEMA_VERSION) != STORE_SCHEMA_VERSION:
            doc = doc.model_copy(update={"schema_version": STORE_SCHEMA_VERSION})  # migrated on write
        atomic_write(path, doc.model_dump_json().encode(), fsync=self.fsync)

    def quarantine(self, path: Path, reason: str) -> Path | None:
        """Move a corrupt or half-written document aside, with its reason; never delete it."""
        rel = path.relative_to(self.home).as_posix().replace("/", "__")
        dest = self.home / "quarantine" / f"{utcnow().strftime('%Y%m%dT%H%M%S.%f')}-{rel}"
        try:
            os.replace(path, dest)
        except FileNotFoundError:
            return None
        atomic_write(dest.with_name(dest.name + ".reason.txt"), (reason + "\n").encode(), fsync=self.fsync)
        log.warning("quarantined %s -> %s: %s", path, dest, reason)
        return dest

    def quarantined(self) -> list[tuple[str, str]]:
        """Every quarantined document and its reason."""
        out = []
        for p in sorted((self.home / "quarantine").iterdir()):
            if p.name.endswith(".reason.txt"):
                continue
            reason_file = p.with_name(p.name + ".reason.txt")
            reason = reason_file.read_text().strip() if reason_file.exists() else "unknown"
            out.append((p.name, reason))
        return out

    def _load_or_quarantine(self, path: Path, model: type[M]) -> M | None:
        try:
            return self._read(path, model)
        except CorruptDocument as e:
            self.quarantine(path, e.reason)
            return None

    # ---- runs ------------------------------------------------------------------------------

    def _run_path(self, run_id: str) -> Path:
        return self.home / "runs" / run_id / "run.json"

    def create_run(self, run: RunRecord) -> RunRecord:
        """Store a new run, or return the earlier run with the same idempotency key."""
        if run.idempotency_key is None:
            self._create_run(run)
            return run
        key_path = self.home / "idempotency" / f"{_sha(run.agent_id + chr(0) + run.idempotency_key)}.json"
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
        self._mark(self.home / "index" / "agent" / _sha(run.agent_id), run.run_id)
        self._write(path, run)

    def _mark(self, folder: Path, name: str) -> None:
        """Create the empty marker ``folder/name``; folders known to exist are not made again."""
        if folder not in self._folders:
            folder.mkdir(parents=True, exist_ok=True)
            if len(self._folders) > 10_000:
                self._folders.clear()
            self._folders.add(folder)
        try:
            os.close(os.open(folder / name, os.O_WRONLY | os.O_CREAT, 0o644))
        except FileNotFoundError:  # removed meanwhile (retention, a buried instance): make it again
            folder.mkdir(parents=True, exist_ok=True)
            os.close(os.open(folder / name, os.O_WRONLY | os.O_CREAT, 0o644))

    def update_run(self, run_id: str, change: Callable[[RunRecord], RunRecord]) -> RunRecord:
        """Read, change and write one run under its lock; drop its active marker once terminal."""
        path = self._run_path(run_id)
        with doc_lock(path):
            current = self._read(path, RunRecord)
            if current is None:
                raise NotFound("run", run_id)
            updated = change(current)
            if updated is not current:
                self._write(path, updated)
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

    def _candidate_ids(self, flt: RunFilter) -> list[str]:
        if flt.worker_name is not None:
            folder = self.home / "index" / "worker" / flt.worker_name
        elif flt.agent_id is not None:
            folder = self.home / "index" / "agent" / _sha(flt.agent_id)
        elif flt.status in ("accepted", "running"):
            folder = self.home / "active"  # unfinished runs have markers: no need to look at finished ones
        else:
            folder = self.home / "runs"
        return self._names_newest_first(folder)

    def _names_newest_first(self, folder: Path) -> list[str]:
        """The entries of ``folder`` sorted newest first; cached until the folder's mtime changes."""
        try:
            mtime = folder.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        cached = self._listings.get(folder)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            ids = sorted((e.name for e in os.scandir(folder)), reverse=True)
        except FileNotFoundError:
            return []
        if len(self._listings) >= 256:  # one entry per worker or agent listed: keep it bounded
            self._listings.clear()
        self._listings[folder] = (mtime, ids)
        return ids

    def _summary(self, run_id: str) -> RunSummary | None:
        path = self._run_path(run_id)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        cached = self._summary_cache.get(run_id)
        if cached is not None and cached[0] == st.st_mtime_ns and cached[1] == st.st_size:
            return cached[2]
        try:
            run = self._load_or_quarantine(path, RunRecord)
        except NewerDocument as e:
            log.warning("listing skips %s", e)
            return None
        if run is None:
            return None
        summary = run.summarize()
        self._summary_cache[run_id] = (st.st_mtime_ns, st.st_size, summary)
        return summary

    def list_runs(self, flt: RunFilter, limit: int, cursor: str | None) -> tuple[list[RunSummary], str | None]:
        """A page of runs newest first; reads at most the documents the page needs (plus one)."""
        page: list[RunSummary] = []
        for run_id in self._candidate_ids(flt):
            if cursor is not None and run_id >= cursor:
                continue
            s = self._summary(run_id)
            if s is None or not _matches(s, flt):
                continue
            if len(page) == limit:
                return page, page[-1].run_id
            page.append(s)
        return page, None

    def active_run_ids(self) -> list[str]:
        """Ids of runs not yet terminal (their markers)."""
        return sorted(p.name for p in (self.home / "active").iterdir())

    def iter_run_ids(self) -> Iterator[str]:
        """Every stored run id, newest first."""
        yield from self._candidate_ids(RunFilter())

    # ---- ownership (leases) -------------------------------------------------------------------
    # owned/<instance>/<runId> says which orchestrator holds a queued or running run; a process
    # proves it is alive with processes/<instance>.json, rewritten every heartbeat.

    def own(self, run_id: str, instance: str) -> None:
        """Record that ``instance`` holds ``run_id``."""
        self._mark(self.home / "owned" / instance, run_id)

    def disown(self, run_id: str, instance: str) -> None:
        """Forget that ``instance`` holds ``run_id``."""
        (self.home / "owned" / instance / run_id).unlink(missing_ok=True)

    def owns(self, run_id: str, instance: str) -> bool:
        """Whether ``instance`` still holds ``run_id``."""
        return (self.home / "owned" / instance / run_id).exists()

    def transfer(self, run_id: str, dead: str, heir: str) -> bool:
        """Move ``run_id`` from ``dead`` to ``heir`` atomically; False if another process got it first."""
        d = self.home / "owned" / heir
        d.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self.home / "owned" / dead / run_id, d / run_id)
        except FileNotFoundError:
            return False
        return True

    def owners(self) -> dict[str, list[str]]:
        """Every instance holding runs, with the runs it holds."""
        root = self.home / "owned"
        if not root.exists():
            return {}
        return {d.name: sorted(p.name for p in d.iterdir()) for d in root.iterdir() if d.is_dir()}

    def request_cancel(self, run_id: str, reason: str = "") -> None:
        """Leave a cancel request (with why, for the run's record) for whichever instance holds ``run_id``."""
        d = self.home / "cancel"
        d.mkdir(exist_ok=True)
        (d / run_id).write_text(reason[:500], encoding="utf-8")

    def cancel_requests(self, held: frozenset[str]) -> list[tuple[str, str]]:
        """The requested cancels among ``held`` runs, with their reasons ("" if none); each is consumed."""
        d = self.home / "cancel"
        try:
            wanted = [name for name in os.listdir(d) if name in held]
        except FileNotFoundError:
            return []
        out = []
        for name in wanted:
            try:
                reason = (d / name).read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                reason = ""
            (d / name).unlink(missing_ok=True)
            out.append((name, reason))
        return out

    def beat(self, instance: str, payload: Mapping[str, object]) -> None:
        """Prove ``instance`` is alive (and publish its scheduler view)."""
        d = self.home / "processes"
        d.mkdir(exist_ok=True)
        atomic_write(d / f"{instance}.json", json.dumps(payload, default=str).encode(), fsync=False)

    def heartbeats(self) -> dict[str, tuple[float, dict[str, object]]]:
        """Every instance's last heartbeat: (age in seconds, payload)."""
        out: dict[str, tuple[float, dict[str, object]]] = {}
        d = self.home / "processes"
        if not d.exists():
            return out
        now = time.time()
        for p in d.glob("*.json"):
            try:
                out[p.stem] = (now - p.stat().st_mtime, json.loads(p.read_bytes()))
            except (OSError, ValueError):
                continue
        return out

    def bury(self, instance: str) -> None:
        """Remove a dead instance's heartbeat and (empty) ownership folder."""
        (self.home / "processes" / f"{instance}.json").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (self.home / "owned" / instance).rmdir()

    def step_output_path(self, run_id: str, index: int) -> Path:
        """Where step ``index`` of ``run_id`` spools its full output."""
        return self.home / "runs" / run_id / "steps" / str(index) / "output.log"

    # ---- workers ---------------------------------------------------------------------------

    def _worker_path(self, name: str) -> Path:
        return self.home / "workers" / f"{name}.json"

    def put_worker(self, worker: WorkerRecord, *, create: bool = False) -> WorkerRecord:
        """Store a worker. ``create`` refuses a name held by a worker that is not stopped."""
        path = self._worker_path(worker.name)
        with doc_lock(path):
            if create:
                existing = self._load_or_quarantine(path, WorkerRecord)
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

        def sweep_tmp(folder: Path) -> None:
            for tmp in folder.glob("*.json.tmp-*"):
                if not _abandoned(tmp):
                    continue
                reason = "half-written: a writer stopped before renaming it into place"
                if self.quarantine(tmp, reason) is not None:
                    moved.append((str(tmp), reason))

        for path in (self.home / "workers").glob("*.json"):
            visit(path, WorkerRecord)
        sweep_tmp(self.home / "workers")
        for run_id in list(self.iter_run_ids()):
            run_dir = self.home / "runs" / run_id
            visit(run_dir / "run.json", RunRecord)
            sweep_tmp(run_dir)
        return moved

    def remove_run_files(self, run_id: str) -> None:
        """Delete a run directory entirely (used only by tests and retention)."""
        shutil.rmtree(self.home / "runs" / run_id, ignore_errors=True)


# What ``atomic_write`` names its temporary files: ``<name>.tmp-<pid>-<hex>``. Anchored at the end, so a
# document or lock whose own name merely contains ".json.tmp-" (a worker may be named so) never matches.
_TMP_NAME = re.compile(r"\.tmp-([0-9]+)-[0-9a-f]+\Z")


def _abandoned(tmp: Path) -> bool:
    """A temporary file whose writer is gone (or that is over an hour old): never a write in flight."""
    m = _TMP_NAME.search(tmp.name)
    if m is None:
        return False
    try:
        pid = int(m.group(1))
        age = time.time() - tmp.stat().st_mtime
    except (ValueError, FileNotFoundError):
        return False
    if age > 3600:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _matches(s: RunSummary, flt: RunFilter) -> bool:
    return (
        (flt.status is None or s.status == flt.status)
        and (flt.strategy is None or s.strategy == flt.strategy)
        and (flt.agent_id is None or s.agent_id == flt.agent_id)
        and (flt.worker_name is None or flt.worker_name in s.workers)
    )
