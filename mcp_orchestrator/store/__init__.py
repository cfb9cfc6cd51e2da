"""Run stores: the seam (``base.RunStore``) and the JSON document implementation (``json_store``, over
``documents``, ``index`` and ``leases``; ``_files`` holds atomic writes and locks). The bottom layer: it
imports only ``contracts``, ``errors`` and the standard library."""

from mcp_orchestrator.store.base import RunFilter, RunStore
from mcp_orchestrator.store.json_store import JsonRunStore

__all__ = ["JsonRunStore", "RunFilter", "RunStore"]
