"""Helpers for the executor tests: sessions that end in different ways, and the processes left behind."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from support.records import full
from support.servers import REPO, stdio_params

__all__ = ["call", "cli", "eventually", "processes_in", "session"]


def session(env: dict[str, str]) -> Client:
    """A real client on a fresh ``serve`` over stdio."""
    return Client(stdio_params(env), read_timeout_seconds=60)


async def call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """A tool call that must succeed; its structured result."""
    result = await client.call_tool(tool, full(tool, args))
    assert not result.is_error, f"{tool}({args}): {result.content}"
    assert result.structured_content is not None
    return result.structured_content


async def cli(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    """``mcp-orchestrator <args>``: exit code and JSON output."""
    with anyio.fail_after(60):
        proc = await anyio.run_process(
            [sys.executable, "-m", "mcp_orchestrator", *args], env=env, cwd=str(REPO), check=False
        )
    return proc.returncode, json.loads(proc.stdout or b"{}")


async def eventually(check: Callable[[], Awaitable[bool] | bool], seconds: float, what: str) -> None:
    """Poll ``check`` until it holds; fail saying ``what`` after ``seconds``."""
    with anyio.move_on_after(seconds):
        while True:
            outcome = check()
            if await outcome if not isinstance(outcome, bool) else outcome:
                return
            await anyio.sleep(0.05)
    raise AssertionError(f"not within {seconds} s: {what}")


def processes_in(folder: Path) -> list[tuple[int, str]]:
    """Live processes whose working directory is inside ``folder`` (a worker's tree): pid and command."""
    found = []
    target = folder.resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z" and (cwd == target or target in cwd.parents):
            found.append((int(entry.name), cmd[:120]))
    return found
