"""Helpers for the gateway tests: a clock that moves only when told, fixtures' paths, outcomes with usage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from mcp_orchestrator.contracts import FailureClass, Usage
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.runtimes.base import StepOutcome

__all__ = ["FIXTURES", "FakeClock", "answer", "failing", "wait_until"]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gateway"


class FakeClock:
    """A monotonic clock for breakers and health windows: time passes only through ``advance``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds


def answer(input_tokens: int = 100, output_tokens: int = 50, text: str = "ok") -> Callable[[], Awaitable[StepOutcome]]:
    """An attempt function whose call succeeds at once with that usage."""

    async def run() -> StepOutcome:
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens)
        return StepOutcome(text=text, usage=usage)

    return run


def failing(failure_class: FailureClass, message: str = "scripted") -> Callable[[], Awaitable[StepOutcome]]:
    """An attempt function whose call fails at once with ``failure_class``."""

    async def run() -> StepOutcome:
        raise RunFailure(failure_class, message)

    return run


async def wait_until(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Poll ``condition()`` until it holds, for state outside this process (/proc, files) that no event reports.

    Bounded by ``fail_after(limit)``; fails naming ``what``.
    """
    try:
        with anyio.fail_after(limit):
            while True:
                if condition():
                    return
                await anyio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
