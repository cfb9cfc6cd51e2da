"""Routing strategies: the order in which a step's candidate runtimes are tried.

- ``pinned`` (the default): the worker's runtime first, then the configured alternatives in their fixed
  order - the fallback chain as it has always been; only an open circuit moves a candidate back.
- ``latency-first``: the lowest median latency of the successful calls in the health window first.
- ``quality-first``: the operator's quality rank first (lower is better).
- ``cost-first``: the lowest expected price of a call first: the endpoint's recorded average token usage
  (else its model's, else a nominal 1000 in / 1000 out) priced by the price table.

Except for ``pinned``, candidates are grouped by availability first (healthy, degraded, down; a half-open
circuit counts as healthy, so that its one probe happens), then ordered by score (unknown scores last),
then by the fixed order. Blocked candidates (open or misconfigured circuit) and candidates the policy
rules out come last in every strategy. Deterministic: the same statistics and configuration give the
same order.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcp_orchestrator.gateway.breaker import BreakerState
from mcp_orchestrator.gateway.config import GatewayConfig, StrategyName
from mcp_orchestrator.gateway.health import EndpointKey, HealthRegistry, HealthStats

__all__ = ["NOMINAL_TOKENS", "Facts", "expected_cost", "order", "score"]

NOMINAL_TOKENS = (1000.0, 1000.0)
_TIER = {"healthy": 0, "degraded": 1, "down": 2}
BLOCKED: frozenset[str] = frozenset({"open", "misconfigured"})


@dataclass(frozen=True)
class Facts:
    """What the gateway knows about one candidate when it routes a step."""

    key: EndpointKey
    index: int
    stats: HealthStats
    breaker: BreakerState
    allowed: bool = True  # by the policy (credentials, read-only rules, fallbackPolicy)


def expected_cost(key: EndpointKey, stats: HealthStats, config: GatewayConfig, health: HealthRegistry) -> float | None:
    """The expected USD price of one call of ``key``; ``None`` when the runtime has no price."""
    price = config.price_of(key.model, key.runtime)
    if price is None:
        return None
    if stats.avg_input_tokens is not None and stats.avg_output_tokens is not None:
        tokens = (stats.avg_input_tokens, stats.avg_output_tokens)
    else:
        tokens = health.model_usage(key.model) or NOMINAL_TOKENS
    return price.cost(*tokens)


def score(strategy: StrategyName, facts: Facts, config: GatewayConfig, health: HealthRegistry) -> float | None:
    """The candidate's score under ``strategy`` (lower is better); ``None`` when unknown or unscored."""
    if strategy == "latency-first":
        return facts.stats.latency_p50
    if strategy == "quality-first":
        return config.rank_of(facts.key.model, facts.key.runtime)
    if strategy == "cost-first":
        return expected_cost(facts.key, facts.stats, config, health)
    return None


def _sort_key(strategy: StrategyName, facts: Facts, value: float | None) -> tuple[int, int, float, int]:
    if not facts.allowed:
        tier = 4
    elif facts.breaker in BLOCKED:
        tier = 3
    elif strategy == "pinned" or facts.breaker == "half_open":
        tier = 0
    else:
        tier = _TIER[facts.stats.availability]
    unknown = 1 if value is None else 0
    return (tier, unknown, value if value is not None else 0.0, facts.index)


def order(
    strategy: StrategyName, facts: list[Facts], config: GatewayConfig, health: HealthRegistry
) -> list[tuple[Facts, float | None]]:
    """The candidates in the order to try them, each with its score."""
    scored = [(f, score(strategy, f, config, health)) for f in facts]
    return sorted(scored, key=lambda pair: _sort_key(strategy, pair[0], pair[1]))
