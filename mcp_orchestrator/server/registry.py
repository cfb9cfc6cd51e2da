"""Tool registration: refuses duplicates and keeps ``tools/list`` lean."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ValidationError

from mcp_orchestrator.errors import OrchestratorError, UnknownArgument

__all__ = [
    "TASK_TOOLS",
    "DuplicateToolError",
    "StrictTool",
    "ToolRegistry",
    "ToolSpec",
    "compact_schema",
    "one_line",
    "structured_result",
]

# Tools that start a run: they support the MCP Tasks extension (server/tasks.py). SEP-2663 dropped the per-tool
# ``execution.taskSupport`` field, so this costs tools/list nothing; the server capability is the declaration.
TASK_TOOLS = frozenset({"dispatch_task"})


class DuplicateToolError(OrchestratorError):
    """Two tools were registered under one name: a start-up bug, never silently ignored."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool function with its wire name and annotations.

    ``output``: the result model to advertise when the function returns one of several views (a
    compact view or the full record); every view must validate against its compacted schema.
    """

    fn: Callable[..., Any]
    annotations: ToolAnnotations
    output: type[BaseModel] | None = None

    @property
    def name(self) -> str:
        """The wire name (the function's name)."""
        return self.fn.__name__


_OUTPUT_ONLY_DROP = frozenset({"description", "enum", "format", "additionalProperties", "default"})


def compact_schema(node: Any, *, output: bool = False) -> Any:
    """The same JSON Schema with less text: no titles, no null or false defaults; optional inputs without null.

    With ``output``, also drop what only documents a result (descriptions, enums, formats) and
    describe nested objects only as objects: the full result schemas are published in
    ``contracts/``, and every conversation pays for the text of ``tools/list``.
    """
    if isinstance(node, list):
        return [compact_schema(n, output=output) for n in node]
    if not isinstance(node, dict):
        return node
    if output and "$ref" in node:
        return {"type": "object"}  # nested result objects are described by contracts/, not here
    out: dict[str, Any] = {}
    for key, value in node.items():
        if (
            key == "title"
            or (key == "default" and (value is None or value is False))
            or (output and key in _OUTPUT_ONLY_DROP)
        ):
            continue
        if output and key == "$defs":
            continue
        if key in ("properties", "$defs"):
            out[key] = {k: compact_schema(v, output=output) for k, v in value.items()}
        else:
            out[key] = compact_schema(value, output=output)
    any_of = out.get("anyOf")
    if isinstance(any_of, list) and len(any_of) == 2 and {"type": "null"} in any_of:
        other = next(s for s in any_of if s != {"type": "null"})
        if isinstance(other.get("type"), str):
            del out["anyOf"]
            out.update(other)
            if output:  # a result may really hold null
                out["type"] = [other["type"], "null"]
                if "enum" in out:
                    out["enum"] = [*out["enum"], None]
    return out


def outline(schema: dict[str, Any]) -> dict[str, Any]:
    """A compacted result schema cut to its outline: an object and the names of its properties.

    The calling model needs the names of what comes back; types and which fields are always there
    are published in ``contracts/``. Every result valid against ``schema`` is valid against its outline.
    """
    return {"type": "object", "properties": {key: {} for key in schema.get("properties", {})}}


def one_line(tool: str, error: ValidationError) -> str:
    """A pydantic validation error as one line a model can act on (no URLs, no input dumps), with the SDK's prefix."""
    parts = []
    for err in error.errors(include_url=False)[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        if err["type"] == "missing":
            parts.append(f"{where}: required, missing")
        else:
            got = repr(err.get("input"))
            parts.append(f"{where}: {err['msg']} (got {got[:60]}{'…' if len(got) > 60 else ''})")
    more = f" (and {error.error_count() - 3} more)" if error.error_count() > 3 else ""
    return f"Error executing tool {tool}: {'; '.join(parts)}{more}. Fix the argument and call again."


class StrictTool(Tool):
    """A tool that refuses unknown arguments (with a did-you-mean) and reports bad ones in one line."""

    async def run(self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False) -> Any:
        """Check the argument names, then run as the SDK does."""
        valid = list(self.parameters.get("properties", {}))
        for name in arguments:
            if name not in valid:
                import difflib  # only for a mistake

                lowered = {v.lower(): v for v in valid}
                guess = lowered.get(name.lower()) or next(iter(difflib.get_close_matches(name, valid, n=1)), None)
                raise ToolError(f"Error executing tool {self.name}: {UnknownArgument(self.name, name, guess, valid)}")
        try:
            result = await super().run(arguments, context, convert_result=False)
        except ToolError as e:
            if isinstance(e.__cause__, ValidationError):
                raise ToolError(one_line(self.name, e.__cause__)) from e.__cause__
            raise
        if not convert_result:
            return result
        if isinstance(result, BaseModel) and self.fn_metadata.output_schema is not None:
            return structured_result(result)
        return self.fn_metadata.convert_result(result)


def structured_result(model: BaseModel) -> CallToolResult:
    """A contract as a tool result: the structured content, and the same JSON, compact, as the text block."""
    structured = model.model_dump(mode="json", by_alias=True)
    text = json.dumps(structured, separators=(",", ":"), ensure_ascii=False)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


class ToolRegistry:
    """Collects tools for ``MCPServer(tools=...)``; a second tool with a taken name is a hard error."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def add(self, spec: ToolSpec) -> None:
        """Register one tool; raises ``DuplicateToolError`` when the name is taken."""
        if spec.name in self._tools:
            raise DuplicateToolError(f"tool {spec.name!r} is registered twice")
        doc = inspect.cleandoc(spec.fn.__doc__ or "")
        tool = StrictTool.from_function(spec.fn, name=spec.name, description=doc, annotations=spec.annotations)
        tool.parameters = {**compact_schema(tool.parameters), "additionalProperties": False}
        if spec.output is not None:
            tool.fn_metadata.output_model, tool.fn_metadata.wrap_output = spec.output, False
            tool.fn_metadata.output_schema = spec.output.model_json_schema(by_alias=True)
        if tool.fn_metadata.output_schema is not None:
            tool.fn_metadata.output_schema = outline(compact_schema(tool.fn_metadata.output_schema, output=True))
        self._tools[spec.name] = tool

    def tools(self) -> list[Tool]:
        """The registered tools, in registration order."""
        return list(self._tools.values())
