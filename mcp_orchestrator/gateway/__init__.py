"""The model gateway: health-aware routing, circuit breakers, hedging and budgets (issue 8).

- ``HealthRegistry``: a rolling window of latency, errors and usage per (model, runtime, endpoint).
- Strategies ``pinned``, ``latency-first``, ``quality-first``, ``cost-first`` order a step's candidates.
- ``CircuitBreaker`` per endpoint: closed, open, half-open (one probe), misconfigured (auth).
- ``hedge``: start the next candidate when the first is silent; the first success wins.
- ``Budget``: a run's token and cost limits, checked before each attempt.

``Gateway`` puts them together for one server process. Beside the stack, used by the service (and
``config``): imports only ``contracts``, ``errors`` and ``runtimes``. Errors, in the package's one tree::

    OrchestratorError
    ├── RunFailure
    │   └── CircuitOpen         an attempt not sent: its endpoint's circuit is open or misconfigured
    └── BudgetExceeded          an attempt not started: the run's budget would be exceeded
"""

from __future__ import annotations

import typing

from mcp_orchestrator.gateway.hedge import HedgeFailed, HedgeOutcome, HedgeRecord, hedge
from mcp_orchestrator.lazy import lazy_exports as _lazy

if typing.TYPE_CHECKING:
    from mcp_orchestrator.gateway.breaker import BreakerBoard, BreakerState, CircuitBreaker, CircuitOpen
    from mcp_orchestrator.gateway.budget import Budget, BudgetExceeded, Estimate, Reservation
    from mcp_orchestrator.gateway.config import (
        BreakerConfig,
        GatewayConfig,
        HealthConfig,
        HedgeConfig,
        Price,
        StrategyName,
    )
    from mcp_orchestrator.gateway.health import Availability, EndpointKey, HealthRegistry, HealthStats
    from mcp_orchestrator.gateway.router import Candidate, Gateway, HedgePlan, Route, endpoint_of

__all__ = [
    "Availability",
    "BreakerBoard",
    "BreakerConfig",
    "BreakerState",
    "Budget",
    "BudgetExceeded",
    "Candidate",
    "CircuitBreaker",
    "CircuitOpen",
    "EndpointKey",
    "Estimate",
    "Gateway",
    "GatewayConfig",
    "HealthConfig",
    "HealthRegistry",
    "HealthStats",
    "HedgeConfig",
    "HedgeFailed",
    "HedgeOutcome",
    "HedgePlan",
    "HedgeRecord",
    "Price",
    "Reservation",
    "Route",
    "StrategyName",
    "endpoint_of",
    "hedge",
]

# The modules with the exported names, imported in turn until one has the name asked for (``lazy``). ``config`` needs
# only ``GatewayConfig`` (issue 15: start-up). ``hedge`` is imported at once: its function has its module's name.
_MODULES = ("config", "breaker", "budget", "health", "router")

if not typing.TYPE_CHECKING:  # mypy sees the imports above, and no catch-all attribute
    __getattr__, __dir__ = _lazy(__name__, globals(), __all__, _MODULES)
