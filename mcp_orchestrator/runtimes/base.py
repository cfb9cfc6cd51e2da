"""The worker runtime seam: run one step of one worker, report output as it streams."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from mcp_orchestrator.contracts import RuntimeMode, Usage, WorkerRecord

__all__ = ["OutputSink", "StepContext", "StepOutcome", "WorkerRuntime", "bound_text"]


def bound_text(text: str, cap: int) -> tuple[str, bool]:
    """Keep the head and tail of ``text`` within ``cap`` characters; say whether it was cut."""
    if len(text) <= cap:
        return text, False
    half = max(cap // 2 - 20, 0)
    cut = len(text) - 2 * half
    return f"{text[:half]}\n…[{cut} characters cut]…\n{text[-half:] if half else ''}", True


class OutputSink:
    """Bounded capture of a step's output.

    Counts every byte, spools up to ``spool_cap`` bytes to ``spool_path`` (served by the
    ``runs://{runId}/steps/{index}/output`` resource) and keeps only a head and a tail in
    memory, so a huge output never grows the server's memory.
    """

    def __init__(self, spool_path: Path | None, *, excerpt_bytes: int = 8192, spool_cap: int = 64 << 20) -> None:
        self.spool_path = spool_path
        self.spool_cap = spool_cap
        self.total_bytes = 0
        self.spooled_bytes = 0
        self.last_activity = time.monotonic()
        self._head_cap = excerpt_bytes // 2
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_len = 0
        self._tail_cap = excerpt_bytes - self._head_cap
        self._file: IO[bytes] | None = None

    def write(self, data: bytes) -> None:
        """Take a chunk of output."""
        if not data:
            return
        self.last_activity = time.monotonic()
        self.total_bytes += len(data)
        self._spool(data)
        room = self._head_cap - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail.append(data)
            self._tail_len += len(data)
            while self._tail_len - len(self._tail[0]) >= self._tail_cap:
                self._tail_len -= len(self._tail.popleft())

    def _spool(self, data: bytes) -> None:
        if self.spool_path is None or self.spooled_bytes >= self.spool_cap:
            return
        if self._file is None:
            self.spool_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.spool_path.open("ab")
        chunk = data[: self.spool_cap - self.spooled_bytes]
        self._file.write(chunk)
        self.spooled_bytes += len(chunk)

    def excerpt(self) -> tuple[str, bool]:
        """Head and tail of everything written, and whether anything was left out."""
        tail = b"".join(self._tail)[-self._tail_cap :] if self._tail else b""
        truncated = self.total_bytes > len(self._head) + len(tail)
        if not truncated:  # decode as one: a character split between head and tail stays whole
            return (bytes(self._head) + tail).decode("utf-8", "replace"), False
        head = self._head.decode("utf-8", "replace")
        cut = self.total_bytes - len(self._head) - len(tail)
        return f"{head}\n…[{cut} bytes cut]…\n{tail.decode('utf-8', 'replace')}", True

    def close(self) -> None:
        """Flush and close the spool file."""
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class StepContext:
    """Everything a runtime needs to run one step."""

    run_id: str
    step_index: int
    prompt: str
    worker: WorkerRecord
    workdir: Path
    output: OutputSink
    report: Callable[[str], Awaitable[None]]
    continue_session: bool = False
    extra_env: tuple[str, ...] = ()
    attempt: int = 1


@dataclass
class StepOutcome:
    """What a successful step produced."""

    text: str
    exit_code: int | None = None
    usage: Usage | None = None
    session_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class WorkerRuntime(ABC):
    """Runs steps. Failures raise ``RunFailure`` with a shared failure class; cancellation
    arrives as anyio cancellation and must leave no process or connection behind."""

    mode: ClassVar[RuntimeMode]

    @abstractmethod
    async def run_step(self, ctx: StepContext) -> StepOutcome:
        """Run one step to completion."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release whatever the runtime holds."""
