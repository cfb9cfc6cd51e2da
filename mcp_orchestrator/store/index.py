"""The run index: which runs a listing reads, newest first, without reading every document.

Markers name runs by id (ids sort by creation time): ``active/<runId>`` while a run is not terminal,
``index/worker/<name>/<runId>`` per worker taking part, ``index/agent/<sha>/<runId>`` per owning agent.
A page reads only the documents it needs (plus one), and caches folder listings by mtime and run
summaries by (mtime, size).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from mcp_orchestrator.contracts import RunRecord, RunSummary
from mcp_orchestrator.errors import NewerDocument
from mcp_orchestrator.store.base import RunFilter
from mcp_orchestrator.store.documents import DocumentFiles

__all__ = ["RunIndex", "sha"]

log = logging.getLogger(__name__)


def sha(text: str) -> str:
    """The store's key for an agent's index folder (and an idempotency record)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class RunIndex(DocumentFiles):
    """Listing runs through their markers."""

    def __init__(self, home: Path, *, fsync: bool = True) -> None:
        super().__init__(home, fsync=fsync)
        self._summary_cache: dict[str, tuple[int, int, RunSummary]] = {}
        self._listings: dict[Path, tuple[int, list[str]]] = {}  # folder -> (mtime, names newest first)
        self._run_paths: dict[str, Path] = {}

    def _run_path(self, run_id: str) -> Path:
        path = self._run_paths.get(run_id)
        if path is None:  # a run's path is asked for about a dozen times per run: built once (pathlib is slow)
            if len(self._run_paths) > 4096:
                self._run_paths.clear()
            path = self._run_paths[run_id] = self.home / "runs" / run_id / "run.json"
        return path

    def _candidate_ids(self, flt: RunFilter) -> list[str]:
        if flt.worker_name is not None:
            folder = self.home / "index" / "worker" / flt.worker_name
        elif flt.agent_id is not None:
            folder = self.home / "index" / "agent" / sha(flt.agent_id)
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


def _matches(s: RunSummary, flt: RunFilter) -> bool:
    return (
        (flt.status is None or s.status == flt.status)
        and (flt.strategy is None or s.strategy == flt.strategy)
        and (flt.agent_id is None or s.agent_id == flt.agent_id)
        and (flt.worker_name is None or flt.worker_name in s.workers)
    )
