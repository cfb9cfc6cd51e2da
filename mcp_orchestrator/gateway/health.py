"""The health registry: a rolling window of latency, errors and token usage per (model, runtime, endpoint).

Every attempt is recorded (``record``). The window is bounded by count (``windowCalls``) and by age
(``windowSeconds``); an endpoint without recent calls is ``healthy``. Outcomes that say nothing about the
endpoint (``canceled``, ``deadline_exceeded``, ``interrupted``, ``budget_exceeded``) are kept but count
neither as calls nor as errors. In memory, per process; the clock is injectable for deterministic tests.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from mcp_orchestrator.contracts import RuntimeMode, Usage
from mcp_orchestrator.gateway.config import HealthConfig

__all__ = ["NEUTRAL", "Availability", "EndpointKey", "HealthRegistry", "HealthStats"]

Availability = Literal["healthy", "degraded", "down"]

# Not the endpoint's doing: a hedge loser, a run's deadline, a crashed server, a refused budget.
NEUTRAL: frozenset[str] = frozenset({"canceled", "deadline_exceeded", "interrupted", "budget_exceeded"})

MAX_KEYS = 256


@dataclass(frozen=True, order=True)
class EndpointKey:
    """Where a step runs: a model through one runtime at one endpoint (a binary, a base URL)."""

    model: str
    runtime: RuntimeMode
    endpoint: str

    @property
    def label(self) -> str:
        """``codex_cli/cli@codex``."""
        return f"{self.model}/{self.runtime}@{self.endpoint}"


@dataclass(frozen=True)
class _Sample:
    at: float
    latency_s: float
    ok: bool
    failure_class: str | None
    input_tokens: int | None
    output_tokens: int | None


@dataclass(frozen=True)
class HealthStats:
    """One endpoint's window, summarized."""

    calls: int = 0
    errors: int = 0
    neutral: int = 0
    error_rate: float = 0.0
    consecutive_failures: int = 0
    latency_p50: float | None = None
    latency_mean: float | None = None
    avg_input_tokens: float | None = None
    avg_output_tokens: float | None = None
    last_failure_class: str | None = None
    availability: Availability = "healthy"

    @property
    def avg_tokens(self) -> float | None:
        """Average total tokens of a successful call, when any reported usage."""
        if self.avg_input_tokens is None or self.avg_output_tokens is None:
            return None
        return self.avg_input_tokens + self.avg_output_tokens

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready, camelCase view (no messages: they may quote a vendor's error body)."""
        return {
            "availability": self.availability,
            "calls": self.calls,
            "errors": self.errors,
            "errorRate": round(self.error_rate, 4),
            "consecutiveFailures": self.consecutive_failures,
            "latencyP50Ms": None if self.latency_p50 is None else int(self.latency_p50 * 1000),
            "avgTokens": None if self.avg_tokens is None else round(self.avg_tokens, 1),
            "lastFailureClass": self.last_failure_class,
        }


class HealthRegistry:
    """Rolling per-endpoint statistics fed by every attempt."""

    def __init__(self, config: HealthConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or HealthConfig()
        self._clock = clock
        self._samples: dict[EndpointKey, deque[_Sample]] = {}

    def record(
        self, key: EndpointKey, latency_s: float, ok: bool, failure_class: str | None = None, usage: Usage | None = None
    ) -> None:
        """Add one attempt's outcome; ``usage`` is the tokens a successful attempt reported."""
        window = self._samples.get(key)
        if window is None:
            if len(self._samples) >= MAX_KEYS:  # bounded: forget the key heard from least recently
                oldest = min(self._samples, key=lambda k: self._samples[k][-1].at if self._samples[k] else 0.0)
                del self._samples[oldest]
            window = self._samples[key] = deque(maxlen=self.config.window_calls)
        sample = _Sample(
            at=self._clock(),
            latency_s=max(latency_s, 0.0),
            ok=ok,
            failure_class=None if ok else (failure_class or "internal"),
            input_tokens=usage.input_tokens if usage is not None else None,
            output_tokens=usage.output_tokens if usage is not None else None,
        )
        window.append(sample)

    def _window(self, key: EndpointKey) -> list[_Sample]:
        window = self._samples.get(key)
        if not window:
            return []
        horizon = self._clock() - self.config.window_seconds
        while window and window[0].at < horizon:
            window.popleft()
        return list(window)

    def stats(self, key: EndpointKey) -> HealthStats:
        """The window of ``key`` as it stands now."""
        samples = self._window(key)
        counted = [s for s in samples if s.ok or s.failure_class not in NEUTRAL]
        if not counted:
            return HealthStats(neutral=len(samples))
        errors = [s for s in counted if not s.ok]
        consecutive = 0
        for s in reversed(counted):
            if s.ok:
                break
            consecutive += 1
        latencies = [s.latency_s for s in counted if s.ok]
        used = [s for s in counted if s.ok and s.input_tokens is not None and s.output_tokens is not None]
        rate = len(errors) / len(counted)
        p50 = statistics.median(latencies) if latencies else None
        stats = HealthStats(
            calls=len(counted),
            errors=len(errors),
            neutral=len(samples) - len(counted),
            error_rate=rate,
            consecutive_failures=consecutive,
            latency_p50=p50,
            latency_mean=statistics.fmean(latencies) if latencies else None,
            avg_input_tokens=statistics.fmean(s.input_tokens or 0 for s in used) if used else None,
            avg_output_tokens=statistics.fmean(s.output_tokens or 0 for s in used) if used else None,
            last_failure_class=errors[-1].failure_class if errors else None,
        )
        return _with_availability(stats, self.config)

    def availability(self, key: EndpointKey) -> Availability:
        """``healthy``, ``degraded`` or ``down``."""
        return self.stats(key).availability

    def keys(self) -> list[EndpointKey]:
        """Every endpoint heard from, in a fixed order."""
        return sorted(self._samples)

    def model_usage(self, model: str) -> tuple[float, float] | None:
        """Average (input, output) tokens of a successful call of ``model`` over all its endpoints."""
        seen = [st for st in (self.stats(k) for k in self.keys() if k.model == model) if st.avg_tokens is not None]
        if not seen:
            return None
        return (
            statistics.fmean(st.avg_input_tokens or 0.0 for st in seen),
            statistics.fmean(st.avg_output_tokens or 0.0 for st in seen),
        )

    def reset(self, key: EndpointKey | None = None) -> None:
        """Forget one endpoint's window, or every window."""
        if key is None:
            self._samples.clear()
        else:
            self._samples.pop(key, None)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every endpoint's summary, JSON-ready."""
        return [{"key": k.label, **self.stats(k).as_dict()} for k in self.keys()]


def _with_availability(stats: HealthStats, cfg: HealthConfig) -> HealthStats:
    enough = stats.calls >= cfg.min_calls
    if stats.consecutive_failures >= cfg.down_consecutive or (enough and stats.error_rate >= cfg.down_error_rate):
        availability: Availability = "down"
    elif (
        stats.consecutive_failures > 0
        or (enough and stats.error_rate >= cfg.degraded_error_rate)
        or (
            cfg.degraded_latency_seconds is not None
            and stats.latency_p50 is not None
            and stats.latency_p50 > cfg.degraded_latency_seconds
        )
    ):
        availability = "degraded"
    else:
        availability = "healthy"
    return replace(stats, availability=availability)
