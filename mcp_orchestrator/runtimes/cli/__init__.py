"""The ``cli`` runtime: codex, gemini and claude as real headless processes.

``CliRuntime`` runs a step; ``cli_capabilities`` and ``adapter_status`` describe each adapter.
``process`` owns the process tree (argv only, its own group, bounded output, kill on timeout), ``env``
and ``homes`` the allowlisted environment and each CLI's home, ``templates`` the argv per CLI and role,
``parsers`` their output, ``failures`` the failure classes, ``versions`` the cached version probe.
Imports only ``contracts``, ``errors`` and the rest of ``runtimes``.
"""

from __future__ import annotations

from mcp_orchestrator.runtimes.cli.capabilities import (
    AdapterCapabilities,
    adapter_status,
    cli_capabilities,
    find_binary,
)
from mcp_orchestrator.runtimes.cli.runtime import CliRuntime
from mcp_orchestrator.runtimes.cli.templates import ADAPTERS, READ_ONLY_ROLES, is_read_only

__all__ = [
    "ADAPTERS",
    "READ_ONLY_ROLES",
    "AdapterCapabilities",
    "CliRuntime",
    "adapter_status",
    "cli_capabilities",
    "find_binary",
    "is_read_only",
]
