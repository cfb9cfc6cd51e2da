"""Circuit breakers, one per endpoint.

::

    closed --(errorRate over minCalls in the window, or consecutiveFailures in a row)--> open
    open --(cooldownSeconds passed)--> half_open: exactly one probe is admitted
    half_open --probe succeeds--> closed          half_open --probe fails--> open (a new cooldown)
    any --auth failure--> misconfigured: nothing is admitted, no probe ever, until the endpoint's
                          configuration (its fingerprint) changes or an operator resets it
                          (``authFailFast: false`` turns this off)

Only the failure classes in ``BreakerConfig.classes`` (default ``unavailable``, ``rate_limited``) count
against an endpoint; other failures (a task that timed out, bad output) are neither success nor failure,
and a probe that ends that way gives its turn back. The clock is injected, so tests need no sleeps.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from mcp_orchestrator.contracts import FailureClass
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.gateway.config import BreakerConfig
from mcp_orchestrator.gateway.health import EndpointKey

__all__ = ["BreakerBoard", "BreakerState", "CircuitBreaker", "CircuitOpen"]

BreakerState = Literal["closed", "open", "half_open", "misconfigured"]


class CircuitOpen(RunFailure):
    """A step was not sent to an endpoint whose circuit is open or that is misconfigured.

    Its class is the one that opened the circuit (``auth`` for a misconfigured endpoint), so callers
    that fall back on ``unavailable``/``rate_limited``/``auth`` route it to the next candidate; it is
    never worth a retry on the same endpoint.
    """

    def __init__(self, key: EndpointKey, state: BreakerState, failure_class: FailureClass, message: str) -> None:
        super().__init__(failure_class, message)
        self.key = key
        self.state = state


class CircuitBreaker:
    """The breaker of one endpoint."""

    def __init__(self, config: BreakerConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or BreakerConfig()
        self._clock = clock
        self._state: BreakerState = "closed"
        self._window: deque[tuple[float, bool]] = deque(maxlen=self.config.window_calls)
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_out = False
        self._fingerprint: str | None = None
        self.trips = 0
        self.last_failure: tuple[FailureClass, str] | None = None

    # ---- reading ------------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The state now (an open circuit whose cooldown passed reads ``half_open``)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.config.cooldown_seconds:
            return "half_open"
        return self._state

    def retry_in(self) -> float | None:
        """Seconds until an open circuit admits its probe (``None`` unless open)."""
        if self.state != "open":
            return None
        return max(self._opened_at + self.config.cooldown_seconds - self._clock(), 0.0)

    def _counts(self) -> tuple[int, int]:
        horizon = self._clock() - self.config.window_seconds
        while self._window and self._window[0][0] < horizon:
            self._window.popleft()
        return len(self._window), sum(1 for _, failed in self._window if failed)

    # ---- admission ----------------------------------------------------------------------------

    def allow(self) -> bool:
        """Whether a call may go to the endpoint now; in ``half_open`` only the one probe may."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probe_out:
            self._state, self._probe_out = "half_open", True
            return True
        return False

    def on_success(self) -> None:
        """An admitted call succeeded."""
        if self._state == "half_open":
            self._close()
        elif self._state == "closed":
            self._window.append((self._clock(), False))
            self._consecutive = 0

    def on_failure(self, failure_class: FailureClass, message: str = "", fingerprint: str | None = None) -> None:
        """An admitted call failed with ``failure_class``."""
        if failure_class == "auth" and self.config.auth_fail_fast:
            self._state, self._probe_out, self._fingerprint = "misconfigured", False, fingerprint
            self.last_failure = (failure_class, message)
            return
        if failure_class not in self.config.classes:
            self.on_release()
            return
        self.last_failure = (failure_class, message)
        if self._state == "half_open":
            self._open()
        elif self._state == "closed":
            self._window.append((self._clock(), True))
            self._consecutive += 1
            calls, failures = self._counts()
            rate_tripped = calls >= self.config.min_calls and failures / calls >= self.config.error_rate
            if self._consecutive >= self.config.consecutive_failures or rate_tripped:
                self._open()

    def on_release(self) -> None:
        """An admitted call ended without a verdict (canceled, or a failure that is not the endpoint's)."""
        if self._state == "half_open":
            self._probe_out = False

    def reconfigured(self, fingerprint: str | None) -> None:
        """A misconfigured endpoint whose configuration changed since it failed gets a fresh start."""
        if self._state == "misconfigured" and fingerprint != self._fingerprint:
            self.reset()

    def reset(self) -> None:
        """Back to ``closed`` with an empty window (an operator's reset)."""
        self._close()
        self.last_failure = None

    def _open(self) -> None:
        self._state, self._opened_at, self._probe_out = "open", self._clock(), False
        self.trips += 1

    def _close(self) -> None:
        self._state, self._probe_out, self._fingerprint = "closed", False, None
        self._window.clear()
        self._consecutive = 0

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state (the failure class only: a message may quote a vendor's error body)."""
        calls, failures = self._counts()
        retry = self.retry_in()
        return {
            "state": self.state,
            "calls": calls,
            "failures": failures,
            "consecutiveFailures": self._consecutive,
            "trips": self.trips,
            "retryInSeconds": None if retry is None else round(retry, 3),
            "probeInFlight": self._probe_out,
            "lastFailureClass": self.last_failure[0] if self.last_failure else None,
        }


class BreakerBoard:
    """The breakers of every endpoint heard from (exempt runtimes have none: always closed)."""

    def __init__(self, config: BreakerConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or BreakerConfig()
        self._clock = clock
        self._breakers: dict[EndpointKey, CircuitBreaker] = {}

    def breaker(self, key: EndpointKey) -> CircuitBreaker | None:
        """The breaker of ``key`` (created closed), or ``None`` for an exempt runtime."""
        if key.runtime in self.config.exempt_runtimes:
            return None
        found = self._breakers.get(key)
        if found is None:
            found = self._breakers[key] = CircuitBreaker(self.config, clock=self._clock)
        return found

    def state(self, key: EndpointKey, fingerprint: str | None = None) -> BreakerState:
        """The state of ``key`` now, without taking a probe."""
        b = self._breakers.get(key)
        if b is None:
            return "closed"
        b.reconfigured(fingerprint)
        return b.state

    def allow(self, key: EndpointKey, fingerprint: str | None = None) -> bool:
        """Admit a call to ``key`` (in ``half_open``, this call is the probe)."""
        b = self.breaker(key)
        if b is None:
            return True
        b.reconfigured(fingerprint)
        return b.allow()

    def refusal(self, key: EndpointKey) -> CircuitOpen:
        """The error of a call that ``allow`` refused."""
        b = self.breaker(key)
        state: BreakerState = b.state if b is not None else "closed"
        last: tuple[FailureClass, str] = (b.last_failure if b else None) or ("unavailable", "")
        if state == "misconfigured":
            why = f"{last[1]} ({key.label} is misconfigured: not tried again until its configuration changes)"
            return CircuitOpen(key, state, "auth", why.strip())
        wait = b.retry_in() if b is not None else None
        after = f"; retry in {wait:.0f} s" if wait is not None else "; its one probe is in flight"
        reason = f" (last: {last[0]}: {last[1][:300]})" if last[1] else ""
        return CircuitOpen(key, state, last[0], f"the circuit of {key.label} is {state}{after}{reason}")

    def record(
        self,
        key: EndpointKey,
        ok: bool,
        failure_class: FailureClass | None = None,
        *,
        message: str = "",
        fingerprint: str | None = None,
    ) -> None:
        """Feed an admitted call's outcome to its breaker."""
        b = self.breaker(key)
        if b is None:
            return
        if ok:
            b.on_success()
        elif failure_class is None:
            b.on_release()
        else:
            b.on_failure(failure_class, message, fingerprint)

    def reset(self, key: EndpointKey | None = None) -> int:
        """Close one breaker, or all; returns how many were reset."""
        targets = list(self._breakers.values()) if key is None else [b for k, b in self._breakers.items() if k == key]
        for b in targets:
            b.reset()
        return len(targets)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every breaker's state, JSON-ready, in a fixed order."""
        return [{"key": k.label, **self._breakers[k].snapshot()} for k in sorted(self._breakers)]
