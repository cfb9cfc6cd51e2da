"""Choosing a plan's workers from the dispatch's candidates, by role or by model.

A worker whose role is read-only (``reviewer``, ``planner``, ... : ``READ_ONLY_ROLES``) can review;
any other role can write. Idle workers come first; the order of the candidates decides among equals.
A plan that cannot be staffed raises ``UsageError`` saying what it needs and what it was given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mcp_orchestrator.contracts import WorkerRecord
from mcp_orchestrator.errors import UsageError
from mcp_orchestrator.runtimes.cli.templates import is_read_only

__all__ = ["Picker", "describe", "is_reviewer", "is_writer", "missing", "of_model"]

MAX_PARALLEL_WRITERS = 8


def is_writer(worker: WorkerRecord) -> bool:
    """Whether ``worker``'s own role lets it write."""
    return not is_read_only(worker.role)


def is_reviewer(worker: WorkerRecord) -> bool:
    """Whether ``worker``'s own role is a read-only one."""
    return is_read_only(worker.role)


def describe(workers: Iterable[WorkerRecord]) -> str:
    """``"a (codex_cli, writer), b (mock, reviewer)"``, or ``"no workers"``."""
    shown = [f"{w.name} ({w.model}, {w.role})" for w in workers]
    return ", ".join(shown) if shown else "no workers"


def missing(strategy: str, needs: str, candidates: list[WorkerRecord]) -> UsageError:
    """The error of a plan that cannot be staffed."""
    return UsageError(
        f"{strategy} needs {needs}; you gave: {describe(candidates)}.",
        hint="Spawn the missing workers with spawn_worker (set model and role), or list them in workers.",
    )


class Picker:
    """Takes workers out of the candidates one by one, never the same worker twice."""

    def __init__(self, candidates: list[WorkerRecord]) -> None:
        # Stable: idle workers first, then the candidates' own order.
        self._left = sorted(candidates, key=lambda w: w.status != "idle")

    def take(
        self, *tests: Callable[[WorkerRecord], bool], prefer: Callable[[WorkerRecord], bool] | None = None
    ) -> WorkerRecord | None:
        """The first worker passing every test (one that ``prefer`` likes, if any); ``None`` when none does."""
        fit = [w for w in self._left if all(t(w) for t in tests)]
        if prefer is not None:
            fit = [w for w in fit if prefer(w)] + [w for w in fit if not prefer(w)]
        if not fit:
            return None
        self._left.remove(fit[0])
        return fit[0]

    def take_all(self, *tests: Callable[[WorkerRecord], bool], limit: int = MAX_PARALLEL_WRITERS) -> list[WorkerRecord]:
        """Up to ``limit`` workers passing every test."""
        out: list[WorkerRecord] = []
        while len(out) < limit:
            w = self.take(*tests)
            if w is None:
                break
            out.append(w)
        return out


def of_model(model: str) -> Callable[[WorkerRecord], bool]:
    """A test: the worker runs ``model``."""
    return lambda w: w.model == model
