"""In-process run events: what a waiting caller hears while a run progresses."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["EventBus", "RunEvent"]


@dataclass(frozen=True)
class RunEvent:
    """One thing that happened to a run."""

    run_id: str
    kind: Literal["run_started", "step_started", "step_progress", "step_ended", "run_ended"]
    message: str


class EventBus:
    """Fan-out of run events to subscribers; a slow subscriber loses events, never blocks a run."""

    def __init__(self) -> None:
        self._subs: dict[str, set[MemoryObjectSendStream[RunEvent]]] = defaultdict(set)

    def publish(self, event: RunEvent) -> None:
        """Deliver ``event`` to every subscriber of its run."""
        for send in list(self._subs.get(event.run_id, ())):
            with suppress(anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                send.send_nowait(event)

    @asynccontextmanager
    async def subscribe(self, run_id: str) -> AsyncIterator[MemoryObjectReceiveStream[RunEvent]]:
        """Receive the events of ``run_id`` while the context is open."""
        send, receive = anyio.create_memory_object_stream[RunEvent](256)
        self._subs[run_id].add(send)
        try:
            yield receive
        finally:
            self._subs[run_id].discard(send)
            if not self._subs[run_id]:
                del self._subs[run_id]
            send.close()
            receive.close()
