"""Point the real CLIs at a loopback model server: write their config homes, return the env to set.

Facts from ``/work/shared/reference/worker-clis.md``: codex reads ``$CODEX_HOME/config.toml`` (a
custom ``responses`` provider, retries and outside traffic off); gemini reads
``$GEMINI_CLI_HOME/.gemini/settings.json`` (API-key auth, one attempt) and
``GOOGLE_GEMINI_BASE_URL``; claude takes ``ANTHROPIC_BASE_URL`` and ``CLAUDE_CONFIG_DIR``.
Every variable returned passes the CLI runtime's environment allowlist (vendor prefixes).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["CODEX_KEY_VAR", "claude_env", "codex_env", "gemini_env", "loopback_env"]

CODEX_KEY_VAR = "CODEX_LOOPBACK_KEY"

_CODEX_TOML = """\
model = "gpt-5.5"
model_provider = "fake"
check_for_update_on_startup = false

[model_providers.fake]
name = "fake"
base_url = "{base_url}"
env_key = "{key_var}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[otel]
exporter = "none"
metrics_exporter = "none"
trace_exporter = "none"

[features]
plugins = false
unbounded_connection_retries = false
"""


def codex_env(server_url: str, home: Path) -> dict[str, str]:
    """Write ``home/config.toml`` for a loopback provider; return ``CODEX_HOME`` and the key variable."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(_CODEX_TOML.format(base_url=f"{server_url}/v1", key_var=CODEX_KEY_VAR))
    return {"CODEX_HOME": str(home), CODEX_KEY_VAR: "loopback-codex-key"}


def gemini_env(server_url: str, home: Path) -> dict[str, str]:
    """Write ``home/.gemini/settings.json`` (API-key auth, no retries, no telemetry); return the env."""
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "general": {"maxAttempts": 1, "retryFetchErrors": False},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
    }
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings, indent=2))
    return {
        "GEMINI_CLI_HOME": str(home),
        "GEMINI_API_KEY": "loopback-gemini-key",
        "GOOGLE_GEMINI_BASE_URL": server_url,
        "GEMINI_CLI_NO_RELAUNCH": "true",
    }


def claude_env(server_url: str, home: Path) -> dict[str, str]:
    """Create the claude config dir; return the loopback env (no retries, no non-essential traffic)."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "ANTHROPIC_BASE_URL": server_url,
        "ANTHROPIC_API_KEY": "loopback-claude-key",
        "CLAUDE_CONFIG_DIR": str(home),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }


def loopback_env(server_url: str, root: Path) -> dict[str, str]:
    """The env for all three CLIs, with their homes under ``root`` (``codex/``, ``gemini/``, ``claude/``)."""
    return {
        **codex_env(server_url, root / "codex"),
        **gemini_env(server_url, root / "gemini"),
        **claude_env(server_url, root / "claude"),
    }
