"""The gateway: routes each step to an ordered list of candidate runtimes and guards every call.

``Gateway.route`` lists a step's candidates - the worker's runtime (or the dispatch's) first, then the
alternatives configured for its model - with each one's endpoint, availability, breaker state, score and
whether the policy allows it, ordered by the strategy of the step's role or priority class. ``call`` runs
one attempt on one candidate: the run's budget must admit it, the endpoint's breaker must admit it, and its
outcome feeds the health registry and the breaker. One ``Gateway`` per server process.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import anyio

from mcp_orchestrator.contracts import FailureClass, RuntimeMode, Usage
from mcp_orchestrator.errors import RunFailure
from mcp_orchestrator.gateway.breaker import BreakerBoard, BreakerState
from mcp_orchestrator.gateway.budget import Budget, Estimate
from mcp_orchestrator.gateway.config import GatewayConfig, StrategyName
from mcp_orchestrator.gateway.health import Availability, EndpointKey, HealthRegistry
from mcp_orchestrator.gateway.strategies import BLOCKED, Facts, expected_cost, order

__all__ = [
    "FALLBACK_SAFE",
    "Candidate",
    "Gateway",
    "HedgePlan",
    "Route",
    "alternative_blocked",
    "endpoint_of",
    "sdk_credentials",
]

# Failures that say "this path cannot serve now", not "this task is wrong": worth another runtime.
FALLBACK_SAFE: frozenset[str] = frozenset({"unavailable", "rate_limited", "auth"})
TEXT_ONLY: frozenset[str] = frozenset({"openai_sdk", "google_sdk", "mock"})
_RUNS_MODEL: dict[str, frozenset[str]] = {
    "cli": frozenset({"codex_cli", "gemini_cli", "claude_cli"}),
    "openai_sdk": frozenset({"codex_cli"}),
    "google_sdk": frozenset({"gemini_cli"}),
    "mock": frozenset({"codex_cli", "gemini_cli", "claude_cli", "mock"}),
}
_SDK_KEYS: dict[str, tuple[str, ...]] = {
    "openai_sdk": ("OPENAI_API_KEY",),
    "google_sdk": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}
_SDK_PREFIXES: dict[str, tuple[str, ...]] = {"openai_sdk": ("OPENAI_",), "google_sdk": ("GEMINI_", "GOOGLE_")}
_SDK_URLS: dict[str, tuple[str, str]] = {
    "openai_sdk": ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "google_sdk": ("GOOGLE_GEMINI_BASE_URL", "https://generativelanguage.googleapis.com"),
}
MAX_SNAPSHOT = 64


class _Outcome(Protocol):
    @property
    def usage(self) -> Usage | None: ...


OutcomeT = TypeVar("OutcomeT", bound=_Outcome)


def endpoint_of(model: str, runtime: str, environ: Mapping[str, str]) -> str:
    """Where ``model`` on ``runtime`` goes: the CLI binary, the SDK's base URL (host and path), or ``local``."""
    if runtime == "cli":
        from mcp_orchestrator.runtimes.cli.templates import ADAPTERS  # the CLIs' static facts

        adapter = ADAPTERS.get(model)
        return (environ.get(adapter.bin_env, "").strip() or adapter.binary) if adapter else "none"
    if runtime in _SDK_URLS:
        var, default = _SDK_URLS[runtime]
        url = urlsplit(environ.get(var, "").strip() or default)
        return f"{url.hostname or ''}{f':{url.port}' if url.port else ''}{url.path.rstrip('/')}" or "default"
    return "local"


def alternative_blocked(
    model: str, first: str, runtime: str, role: str, env: Mapping[str, str], *, credentials: bool = True
) -> str:
    """Why the policy rules ``runtime`` out as an alternative to ``first`` ("" when it does not).

    The one statement of the fallback rules: the runtime must run the model, an SDK needs its
    credentials (not checked with ``credentials=False``: the steps run on other machines, whose
    environment holds them), and a role that may change files never moves from its CLI to a text-only runtime.
    """
    if runtime == first:
        return ""
    if model not in _RUNS_MODEL.get(runtime, frozenset()):
        return f"{runtime} cannot run {model}"
    keys = _SDK_KEYS.get(runtime, ()) if credentials else ()
    if keys and not any(env.get(k) for k in keys):
        return f"no {' or '.join(keys)}"
    if first == "cli" and runtime in TEXT_ONLY and not _read_only(role):
        return f"a {role} on cli may change files; {runtime} answers in text only"
    return ""


