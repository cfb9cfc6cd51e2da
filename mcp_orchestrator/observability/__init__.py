"""Observability: the validated run event log, redaction of secrets."""

from mcp_orchestrator.observability.redact import Redactor
from mcp_orchestrator.observability.runlog import RunLog

__all__ = ["Redactor", "RunLog"]
