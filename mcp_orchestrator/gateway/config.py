"""Gateway configuration: routing strategies, health and breaker windows, hedging, prices, quality ranks.

Read once at start-up (``GatewayConfig.from_env``):

- ``MCP_ORCHESTRATOR_GATEWAY_CONFIG``: a JSON file, camelCase, every key optional::

      {"strategy": "latency-first",
       "strategyByRole": {"reviewer": "quality-first"}, "strategyByPriority": {"batch": "cost-first"},
       "candidates": {"codex_cli": ["cli", "openai_sdk"]},
       "qualityRank": {"codex_cli/cli": 1, "codex_cli/openai_sdk": 2},
       "prices": {"codex_cli/openai_sdk": {"inputPerMTok": 1.25, "outputPerMTok": 10.0}},
       "health": {"windowSeconds": 300, "windowCalls": 50},
       "breaker": {"consecutiveFailures": 5, "cooldownSeconds": 30},
       "hedge": {"roles": ["reviewer"], "hedgeDelaySeconds": 10, "maxHedges": 1, "hedgeCostCap": 0.05}}

- ``MCP_ORCHESTRATOR_ROUTING_STRATEGY``: the default strategy (wins over the file's ``strategy``).
- ``MCP_ORCHESTRATOR_QUALITY_RANK``: ``claude_cli/cli=1,codex_cli/cli=2`` or a JSON file of that mapping.
- ``MCP_ORCHESTRATOR_PRICES``: ``codex_cli/openai_sdk=1.25:10,cli=0:0`` (USD per million input:output
  tokens) or a JSON file shaped like the file's ``prices``.

The variables replace the file's tables. A malformed value raises ``ValueError`` naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationError
from pydantic.alias_generators import to_camel

from mcp_orchestrator.contracts import RuntimeMode

__all__ = [
    "BreakerConfig",
    "GatewayConfig",
    "HealthConfig",
    "HedgeConfig",
    "Price",
    "StrategyName",
]

StrategyName = Literal["pinned", "latency-first", "quality-first", "cost-first"]

# A worker's runtime and the alternatives the gateway may route its steps to, in their fixed order.
# The mock runtime is no alternative unless configured: it stands in for a model only in demos and tests.
DEFAULT_CANDIDATES: dict[str, tuple[RuntimeMode, ...]] = {
    "codex_cli": ("cli", "openai_sdk"),
    "gemini_cli": ("cli", "google_sdk"),
    "claude_cli": ("cli",),
    "mock": ("mock",),
}


class _Config(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Price(_Config):
    """USD per million tokens of one model/runtime."""

    input_per_m_tok: FiniteFloat = Field(0.0, ge=0, alias="inputPerMTok")
    output_per_m_tok: FiniteFloat = Field(0.0, ge=0, alias="outputPerMTok")

    def cost(self, input_tokens: float, output_tokens: float) -> float:
        """The price of that many tokens."""
        return (input_tokens * self.input_per_m_tok + output_tokens * self.output_per_m_tok) / 1_000_000


class HealthConfig(_Config):
    """The rolling window of each endpoint's health, and when it counts as degraded or down."""

    window_seconds: float = Field(300.0, gt=0)
    window_calls: int = Field(50, ge=1)
    min_calls: int = Field(3, ge=1)
    degraded_error_rate: float = Field(0.2, ge=0, le=1)
    down_error_rate: float = Field(0.5, ge=0, le=1)
    down_consecutive: int = Field(3, ge=1)
    degraded_latency_seconds: float | None = Field(None, gt=0)


class BreakerConfig(_Config):
    """When an endpoint's circuit opens, and how long before one probe may try it again."""

    window_seconds: float = Field(60.0, gt=0)
    window_calls: int = Field(100, ge=1)
    min_calls: int = Field(10, ge=1)
    error_rate: float = Field(0.5, gt=0, le=1)
    consecutive_failures: int = Field(5, ge=1)
    cooldown_seconds: float = Field(30.0, ge=0)
    # Failures that say "this endpoint cannot serve now". `auth` is separate: it marks the endpoint misconfigured
    # (unless `authFailFast` is off, for endpoints whose credentials are checked per request).
    classes: tuple[str, ...] = ("unavailable", "rate_limited")
    auth_fail_fast: bool = True
    # The mock runtime's failures are scripted by the task, never a property of an endpoint.
    exempt_runtimes: tuple[str, ...] = ("mock",)


