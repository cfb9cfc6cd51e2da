"""Worker homes: the CLI configuration a worker runs with is the server's to decide.

``MCP_ORCHESTRATOR_CODEX_HOME``, ``_GEMINI_HOME`` and ``_CLAUDE_CONFIG_DIR`` set a worker's ``CODEX_HOME``,
``GEMINI_CLI_HOME`` and ``CLAUDE_CONFIG_DIR`` explicitly. Otherwise the worker gets the user's own configuration
(as the server's environment has it), but never its MCP servers: an assistant's config commonly registers this
very orchestrator (codex even with ``required = true``), and a worker would start a second orchestrator inside
itself, or fail when it cannot. Each CLI's own switch turns them off: codex ``-c mcp_servers.<name>.enabled=false``
for each configured server (``-c mcp_servers={}`` merges instead of replacing: checked on codex 0.169), claude
``--strict-mcp-config`` with no ``--mcp-config``, gemini ``--allowed-mcp-server-names`` naming none.
``MCP_ORCHESTRATOR_WORKER_MCP=1`` keeps them, for a worker profile that really wants its MCP servers.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

__all__ = ["HOME_SETTINGS", "isolation_flags", "worker_home"]

# model -> (the server's setting, the variable the CLI reads, where it looks by default)
HOME_SETTINGS: dict[str, tuple[str, str, str]] = {
    "codex_cli": ("MCP_ORCHESTRATOR_CODEX_HOME", "CODEX_HOME", "~/.codex"),
    "gemini_cli": ("MCP_ORCHESTRATOR_GEMINI_HOME", "GEMINI_CLI_HOME", "~"),
    "claude_cli": ("MCP_ORCHESTRATOR_CLAUDE_CONFIG_DIR", "CLAUDE_CONFIG_DIR", "~/.claude"),
}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def worker_home(model: str, environ: Mapping[str, str], env: dict[str, str]) -> str:
    """Point the worker's ``env`` at its home (the explicit setting, if any); returns the home it will use."""
    setting, variable, default = HOME_SETTINGS[model]
    explicit = environ.get(setting)
    if explicit:
        env[variable] = explicit
    home = env.get(variable) or default
    if home.startswith("~"):
        user_home = env.get("HOME") or os.path.expanduser("~")
        home = user_home + home[1:]
    return home


def isolation_flags(model: str, environ: Mapping[str, str], home: str) -> list[str]:
    """The flags that keep the worker's CLI from starting any MCP server (unless the profile opts in)."""
    if environ.get("MCP_ORCHESTRATOR_WORKER_MCP", "").lower() in ("1", "true", "yes", "on"):
        return []
    if model == "claude_cli":
        return ["--strict-mcp-config"]
    if model == "gemini_cli":
        return ["--allowed-mcp-server-names", "none"]
    flags: list[str] = []
    for name in _codex_servers(Path(os.path.expanduser(home)) / "config.toml"):
        key = name if _BARE_KEY.match(name) else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        flags += ["-c", f"mcp_servers.{key}.enabled=false"]
    return flags


def _codex_servers(config: Path) -> list[str]:
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # no config or an unreadable one: codex itself will say so
    servers = data.get("mcp_servers")
    return sorted(servers) if isinstance(servers, dict) else []
