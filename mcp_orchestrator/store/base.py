"""The run store seam: where workers, runs and the panic state live."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mcp_orchestrator.contracts import PanicState, RunRecord, RunSummary, WorkerRecord

__all__ = ["RunFilter", "RunStore"]


@dataclass(frozen=True)
class RunFilter:
    """Which runs ``list_runs`` returns; ``None`` matches anything."""

    worker_name: str | None = None
    agent_id: str | None = None
    status: str | None = None
    strategy: str | None = None


class RunStore(ABC):
    """Durable storage for workers, runs and the panic state.

    Implementations must be safe for several processes sharing one location: every
    write is atomic and every read-modify-write happens under a lock.
    """

    @abstractmethod
    def create_run(self, run: RunRecord, *, keyed: bool = True) -> RunRecord:
        """Store a new run. With an idempotency key already used by the same agent, return that run instead
        (``keyed=False``: the key was settled elsewhere, e.g. by the cluster; the run is stored as given)."""

    @abstractmethod
    def update_run(self, run_id: str, change: Callable[[RunRecord], RunRecord]) -> RunRecord:
        """Apply ``change`` to the stored run under a lock and store the result."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """Load one run; ``NotFound`` if absent."""

    @abstractmethod
    def list_runs(self, flt: RunFilter, limit: int, cursor: str | None) -> tuple[list[RunSummary], str | None]:
        """A page of runs newest first, and the cursor of the next page."""

    @abstractmethod
    def active_run_ids(self) -> list[str]:
        """Runs that have not reached a terminal status."""

    @abstractmethod
    def put_worker(self, worker: WorkerRecord, *, create: bool = False) -> WorkerRecord:
        """Store a worker; with ``create``, refuse a name that is taken by a live worker."""

    @abstractmethod
    def update_worker(self, name: str, change: Callable[[WorkerRecord], WorkerRecord]) -> WorkerRecord:
        """Apply ``change`` to the stored worker under a lock."""

    @abstractmethod
    def get_worker(self, name: str) -> WorkerRecord:
        """Load one worker; ``NotFound`` if absent."""

    @abstractmethod
    def list_workers(self) -> list[WorkerRecord]:
        """Every stored worker, by name."""

    @abstractmethod
    def get_panic(self) -> PanicState:
        """The panic state (disengaged when never set)."""

    @abstractmethod
    def set_panic(self, state: PanicState) -> PanicState:
        """Store the panic state."""

    @abstractmethod
    def step_output_path(self, run_id: str, index: int) -> Path:
        """Where a step's full output is spooled."""
