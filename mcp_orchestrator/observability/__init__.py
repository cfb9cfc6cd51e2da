"""Observability: the run event log and its checks (``logcheck``, ``stats``), ``diag``/``optimize``
(``diagnose``, ``rules``), replay packages (``replay``), retention (``retention``), OpenTelemetry spans
(``otel``) and the redaction of secrets (``redact``). It may import ``contracts``, ``errors``, ``config``,
``guards``, ``gateway`` and ``store``, never the service or the MCP surface: the service calls it (the
operator commands that drive a service are in ``mcp_orchestrator/cli_ops.py``; ``replay rerun`` is
``service/rerun.py``)."""

import typing

from mcp_orchestrator.lazy import lazy_exports as _lazy

if typing.TYPE_CHECKING:
    from mcp_orchestrator.observability.redact import Redactor
    from mcp_orchestrator.observability.runlog import RunLog

__all__ = ["Redactor", "RunLog"]

# The modules with the exported names, imported in turn until one has the name asked for (``lazy``). The log bridge
# needs only ``Redactor`` (issue 15: start-up).
_MODULES = ("redact", "runlog")

if not typing.TYPE_CHECKING:  # mypy sees the imports above, and no catch-all attribute
    __getattr__, __dir__ = _lazy(__name__, globals(), __all__, _MODULES)
