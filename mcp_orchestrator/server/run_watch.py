"""Change notifications for run resources: ``resources/subscribe`` and ``subscriptions/listen`` on ``runs://``.

A run changes in whichever process executes it: the data directory's executor daemon, another
``serve`` sharing the data directory, or this process. The one thing they all share is the run
document, so the watcher polls it: every ``POLL_SECONDS``, for subscribed runs only, one ``stat``
per run, and a read only when its mtime or size moved. That meets the 1 s bound whatever process
made the change, costs nothing while nobody subscribes, and needs no new wire between processes
(the executor's ``watch`` stream would cover only runs that the executor runs).

One notification goes out per transition seen (the run's status, each step started, each step
ended), even when several land between two polls, so a client can count them; any other change of
the document (e.g. a step's output excerpt) sends one.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from mcp.server.session import ServerSession

from mcp_orchestrator.errors import NotFound, StoreError

if TYPE_CHECKING:  # annotations only: the modules load when a request needs them (issue 15: start-up)
    from mcp_orchestrator.contracts import RunRecord
    from mcp_orchestrator.service import Orchestrator

__all__ = ["POLL_SECONDS", "RunWatch", "run_of_uri"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
MAX_BURST = 8  # notifications for one poll's worth of transitions of one run
_RUN_URI = re.compile(r"^runs://(?P<id>[A-Za-z0-9_-]{1,64})(?:/summary)?$")

Mark = tuple[object, ...]


def run_of_uri(uri: str) -> str | None:
    """The run id of a watchable run resource URI (``runs://{id}``, ``runs://{id}/summary``), else ``None``."""
    m = _RUN_URI.match(uri)
    return m.group("id") if m else None


@dataclass(frozen=True)
class _Seen:
    """What the watcher last saw of one run document."""

    stamp: tuple[int, int] | None  # (mtime_ns, size)
    marks: frozenset[Mark]


def _marks(run: RunRecord) -> frozenset[Mark]:
    """The transitions a run has been through, as comparable marks."""
    out: set[Mark] = {("status", run.status)}
    for step in run.steps:
        if step.started_at is not None:
            out.add(("started", step.index, step.attempt))
        if step.ended_at is not None:
            out.add(("ended", step.index, step.attempt))
    return frozenset(out)


def _transitions(before: _Seen, after: _Seen) -> int:
    """How many transitions lie between two sightings (at least one: the document changed)."""
    return max(1, min(MAX_BURST, len(after.marks - before.marks)))


class RunWatch:
    """Who subscribed to which run URI, and the poller that tells them when the run document changes."""

    def __init__(self, publish: Callable[[str], Awaitable[None]]) -> None:
        self._publish = publish  # to the SDK's subscription bus (2026-era listen streams filter by URI)
        self._sessions: dict[str, dict[int, ServerSession]] = {}  # uri -> connection key -> session
        self._listened: Counter[str] = Counter()  # uri -> open listen streams naming it
        self._seen: dict[str, _Seen] = {}
        self._wake = anyio.Event()
        self._lock = anyio.Lock()  # one poller per server, however many lifespans run

    # ---- subscriptions -------------------------------------------------------------------------

    def subscribe(self, uri: str, key: int, session: ServerSession) -> None:
        """Send ``notifications/resources/updated`` for ``uri`` to ``session`` (connection ``key``)."""
        self._sessions.setdefault(uri, {})[key] = session
        self._wake.set()

    def unsubscribe(self, uri: str, key: int) -> None:
        """Stop notifying connection ``key`` about ``uri``."""
        sessions = self._sessions.get(uri, {})
        sessions.pop(key, None)
        if not sessions:
            self._sessions.pop(uri, None)

    @contextmanager
    def listening(self, uris: Iterable[str]) -> Iterator[None]:
        """Watch ``uris`` while a listen stream that names them is open."""
        watched = [u for u in uris if run_of_uri(u) is not None]
        self._listened.update(watched)
        self._wake.set()
        try:
            yield
        finally:
            self._listened.subtract(watched)
            self._listened += Counter()  # drop zero counts

    def _watched(self) -> dict[str, list[str]]:
        """Run id -> the subscribed URIs that name it."""
        out: dict[str, list[str]] = {}
        for uri in {*self._sessions, *self._listened}:
            run_id = run_of_uri(uri)
            if run_id is not None:
                out.setdefault(run_id, []).append(uri)
        return out

    # ---- polling -------------------------------------------------------------------------------

    async def prime(self, orch: Orchestrator, run_id: str) -> None:
        """Remember the run as it is now, so the first poll reports only what changes after this."""
        if run_id not in self._seen:
            seen = await orch.io(_observe, orch, run_id, None)
            if seen is not None:
                self._seen.setdefault(run_id, seen)

    async def run(self, service: Callable[[], Orchestrator]) -> None:
        """Poll the subscribed runs until canceled (``service`` gives the orchestrator once a run is watched:
        a front end starts it on the subscribing request)."""
        async with self._lock:
            while True:
                watched = self._watched()
                for gone in set(self._seen) - set(watched):
                    del self._seen[gone]
                if not watched:
                    self._wake = anyio.Event()
                    await self._wake.wait()
                    continue
                orch = service()
                for run_id, uris in watched.items():
                    before = self._seen.get(run_id)
                    after = await orch.io(_observe, orch, run_id, before)
                    if after is None or after is before:
                        continue
                    self._seen[run_id] = after
                    if before is not None:
                        await self._notify(uris, _transitions(before, after))
                await anyio.sleep(POLL_SECONDS)

    async def _notify(self, uris: list[str], count: int) -> None:
        for uri in uris:
            for _ in range(count):
                for key, session in list(self._sessions.get(uri, {}).items()):
                    try:
                        await session.send_resource_updated(uri)
                    except Exception:  # fan-out boundary: a closed connection must not stop the others
                        log.debug("dropping the subscription of a closed connection to %s", uri, exc_info=True)
                        self.unsubscribe(uri, key)
                if self._listened.get(uri):
                    await self._publish(uri)


def _run_document(orch: Orchestrator, run_id: str) -> Path:
    """Where the store keeps the run (mirrors ``JsonRunStore``'s layout; only its stamp is read here)."""
    return orch.settings.home / "runs" / run_id / "run.json"


def _observe(orch: Orchestrator, run_id: str, before: _Seen | None) -> _Seen | None:
    """The run as it stands (``before`` itself when its document did not move; ``None`` when absent)."""
    try:
        st = os.stat(_run_document(orch, run_id))
    except OSError:
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    if before is not None and before.stamp == stamp:
        return before
    try:
        run = orch.store.get_run(run_id)
    except (NotFound, StoreError):
        return None
    return _Seen(stamp, _marks(run))
