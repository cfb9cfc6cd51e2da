"""Run stores: the seam (``base.RunStore``) and the JSON document implementation (``json_store``, over
``documents``, ``index`` and ``leases``; ``_files`` holds atomic writes and locks). The bottom layer: it
imports only ``contracts``, ``errors`` and the standard library."""

import typing

from mcp_orchestrator.lazy import lazy_exports as _lazy

if typing.TYPE_CHECKING:
    from mcp_orchestrator.store.base import RunFilter, RunStore
    from mcp_orchestrator.store.json_store import JsonRunStore

__all__ = ["JsonRunStore", "RunFilter", "RunStore"]

# The modules with the exported names, imported in turn until one has the name asked for (``lazy``). ``_files`` alone
# serves the executor's link (issue 15: start-up).
_MODULES = ("base", "json_store")

if not typing.TYPE_CHECKING:  # mypy sees the imports above, and no catch-all attribute
    __getattr__, __dir__ = _lazy(__name__, globals(), __all__, _MODULES)
