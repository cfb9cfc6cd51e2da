"""The environment a CLI worker gets: an allowlist, never the server's whole environment.

A worker sees PATH, HOME, the locale (LANG, LC_*), TMPDIR, the proxy variables, its own
vendor's variables (codex ``CODEX_*``/``OPENAI_*``, gemini ``GEMINI_*``/``GOOGLE_*``, claude
``ANTHROPIC_*``/``CLAUDE_*``) and the names the operator lists in
``MCP_ORCHESTRATOR_WORKER_ENV`` (``StepContext.extra_env``). Nothing else: another vendor's key
or an unrelated secret never reaches it. The orchestrator's own ``MCP_ORCHESTRATOR_*`` settings
are never passed on, even when listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mcp_orchestrator.runtimes.cli.templates import ADAPTERS

__all__ = ["BASE_NAMES", "BASE_PREFIXES", "worker_env"]

BASE_NAMES: frozenset[str] = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "LANGUAGE",
        "TMPDIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
    }
)
BASE_PREFIXES: tuple[str, ...] = ("LC_",)
_NEVER_PREFIX = "MCP_ORCHESTRATOR_"


def worker_env(model: str, environ: Mapping[str, str], extra_names: Iterable[str] = ()) -> dict[str, str]:
    """The allowlisted subset of ``environ`` for a ``model`` worker, plus the adapter's forced settings."""
    adapter = ADAPTERS[model]
    extra = {n.strip() for n in extra_names if n.strip()}
    prefixes = BASE_PREFIXES + adapter.env_prefixes
    env = {
        name: value
        for name, value in environ.items()
        if not name.startswith(_NEVER_PREFIX) and (name in BASE_NAMES or name in extra or name.startswith(prefixes))
    }
    env.update(adapter.forced_env)
    return env