def sdk_credentials(runtime: str) -> tuple[str, ...]:
    """The variables one of which an SDK runtime needs (empty for runtimes without credentials)."""
    return _SDK_KEYS.get(runtime, ())


def has_credentials(mode: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the credentials an SDK runtime needs are present (their values are never read out)."""
    env = os.environ if environ is None else environ
    return any(env.get(k) for k in sdk_credentials(mode))


def _read_only(role: str) -> bool:
    from mcp_orchestrator.runtimes.cli.templates import is_read_only  # the CLI runtime's read-only roles

    return is_read_only(role)


@dataclass(frozen=True)
class Candidate:
    """One runtime a step may run on, as the gateway saw it when routing."""

    runtime: RuntimeMode
    key: EndpointKey
    availability: Availability
    breaker: BreakerState
    score: float | None
    allowed: bool = True
    reason: str = ""

    @property
    def eligible(self) -> bool:
        """Allowed by the policy and admitted by its breaker when routed."""
        return self.allowed and self.breaker not in BLOCKED


@dataclass(frozen=True)
class Route:
    """A step's candidates in the order to try them."""

    strategy: StrategyName
    model: str
    first: RuntimeMode
    candidates: tuple[Candidate, ...]
    may_fall_back: bool = True

    @property
    def chosen(self) -> RuntimeMode | None:
        """The runtime to try first; ``None`` when no candidate is eligible."""
        return next((c.runtime for c in self.candidates if c.eligible), None)

    def runtimes(self) -> list[RuntimeMode]:
        """The eligible runtimes, in order."""
        return [c.runtime for c in self.candidates if c.eligible]

    def key(self, runtime: RuntimeMode) -> EndpointKey:
        """The endpoint of ``runtime`` in this route."""
        return next(c.key for c in self.candidates if c.runtime == runtime)

    def next_after(
        self, runtime: RuntimeMode, failure_class: str, exclude: tuple[RuntimeMode, ...] = ()
    ) -> RuntimeMode | None:
        """Where a step that failed on ``runtime`` with ``failure_class`` goes next, or ``None``."""
        if not self.may_fall_back or failure_class not in FALLBACK_SAFE:
            return None
        return next((r for r in self.runtimes() if r != runtime and r not in exclude), None)

    def as_dict(self) -> dict[str, Any]:
        """The routing decision, shaped like the ``RoutingDecision`` contract."""
        return {
            "strategy": self.strategy,
            "chosen": self.chosen,
            "candidates": [
                {
                    "runtime_mode": c.runtime,
                    "endpoint": c.key.endpoint,
                    "availability": c.availability,
                    "breaker": c.breaker,
                    "score": None if c.score is None else round(c.score, 6),
                    "eligible": c.eligible,
                    "reason": c.reason or (f"circuit {c.breaker}" if not c.eligible else ""),
                }
                for c in self.candidates
            ],
        }


@dataclass(frozen=True)
class HedgePlan:
    """The runtimes a hedged step starts (primary first) and the silence that starts the next."""

    runtimes: tuple[RuntimeMode, ...]
    delay: float


class Gateway:
    """Health, breakers, strategies and budgets for one server process."""

    def __init__(
        self,
        config: GatewayConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
        credentials: bool = True,
    ) -> None:
        self.config = config or GatewayConfig()
        self._clock = clock
        self._environ = environ
        self._credentials = credentials  # False: SDK credentials are the workers' (Temporal), not this process's
        self.health = HealthRegistry(self.config.health, clock=clock)
        self.breakers = BreakerBoard(self.config.breaker, clock=clock)
        self._names: dict[tuple[str, ...], tuple[int, float, list[str]]] = {}

    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def key(self, model: str, runtime: RuntimeMode) -> EndpointKey:
        """The endpoint ``model`` on ``runtime`` reaches now."""
        return EndpointKey(model, runtime, endpoint_of(model, runtime, self._env()))

    def fingerprint(self, key: EndpointKey) -> str:
        """A digest of the configuration an endpoint depends on (kept in memory, never shown)."""
        env = self._env()
        if key.runtime == "cli":
            from mcp_orchestrator.runtimes.cli.templates import ADAPTERS

            adapter = ADAPTERS.get(key.model)
            prefixes = (*adapter.env_prefixes, adapter.bin_env) if adapter else ()
        else:
            prefixes = _SDK_PREFIXES.get(key.runtime, ())
        items = [(k, env[k]) for k in self._names_with(prefixes, env) if k in env] if prefixes else []
        return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]

    def _names_with(self, prefixes: tuple[str, ...], env: Mapping[str, str]) -> list[str]:
        """The sorted names in ``env`` that start with ``prefixes``, rescanned when the environment's size
        changes or once a second (a scan of ``os.environ`` cost ~0.1 ms, three times per step)."""
        now = time.monotonic()
        cached = self._names.get(prefixes)
        if cached is not None and cached[0] == len(env) and now - cached[1] < 1.0:
            return cached[2]
        names = sorted(k for k in env if k.startswith(prefixes))
        self._names[prefixes] = (len(env), now, names)
        return names

    # ---- routing ------------------------------------------------------------------------------

    def _policy(self, model: str, first: RuntimeMode, runtime: RuntimeMode, role: str) -> str:
        return alternative_blocked(model, first, runtime, role, self._env(), credentials=self._credentials)

    def route(
        self,
        *,
        model: str,
        runtime: RuntimeMode,
        role: str = "writer",
        priority: str = "interactive",
        fallback_policy: str = "on_error",
        pinned: bool = False,
    ) -> Route:
        """The candidates of a step of ``model`` whose worker (or dispatch) asked for ``runtime``.

        ``pinned`` (a runtime named by the dispatch) keeps that runtime first whatever the strategy;
        ``fallbackPolicy: never`` leaves it the only candidate.
        """
        configured = self.config.candidates_of(model)
        names: list[RuntimeMode] = [runtime]
        if fallback_policy == "on_error" and runtime in configured:
            names += [r for r in configured if r != runtime]
        strategy: StrategyName = "pinned" if pinned else self.config.strategy_for(role, priority)
        facts = []
        reasons: dict[str, str] = {}
        for i, name in enumerate(names):
            key = self.key(model, name)
            reasons[name] = self._policy(model, runtime, name, role)
            state = self.breakers.state(key, self.fingerprint(key))
            facts.append(Facts(key, i, self.health.stats(key), state, allowed=not reasons[name]))
        ordered = order(strategy, facts, self.config, self.health)
        candidates = tuple(
            Candidate(f.key.runtime, f.key, f.stats.availability, f.breaker, value, f.allowed, reasons[f.key.runtime])
            for f, value in ordered
        )
        return Route(strategy, model, runtime, candidates, may_fall_back=fallback_policy == "on_error")

    # ---- calls --------------------------------------------------------------------------------

    def budget(self, max_tokens: int | None = None, max_cost_usd: float | None = None) -> Budget:
        """A run's budget, priced by this gateway's price table."""
        return Budget(max_tokens=max_tokens, max_cost_usd=max_cost_usd, prices=dict(self.config.prices))

    def estimate(self, key: EndpointKey, budget: Budget | None = None) -> Estimate:
        """What one call of ``key`` is expected to cost: its recorded average, else the run's, else nothing."""
        st = self.health.stats(key)
        if st.avg_input_tokens is not None and st.avg_output_tokens is not None:
            price = self.config.price_of(key.model, key.runtime)
            cost = price.cost(st.avg_input_tokens, st.avg_output_tokens) if price else 0.0
            return Estimate(st.avg_input_tokens + st.avg_output_tokens, cost)
        return (budget.average() if budget is not None else None) or Estimate()

    def record(
        self,
        key: EndpointKey,
        latency_s: float,
        ok: bool,
        failure_class: FailureClass | None = None,
        usage: Usage | None = None,
        *,
        message: str = "",
    ) -> None:
        """Feed one attempt's outcome to the health registry and the endpoint's breaker."""
        self.health.record(key, latency_s, ok, failure_class, usage)
        self.breakers.record(key, ok, failure_class, message=message, fingerprint=self.fingerprint(key))

    async def call(
        self, key: EndpointKey, fn: Callable[[], Awaitable[OutcomeT]], *, budget: Budget | None = None
    ) -> OutcomeT:
        """Run one attempt on ``key`` if the budget and the breaker admit it; record how it went.

        Raises ``BudgetExceeded`` or ``CircuitOpen`` without calling ``fn``; re-raises what ``fn`` raises.
        """
        reservation = budget.reserve(self.estimate(key, budget)) if budget is not None else None
        if not self.breakers.allow(key, self.fingerprint(key)):
            if budget is not None:
                budget.release(reservation)
            raise self.breakers.refusal(key)
        started = self._clock()
        try:
            result = await fn()
        except RunFailure as e:
            self.record(key, self._clock() - started, False, e.failure_class, message=e.message)
            if budget is not None:
                budget.release(reservation)
            raise
        except BaseException as e:  # canceled (a hedge loser, a stop) or a crash: the reservation ends too
            cancel = isinstance(e, anyio.get_cancelled_exc_class())
            self.record(key, self._clock() - started, False, "canceled" if cancel else "internal")
            if budget is not None:
                budget.release(reservation)
            raise
        self.record(key, self._clock() - started, True, usage=result.usage)
        if budget is not None:
            budget.charge(result.usage, key.model, key.runtime, reservation)
        return result

    def hedge_plan(self, route: Route, *, role: str, priority: str) -> HedgePlan | None:
        """The runtimes a step starts when it is hedged, or ``None``.

        Opt-in per role or priority class; only read-only roles (two writers in one workdir would race);
        with ``hedgeCostCap``, only hedges whose expected price fits under it (an unpriced one never does).
        """
        cfg = self.config.hedge
        runtimes = route.runtimes()
        if not cfg.applies(role, priority) or not _read_only(role) or len(runtimes) < 2:
            return None
        extra: list[RuntimeMode] = []
        spent = 0.0
        for runtime in runtimes[1:]:
            if len(extra) >= cfg.max_hedges:
                break
            if cfg.hedge_cost_cap is not None:
                key = route.key(runtime)
                cost = expected_cost(key, self.health.stats(key), self.config, self.health)
                if cost is None or spent + cost > cfg.hedge_cost_cap:
                    continue
                spent += cost
            extra.append(runtime)
        return HedgePlan((runtimes[0], *extra), cfg.hedge_delay_seconds) if extra else None

    # ---- operators ----------------------------------------------------------------------------

    def reset(self, key: EndpointKey | None = None) -> int:
        """An operator's reset: close one endpoint's breaker (or all) and forget its health window."""
        self.health.reset(key)
        return self.breakers.reset(key)

    def snapshot(self) -> dict[str, Any]:
        """Strategies, every endpoint's health and breaker, JSON-ready (for the heartbeat and diagnostics)."""
        health = {row["key"]: row for row in self.health.snapshot()}
        breakers = {row["key"]: row for row in self.breakers.snapshot()}
        endpoints = []
        for label in sorted(set(health) | set(breakers))[:MAX_SNAPSHOT]:
            row = dict(health.get(label, {"key": label, "availability": "healthy"}))
            row["breaker"] = {k: v for k, v in breakers.get(label, {"state": "closed"}).items() if k != "key"}
            endpoints.append(row)
        return {
            "strategy": self.config.strategy,
            "strategyByRole": dict(self.config.strategy_by_role),
            "strategyByPriority": dict(self.config.strategy_by_priority),
            "endpoints": endpoints,
        }
