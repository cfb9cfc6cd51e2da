"""Worker busy/idle marks written in the background, in order per worker (``WorkerMarks``).

A step's marks are not on its path: the busy mark goes beside its process, the idle mark beside the run's next
write, and the run's end is announced once they are stored (``StepRecorder.marks_settled``). A busy mark waits
``BUSY_AFTER`` first, and the step's start is announced once it is stored (whoever hears of the start finds
the worker busy): a step that ends sooner is never marked busy (its start is announced with its end), and if
the worker's record then needs no change (same session, idle before) no mark is written at all: two document
writes fewer per short step. A crash can lose a mark in flight; recovery sets the worker idle at the next start anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from mcp_orchestrator.contracts import WorkerRecord

__all__ = ["BUSY_AFTER", "Mark", "WorkerMarks"]

log = logging.getLogger(__name__)

BUSY_AFTER = 0.025  # seconds a step runs before its worker is marked busy in the store


class Mark:
    """One mark in flight: ``done`` is set once it is stored, has failed (logged) or was called off."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.delay = anyio.CancelScope()
        self.begun = False  # past its delay: it will be written

    def call_off(self) -> bool:
        """Cancel the mark if it is still waiting out its delay; True when it will never be written."""
        if self.begun:
            return False
        self.delay.cancel()
        return True


class WorkerMarks:
    """The marks in flight of one orchestrator, chained per worker so they land in order."""

    def __init__(
        self,
        write: Callable[[str, str, str | None, str | None], Awaitable[WorkerRecord | None]],
        start_soon: Callable[..., None],
    ) -> None:
        self._write = write  # stores one mark, returns the worker as stored
        self._start_soon = start_soon
        self._last: dict[str, Mark] = {}

    async def behind(
        self,
        name: str,
        status: str,
        run_id: str | None,
        session_id: str | None = None,
        *,
        delay: float = 0.0,
        then: Callable[[], None] | None = None,
        stopped: Callable[[], None] | None = None,
    ) -> Mark:
        """Store a mark after ``delay`` and after the worker's earlier marks; ``then``: called once it is stored
        (or failed), not when called off; ``stopped``: called when the stored worker turns out stopped (a stop
        that came before the busy mark was written)."""
        before = self._last.get(name)
        mark = Mark()
        self._last[name] = mark

        async def write() -> None:
            try:
                if delay:
                    with mark.delay:
                        await anyio.sleep(delay)
                mark.begun = not mark.delay.cancel_called
                with anyio.CancelScope(shield=True):  # a closing host still stores it
                    if before is not None:
                        await before.done.wait()  # done in order, even when called off
                    if not mark.begun:
                        return
                    stored = None
                    try:
                        stored = await self._write(name, status, run_id, session_id)
                    finally:
                        if then is not None:
                            then()
                if stored is not None and stored.status == "stopped" and stopped is not None:
                    stopped()
            except Exception:
                log.exception("worker %s: marking it %s failed", name, status)
            finally:
                mark.done.set()
                if self._last.get(name) is mark:
                    del self._last[name]

        try:
            self._start_soon(write, name=f"mark:{name}")
        except RuntimeError:  # no background (the host is shutting down): marked here, now
            await write()
        return mark

    async def settled(self, name: str) -> None:
        """Wait until the marks of worker ``name`` in flight are stored."""
        last = self._last.get(name)
        if last is not None:
            await last.done.wait()
