"""Gateway configuration from a JSON file and ``MCP_ORCHESTRATOR_*`` variables; bad values are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gateway_support import FIXTURES

from mcp_orchestrator.gateway import GatewayConfig, Price


def test_the_example_file_configures_everything() -> None:
    cfg = GatewayConfig.from_env({"MCP_ORCHESTRATOR_GATEWAY_CONFIG": str(FIXTURES / "gateway.json")})
    assert cfg.strategy_for("reviewer", "batch") == "quality-first"
    assert cfg.strategy_for("writer", "batch") == "cost-first"
    assert cfg.strategy_for("writer", "interactive") == "latency-first"
    assert cfg.candidates_of("codex_cli") == ("cli", "openai_sdk")
    assert cfg.candidates_of("claude_cli") == ("cli",), "unlisted models keep their defaults"
    assert cfg.price_of("codex_cli", "openai_sdk") == Price(inputPerMTok=1.25, outputPerMTok=10.0)
    assert cfg.price_of("claude_cli", "cli") == Price(), "the runtime's price when the model has none"
    assert cfg.price_of("codex_cli", "mock") is None
    assert (cfg.rank_of("codex_cli", "cli"), cfg.rank_of("claude_cli", "cli")) == (1, None)
    assert cfg.hedge.applies("reviewer", "interactive") and not cfg.hedge.applies("writer", "interactive")
    assert (cfg.breaker.cooldown_seconds, cfg.hedge.hedge_cost_cap) == (30, 0.05)


def test_variables_replace_the_files_tables() -> None:
    cfg = GatewayConfig.from_env(
        {
            "MCP_ORCHESTRATOR_GATEWAY_CONFIG": str(FIXTURES / "gateway.json"),
            "MCP_ORCHESTRATOR_ROUTING_STRATEGY": "cost-first",
            "MCP_ORCHESTRATOR_QUALITY_RANK": "claude_cli/cli=1, codex_cli/cli=2.5",
            "MCP_ORCHESTRATOR_PRICES": "codex_cli/openai_sdk=2:8,cli=0",
        }
    )
    assert cfg.strategy == "cost-first"
    assert cfg.quality_rank == {"claude_cli/cli": 1, "codex_cli/cli": 2.5}
    assert cfg.prices == {"codex_cli/openai_sdk": Price(inputPerMTok=2, outputPerMTok=8), "cli": Price()}


def test_tables_may_be_json_files() -> None:
    cfg = GatewayConfig.from_env(
        {
            "MCP_ORCHESTRATOR_QUALITY_RANK": str(FIXTURES / "quality-rank.json"),
            "MCP_ORCHESTRATOR_PRICES": str(FIXTURES / "prices.json"),
        }
    )
    assert cfg.rank_of("codex_cli", "openai_sdk") == 3
    assert cfg.price_of("gemini_cli", "google_sdk") == Price(inputPerMTok=0.3, outputPerMTok=2.5)


def test_defaults_without_any_variable() -> None:
    cfg = GatewayConfig.from_env({})
    assert cfg == GatewayConfig()
    assert (cfg.strategy, cfg.breaker.exempt_runtimes, cfg.hedge.applies("reviewer", "interactive")) == (
        "pinned",
        ("mock",),
        False,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MCP_ORCHESTRATOR_ROUTING_STRATEGY": "fastest"}, "strategy"),
        ({"MCP_ORCHESTRATOR_QUALITY_RANK": "codex_cli/cli"}, "is not key=value"),
        ({"MCP_ORCHESTRATOR_QUALITY_RANK": "codex_cli/cli=nan"}, "qualityRank"),
        ({"MCP_ORCHESTRATOR_PRICES": "cli=cheap"}, "MCP_ORCHESTRATOR_PRICES"),
        ({"MCP_ORCHESTRATOR_PRICES": "cli=-1:2"}, "greater than or equal to 0"),
        ({"MCP_ORCHESTRATOR_GATEWAY_CONFIG": "/nonexistent/gateway.json"}, "cannot read a JSON file"),
    ],
)
def test_malformed_values_are_refused_by_name(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        GatewayConfig.from_env(env)


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps({"breaker": {"cooldown": 5}}))
    with pytest.raises(ValueError, match=r"breaker\.cooldown: Extra inputs are not permitted"):
        GatewayConfig.from_env({"MCP_ORCHESTRATOR_GATEWAY_CONFIG": str(path)})
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        GatewayConfig.from_env({"MCP_ORCHESTRATOR_GATEWAY_CONFIG": str(path)})