class HedgeConfig(_Config):
    """Opt-in hedging: after ``hedgeDelaySeconds`` without output, start the next candidate too."""

    roles: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    hedge_delay_seconds: float = Field(10.0, ge=0)
    max_hedges: int = Field(1, ge=0, le=3)
    hedge_cost_cap: float | None = Field(None, ge=0)

    def applies(self, role: str, priority: str) -> bool:
        """Whether a step of ``role`` in a run of ``priority`` is hedged."""
        return self.max_hedges > 0 and (role in self.roles or priority in self.priorities)


class GatewayConfig(_Config):
    """Everything the gateway is told by the operator."""

    strategy: StrategyName = "pinned"
    strategy_by_role: dict[str, StrategyName] = Field(default_factory=dict)
    strategy_by_priority: dict[str, StrategyName] = Field(default_factory=dict)
    candidates: dict[str, tuple[RuntimeMode, ...]] = Field(default_factory=lambda: dict(DEFAULT_CANDIDATES))
    quality_rank: dict[str, FiniteFloat] = Field(default_factory=dict)
    prices: dict[str, Price] = Field(default_factory=dict)
    health: HealthConfig = Field(default_factory=HealthConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    hedge: HedgeConfig = Field(default_factory=HedgeConfig)

    def strategy_for(self, role: str, priority: str) -> StrategyName:
        """The role's strategy, else the priority class's, else the default."""
        return self.strategy_by_role.get(role) or self.strategy_by_priority.get(priority) or self.strategy

    def candidates_of(self, model: str) -> tuple[RuntimeMode, ...]:
        """The runtimes configured for ``model`` in their fixed order (defaults for unlisted models)."""
        return self.candidates.get(model, DEFAULT_CANDIDATES.get(model, ()))

    def price_of(self, model: str, runtime: str) -> Price | None:
        """The price of ``model/runtime``, else of ``runtime`` alone; ``None`` when unpriced."""
        return self.prices.get(f"{model}/{runtime}") or self.prices.get(runtime)

    def rank_of(self, model: str, runtime: str) -> float | None:
        """The operator's quality rank of ``model/runtime`` (lower is better), else of ``model``."""
        rank = self.quality_rank.get(f"{model}/{runtime}")
        return rank if rank is not None else self.quality_rank.get(model)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewayConfig:
        """The configuration named by ``MCP_ORCHESTRATOR_*`` variables (see the module docstring)."""
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        path = env.get("MCP_ORCHESTRATOR_GATEWAY_CONFIG", "").strip()
        if path:
            loaded = _load_json("MCP_ORCHESTRATOR_GATEWAY_CONFIG", path)
            if not isinstance(loaded, dict):
                raise ValueError(f"MCP_ORCHESTRATOR_GATEWAY_CONFIG={path!r}: expected a JSON object")
            data.update(loaded)
        strategy = env.get("MCP_ORCHESTRATOR_ROUTING_STRATEGY", "").strip()
        if strategy:
            data["strategy"] = strategy
        rank = env.get("MCP_ORCHESTRATOR_QUALITY_RANK", "").strip()
        if rank:
            data["qualityRank"] = _table("MCP_ORCHESTRATOR_QUALITY_RANK", rank, _rank_item)
        prices = env.get("MCP_ORCHESTRATOR_PRICES", "").strip()
        if prices:
            data["prices"] = _table("MCP_ORCHESTRATOR_PRICES", prices, _price_item)
        return cls.parse(data, source=path or "the environment")

    @classmethod
    def parse(cls, data: Mapping[str, Any], *, source: str = "gateway config") -> GatewayConfig:
        """Validate ``data`` (camelCase or snake_case keys); ``ValueError`` says what is wrong where."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
            raise ValueError(f"{source}: invalid gateway configuration: {problems}") from e


def _load_json(var: str, path: str) -> Any:
    try:
        return json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{var}={path!r}: cannot read a JSON file: {e}") from e


def _table(var: str, raw: str, item: Any) -> Any:
    """A JSON file's mapping when ``raw`` names a file, else ``key=value`` pairs separated by commas."""
    if raw.startswith(("{", "/", ".", "~")) or raw.endswith(".json"):
        return json.loads(raw) if raw.startswith("{") else _load_json(var, raw)
    out: dict[str, Any] = {}
    for pair in raw.split(","):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{var}: {pair.strip()!r} is not key=value")
        try:
            out[key.strip()] = item(value.strip())
        except ValueError as e:
            raise ValueError(f"{var}: {pair.strip()!r}: {e}") from e
    return out


def _rank_item(value: str) -> float:
    return float(value)


def _price_item(value: str) -> dict[str, float]:
    inp, _, out = value.partition(":")
    return {"inputPerMTok": float(inp), "outputPerMTok": float(out or inp)}
