"""Tests that read whole records ask for them: the run, readiness and runtimes tools default to a compact view."""

from __future__ import annotations

from typing import Any

__all__ = ["VIEW_TOOLS", "full"]

VIEW_TOOLS = frozenset({"dispatch_task", "get_run", "cancel_run", "readiness", "runtimes"})


def full(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` with ``detail: "full"`` for a tool that has a compact view (unless the caller chose a detail)."""
    return {**args, "detail": "full"} if tool in VIEW_TOOLS and "detail" not in args else args
