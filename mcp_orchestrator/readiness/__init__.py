"""Readiness: non-destructive probes of this installation, probe fixtures, the mandate scan, release evidence.

``run_probes`` checks each worker CLI (binary, version, configuration, credentials), each SDK runtime
(import, credentials, optionally one live call), the data directory (write, lock, free space), the MCP
server (starts and lists its tools) and each model's worker capabilities. The ``readiness`` tool and
``mcp-orchestrator probe`` return its :class:`ReadinessReport`. Vendor SDKs and the MCP client are
imported only when probing. An operator's layer above the service: it may import the service's runtime
policy, ``gateway``, ``runtimes``, the store and the shared modules; only the server and the CLI import it.
"""

from __future__ import annotations

from mcp_orchestrator.readiness.models import ProbeEvidence, ProbeResult, ProbeStatus, ReadinessReport
from mcp_orchestrator.readiness.runner import run_probes

__all__ = ["ProbeEvidence", "ProbeResult", "ProbeStatus", "ReadinessReport", "run_probes"]
