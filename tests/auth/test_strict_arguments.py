"""Issue #12, acceptance 5: every tool refuses an argument it does not have, naming the closest valid one, and
publishes ``additionalProperties: false``; a bad value is one line without pydantic's boilerplate."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from mcp_orchestrator.config import Settings
from mcp_orchestrator.server import build_server

pytestmark = pytest.mark.anyio


def _typo(name: str) -> str:
    """A plausible slip: the last letter dropped, or the case of a camelCase hump lost."""
    lowered = name.lower()
    return lowered if lowered != name else name[:-1]


async def test_every_tool_refuses_unknown_arguments_with_a_hint(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        tools = await client.list_tools()
        assert len(tools.tools) >= 13
        for tool in tools.tools:
            schema: dict[str, Any] = tool.input_schema
            assert schema.get("additionalProperties") is False, tool.name
            props = list(schema.get("properties", {}))
            if props:
                wanted = max(props, key=len)  # the longest name: its typo is unambiguous
                result = await client.call_tool(tool.name, {_typo(wanted): 1})
                text = result.content[0].text  # type: ignore[union-attr]
                assert result.is_error, tool.name
                assert f"unknown argument '{_typo(wanted)}'" in text and f"Did you mean {wanted}?" in text, text
            result = await client.call_tool(tool.name, {"zzzz": 1})
            text = result.content[0].text  # type: ignore[union-attr]
            assert result.is_error and "unknown argument 'zzzz'" in text, (tool.name, text)
            assert ("Valid arguments: " in text) if props else ("takes no arguments" in text), text
            assert "\n" not in text


async def test_a_bad_value_is_one_actionable_line(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("get_run", {"runId": "run_0000000000000000000a", "waitSeconds": "soon"})
        text = result.content[0].text  # type: ignore[union-attr]
        assert result.is_error
        assert text == (
            "Error executing tool get_run: waitSeconds: Input should be a valid number, unable to parse string as a "
            "number (got 'soon'). Fix the argument and call again."
        )
        missing = await client.call_tool("spawn_worker", {"agentId": "a", "model": "mock"})
        assert missing.content[0].text == (  # type: ignore[union-attr]
            "Error executing tool spawn_worker: name: required, missing. Fix the argument and call again."
        )
        assert "errors.pydantic.dev" not in text
