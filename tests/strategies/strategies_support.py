"""Helpers for the strategy tests: git repositories and MCP tool calls."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from mcp import Client
from support.records import full

__all__ = ["AGENT", "call", "dispatch", "git", "make_repo", "read_text", "spawn", "tool_error"]

AGENT = "strategist"


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` (argv only) with a fixed identity; its stripped stdout."""
    done = subprocess.run(
        ["git", "-C", str(cwd), "-c", "user.name=tests", "-c", "user.email=tests@localhost", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def make_repo(path: Path, files: dict[str, str]) -> Path:
    """A git repository at ``path`` with ``files`` committed on ``main``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", "--initial-branch=main")
    for name, content in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "-m", "base")
    return path


async def call(c: Client, tool: str, **args: Any) -> dict[str, Any]:
    """Call ``tool``; it must succeed. Its structured (camelCase) result."""
    result = await c.call_tool(tool, full(tool, args))
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def tool_error(c: Client, tool: str, **args: Any) -> str:
    """Call ``tool``; it must fail cleanly. The error text."""
    result = await c.call_tool(tool, args)
    assert result.is_error
    text = str(result.content[0].text)  # type: ignore[union-attr]
    assert text != f"Error executing tool {tool}", "an unexpected crash, not a clean ToolError"
    return text


async def spawn(c: Client, name: str, model: str = "mock", **extra: Any) -> dict[str, Any]:
    """A worker of ``AGENT``; CLI models run on the mock runtime unless told otherwise."""
    if model != "mock":
        extra.setdefault("runtimeMode", "mock")
    return await call(c, "spawn_worker", agentId=AGENT, name=name, model=model, **extra)


async def dispatch(c: Client, task: str, strategy: str, workers: list[str], **extra: Any) -> dict[str, Any]:
    """Dispatch and wait for the run to end."""
    run = await call(
        c, "dispatch_task", agentId=AGENT, task=task, strategy=strategy, workers=workers, waitSeconds=30, **extra
    )
    assert run["status"] in ("completed", "failed", "canceled"), run
    return run


async def read_text(c: Client, uri: str) -> str:
    """The text of one resource."""
    result = await c.read_resource(uri)
    (content,) = result.contents
    return str(content.text)  # type: ignore[union-attr]
