"""What ``tools/list`` advertises, read from ``catalog.json``; each tool is built on its first call (issue 15).

Building the tools (``registry.ToolRegistry`` over ``tools.TOOLS``) imports every result model, the service,
the observability and readiness packages and generates the argument models and their schemas: about half of
``serve``'s start-up beyond a bare server's. A client's first request is ``tools/list``, which needs none of it,
so the server advertises the tools from the catalog the registry generated, and a ``CatalogTool`` builds its
own tool (from ``tools.py``) when it is first called. ``python -m mcp_orchestrator.schemas`` writes the catalog
with the published schemas; a test fails when it drifts from what the registry builds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations

from mcp_orchestrator.server.registry import StrictTool, ToolRegistry

__all__ = ["CATALOG", "CatalogTool", "advertised", "built_tools", "catalog_tools", "entry", "render"]

CATALOG = Path(__file__).with_name("catalog.json")


def entry(tool: Tool) -> dict[str, Any]:
    """A built tool as the catalog keeps it: what ``tools/list`` says of it."""
    notes = tool.annotations
    return {
        "name": tool.name,
        "description": tool.description,
        "inputSchema": tool.parameters,
        "outputSchema": tool.output_schema,
        "annotations": notes.model_dump(mode="json", by_alias=True, exclude_unset=True) if notes else None,
    }


def render(tools: Sequence[Tool]) -> str:
    """The catalog's text for ``tools`` (the registry's, in registration order)."""
    return json.dumps([entry(t) for t in tools], indent=1) + "\n"


def built_tools() -> list[Tool]:
    """Every tool as the registry builds it from ``tools.py``: what the catalog must say."""
    from mcp_orchestrator.server.tools import TOOLS

    registry = ToolRegistry()
    for spec in TOOLS:
        registry.add(spec)
    return registry.tools()


@cache
def advertised() -> tuple[dict[str, Any], ...]:
    """The catalog's entries, read once per process."""
    entries: list[dict[str, Any]] = json.loads(CATALOG.read_text(encoding="utf-8"))
    return tuple(entries)


@cache
def _built(name: str) -> StrictTool:
    """The registry's tool ``name``, built from ``tools.py`` (imported here, on the first call of any tool)."""
    from mcp_orchestrator.server.tools import TOOLS

    registry = ToolRegistry()
    registry.add(next(spec for spec in TOOLS if spec.name == name))
    tool = registry.tools()[0]
    assert isinstance(tool, StrictTool)
    return tool


class CatalogTool(Tool):
    """A tool advertised from the catalog; its first call builds the registry's tool, which runs every call."""

    @classmethod
    def from_entry(cls, data: dict[str, Any]) -> CatalogTool:
        """The tool ``data`` (a catalog entry) advertises, not built yet."""
        annotations = data.get("annotations")
        fields: dict[str, Any] = {  # no ``fn_metadata``: that is the built tool's
            "fn": _unbuilt,
            "name": data["name"],
            "description": data["description"],
            "parameters": data["inputSchema"],
            "is_async": True,
            "annotations": ToolAnnotations.model_validate(annotations) if annotations is not None else None,
        }
        tool = cls.model_construct(**fields)
        tool.__dict__["output_schema"] = data.get("outputSchema")  # the SDK's cached property, filled in
        return tool

    async def run(self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False) -> Any:
        """Build the tool (once per process), then run it."""
        return await _built(self.name).run(arguments, context, convert_result=convert_result)


def _unbuilt(**_: Any) -> Any:  # pragma: no cover - a CatalogTool runs its built tool, never this
    raise RuntimeError("a catalog tool runs the tool built from tools.py")


def catalog_tools() -> list[Tool]:
    """Every advertised tool, in the catalog's order."""
    return [CatalogTool.from_entry(data) for data in advertised()]
