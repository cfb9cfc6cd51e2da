"""Observability: the run event log and its checks (``logcheck``, ``stats``), ``diag``/``optimize``
(``diagnose``, ``rules``), replay packages (``replay``), retention (``retention``), OpenTelemetry spans
(``otel``) and the redaction of secrets (``redact``). It may import ``contracts``, ``errors``, ``config``,
``guards``, ``gateway`` and ``store``, never the service or the MCP surface: the service calls it (the
operator commands that drive a service are in ``mcp_orchestrator/cli_ops.py``; ``replay rerun`` is
``service/rerun.py``)."""

from mcp_orchestrator.observability.redact import Redactor
from mcp_orchestrator.observability.runlog import RunLog

__all__ = ["Redactor", "RunLog"]
