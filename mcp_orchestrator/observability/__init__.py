"""Observability: the run event log and its checks (``logcheck``, ``stats``), ``diag``/``optimize``
(``diagnose``, ``rules``), replay packages (``replay``), retention (``retention``), OpenTelemetry spans
(``otel``) and the redaction of secrets (``redact``). The operator commands are in ``commands``."""

from mcp_orchestrator.observability.redact import Redactor
from mcp_orchestrator.observability.runlog import RunLog

__all__ = ["Redactor", "RunLog"]
