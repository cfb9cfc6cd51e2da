"""Step-level concurrency caps: per backend (model and runtime) and per worker.

A step holds its slots only while it runs, never while its run waits for another step, so
multi-step strategies cannot deadlock the caps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

__all__ = ["StepCaps"]


class StepCaps:
    """Capacity limiters created on first use, keyed by backend and by worker."""

    def __init__(self, backend_caps: dict[str, int] | None = None, default_backend_cap: int = 4) -> None:
        self._backend_caps = backend_caps or {}
        self._default = default_backend_cap
        self._backends: dict[str, anyio.CapacityLimiter] = {}
        self._workers: dict[str, anyio.CapacityLimiter] = {}

    def backend_cap(self, backend: str) -> int:
        """The cap of ``backend`` (``model/runtime``, or ``runtime`` alone, or the default)."""
        runtime = backend.split("/", 1)[-1]
        return self._backend_caps.get(backend, self._backend_caps.get(runtime, self._default))

    def worker_busy(self, worker: str) -> bool:
        """Whether a step of ``worker`` would have to wait for a slot."""
        w = self._workers.get(worker)
        return w is not None and w.available_tokens < 1

    @asynccontextmanager
    async def worker_slot(self, worker: str, cap: int = 1) -> AsyncIterator[None]:
        """Hold one of ``worker``'s slots for a whole step (its retries included)."""
        w = self._workers.get(worker)
        if w is None:
            w = self._workers[worker] = anyio.CapacityLimiter(cap)
        async with w:
            yield

    @asynccontextmanager
    async def backend_slot(self, backend: str) -> AsyncIterator[None]:
        """Hold one slot of ``backend`` for one attempt (released during retry back-off)."""
        b = self._backends.get(backend)
        if b is None:
            b = self._backends[backend] = anyio.CapacityLimiter(self.backend_cap(backend))
        async with b:
            yield

    def snapshot(self) -> dict[str, Any]:
        """Running and waiting steps per backend."""
        return {
            name: {
                "running": lim.borrowed_tokens,
                "cap": int(lim.total_tokens),
                "waiting": lim.statistics().tasks_waiting,
            }
            for name, lim in sorted(self._backends.items())
        }
