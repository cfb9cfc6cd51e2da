"""What a run's execution needs from the service that hosts it: ``RunHost``, a narrow structural interface.

``RunExecution`` (a run's steps), the hedged first attempt and the Temporal follower receive the
``Orchestrator`` as a ``RunHost``, so they depend on this interface and not on the orchestrator's module,
and the service's import graph has no cycle. The ``Orchestrator`` satisfies it without naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ParamSpec, Protocol, TypeVar

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import ProcessRef, RunError, RunRecord, RuntimeMode, Step, WorkerRecord
from mcp_orchestrator.engine import ExecutionEngine, StepCaps
from mcp_orchestrator.gateway import Gateway
from mcp_orchestrator.observability import Redactor
from mcp_orchestrator.runtimes import WorkerRuntime
from mcp_orchestrator.service.events import EventBus
from mcp_orchestrator.service.marks import WorkerMarks
from mcp_orchestrator.store import JsonRunStore

__all__ = ["Outcome", "RunHost", "StoreHost"]

P = ParamSpec("P")
T = TypeVar("T")
Outcome = tuple[str, str, RunError | None]  # how a run ended: status, summary, error


class StoreHost(Protocol):
    """The orchestrator as its registries see it: settings, store and engine (the workers registry on Temporal)."""

    @property
    def settings(self) -> Settings:
        """The process's settings."""

    @property
    def store(self) -> JsonRunStore:
        """The run store."""

    @property
    def engine(self) -> ExecutionEngine:
        """The execution engine (inside ``running()``)."""

    async def io(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking store work off the event loop."""

    def read_now(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Read one small document on the event loop (see ``OrchestratorCore.read_now``)."""

    def start_soon(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str | None = None) -> None:
        """Start a background task in the host's task group (inside ``running()``)."""


class RunHost(StoreHost, Protocol):
    """The orchestrator as a run's execution sees it."""

    @property
    def events(self) -> EventBus:
        """Where run events are published."""

    @property
    def process(self) -> ProcessRef:
        """This process's identity (leases, audit)."""

    @property
    def caps(self) -> StepCaps:
        """The per-backend step caps."""

    @property
    def redactor(self) -> Redactor:
        """Redacts secrets from everything stored."""

    @property
    def gateway(self) -> Gateway:
        """Endpoint health, breakers and routing of this process."""

    @property
    def marks(self) -> WorkerMarks:
        """Worker busy/idle marks in flight, written in the background in order per worker."""

    async def runtime(self, mode: RuntimeMode) -> WorkerRuntime:
        """The loaded runtime for ``mode``."""

    async def mark_worker(
        self, name: str, status: str, run_id: str | None, session_id: str | None = None
    ) -> WorkerRecord | None:
        """Set a worker busy or idle."""

    def mark_worker_now(
        self, name: str, status: str, run_id: str | None, session_id: str | None = None
    ) -> WorkerRecord | None:
        """Set a worker busy or idle, blocking (inside a thread hop)."""

    async def finish_run(
        self, run_id: str, status: str, summary: str, error: RunError | None, *, steps: Sequence[Step] = ()
    ) -> RunRecord:
        """Record the end of a run (with ``steps`` that ended but are not stored yet)."""

    async def conclude_run(
        self, run_id: str, decide: Callable[[RunRecord], Outcome], *, steps: Sequence[Step] = ()
    ) -> RunRecord:
        """Record the end of a run as ``decide`` judges it from the run as stored (with ``steps``)."""

    async def get_run(self, run_id: str) -> RunRecord:
        """A run, wherever it is kept."""

    def emit(self, event: str, run_id: str, **fields: Any) -> None:
        """Log a run event."""
