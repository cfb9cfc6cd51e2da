"""Per-run budgets of tokens and money: refuse a step before it would exceed them.

A run dispatched with ``budget: {maxTokens?, maxCostUsd?}`` gets a ``Budget``. Before each attempt the
gateway estimates what it will cost (``Estimate``: the endpoint's recorded average usage, else the run's
own average per step so far, else nothing) and reserves it; the attempt is refused with
``BudgetExceeded`` when what was spent, what running steps reserved and the estimate together would go
over a limit, or when nothing is left. A successful attempt is charged what it reported; a failed or
canceled one gives its reservation back (a runtime reports usage only on success).

An estimate is an estimate: the first step of a run, with no history, is admitted while anything is left,
and a step may use more than estimated. Unpriced runtimes cost nothing against ``maxCostUsd`` (their
tokens are counted in ``unpricedTokens``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcp_orchestrator.contracts import Usage
from mcp_orchestrator.errors import OrchestratorError
from mcp_orchestrator.gateway.config import Price

__all__ = ["Budget", "BudgetExceeded", "Estimate", "Reservation"]


class BudgetExceeded(OrchestratorError):
    """An attempt was refused because it would exceed its run's budget (nothing was started)."""

    def __init__(self, limit: str, spent: float, estimate: float, maximum: float) -> None:
        unit, digits = ("tokens", 0) if limit == "tokens" else ("USD", 4)
        super().__init__(
            f"the run's budget of {maximum:.{digits}f} {unit} would be exceeded: {spent:.{digits}f} spent or "
            f"reserved, this step is estimated at {estimate:.{digits}f}; the step was not started"
        )
        self.limit = limit
        self.spent = spent
        self.estimate = estimate
        self.maximum = maximum


@dataclass(frozen=True)
class Estimate:
    """What one attempt is expected to cost."""

    tokens: float = 0.0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Reservation:
    """What an admitted attempt holds until it is charged or released."""

    ident: int
    estimate: Estimate


@dataclass
class Budget:
    """The spending of one run against its limits."""

    max_tokens: int | None = None
    max_cost_usd: float | None = None
    prices: dict[str, Price] = field(default_factory=dict)
    spent_tokens: int = 0
    spent_cost_usd: float = 0.0
    unpriced_tokens: int = 0
    charged_steps: int = 0
    _reserved: dict[int, Estimate] = field(default_factory=dict, init=False, repr=False)
    _next: int = field(default=0, init=False, repr=False)

    @property
    def limited(self) -> bool:
        """Whether any limit is set."""
        return self.max_tokens is not None or self.max_cost_usd is not None

    def price_of(self, model: str, runtime: str) -> Price | None:
        """The price of ``model/runtime``, else of ``runtime``."""
        return self.prices.get(f"{model}/{runtime}") or self.prices.get(runtime)

    def cost_of(self, usage: Usage | None, model: str, runtime: str) -> float | None:
        """The USD price of ``usage`` on ``model/runtime``; ``None`` when unpriced."""
        price = self.price_of(model, runtime)
        if price is None or usage is None:
            return None if price is None else 0.0
        return price.cost(usage.input_tokens, usage.output_tokens)

    def average(self) -> Estimate | None:
        """The run's own average per charged step so far."""
        if not self.charged_steps:
            return None
        return Estimate(self.spent_tokens / self.charged_steps, self.spent_cost_usd / self.charged_steps)

    def would_exceed(self, estimate: Estimate) -> BudgetExceeded | None:
        """The refusal an attempt with ``estimate`` gets now, or ``None`` when it fits."""
        held = Estimate(
            self.spent_tokens + sum(r.tokens for r in self._reserved.values()),
            self.spent_cost_usd + sum(r.cost_usd for r in self._reserved.values()),
        )
        if self.max_tokens is not None and (
            held.tokens >= self.max_tokens or held.tokens + estimate.tokens > self.max_tokens
        ):
            return BudgetExceeded("tokens", held.tokens, estimate.tokens, self.max_tokens)
        if self.max_cost_usd is not None and (
            held.cost_usd >= self.max_cost_usd or held.cost_usd + estimate.cost_usd > self.max_cost_usd
        ):
            return BudgetExceeded("cost", held.cost_usd, estimate.cost_usd, self.max_cost_usd)
        return None

    def reserve(self, estimate: Estimate) -> Reservation:
        """Hold ``estimate`` for an attempt about to start; raises ``BudgetExceeded`` when it does not fit."""
        refusal = self.would_exceed(estimate)
        if refusal is not None:
            raise refusal
        self._next += 1
        self._reserved[self._next] = estimate
        return Reservation(self._next, estimate)

    def release(self, reservation: Reservation | None) -> None:
        """Give back what a failed or canceled attempt held."""
        if reservation is not None:
            self._reserved.pop(reservation.ident, None)

    def charge(
        self, usage: Usage | None, model: str, runtime: str, reservation: Reservation | None = None
    ) -> float | None:
        """Charge what an attempt reported (its reservation ends); returns its USD cost, ``None`` if unpriced."""
        self.release(reservation)
        self.charged_steps += 1
        tokens = (usage.total_tokens or usage.input_tokens + usage.output_tokens) if usage is not None else 0
        self.spent_tokens += tokens
        cost = self.cost_of(usage, model, runtime)
        if cost is None:
            self.unpriced_tokens += tokens
        else:
            self.spent_cost_usd += cost
        return cost

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready spending and limits."""
        return {
            "maxTokens": self.max_tokens,
            "maxCostUsd": self.max_cost_usd,
            "spentTokens": self.spent_tokens,
            "spentCostUsd": round(self.spent_cost_usd, 6),
            "unpricedTokens": self.unpriced_tokens,
            "reserved": len(self._reserved),
        }
