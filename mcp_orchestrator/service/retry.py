"""Bounded retries of transient step failures: capped exponential back-off with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

from mcp_orchestrator.config import Settings

__all__ = ["RetryPolicy"]

# A path that may work a moment later. `auth`, `canceled`, bad input and bad output never retry.
TRANSIENT = frozenset({"unavailable", "rate_limited"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a step is retried."""

    attempts: int = 3
    base_seconds: float = 0.5
    cap_seconds: float = 10.0
    total_seconds: float = 120.0

    @classmethod
    def from_settings(cls, s: Settings) -> RetryPolicy:
        """The policy configured for this server."""
        return cls(s.retry_attempts, s.retry_base_seconds, s.retry_cap_seconds, s.retry_total_seconds)

    @staticmethod
    def transient(failure_class: str, output_bytes: int) -> bool:
        """Worth retrying: a transient class, or a crash that printed nothing."""
        return failure_class in TRANSIENT or (failure_class == "process_error" and output_bytes == 0)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Back-off before attempt ``attempt + 1``: uniform in [0, min(cap, base * 2**(attempt-1))]."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        return (rng or random).uniform(0.0, ceiling)

    def allows(self, attempt: int, spent_seconds: float, delay: float, remaining: float | None) -> bool:
        """Whether another attempt fits the bounds (count, total retry time, the run's deadline)."""
        if attempt >= self.attempts or spent_seconds + delay > self.total_seconds:
            return False
        return remaining is None or delay < remaining
