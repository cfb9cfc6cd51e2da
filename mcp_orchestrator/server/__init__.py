"""The MCP surface (the top layer, thin): ``app`` builds the server; ``tools`` and ``registry`` the tools
(strict arguments, outlined result schemas), ``catalog`` what ``tools/list`` advertises before they are built,
``views`` the compact results; ``protocol``, ``run_watch``, ``completions`` and ``log_bridge`` the resource
subscriptions, completions and logging; ``tasks`` and ``task_listen`` the MCP Tasks extension; ``http`` the HTTP
transports and ``auth/`` their credentials; ``identity`` who the caller is; ``state`` what every request
reaches. May import everything below it: the service, strategies, observability, readiness, the store,
``contracts``, ``errors``, ``config``, ``guards`` and ``lazy``."""

from mcp_orchestrator.server.app import build_server
from mcp_orchestrator.server.state import AppState

__all__ = ["AppState", "build_server"]
