"""Helpers for the scheduler acceptance tests (issue #5): real server processes, fake CLIs, polling.

A *fake CLI* is a small Python script that the server runs as the codex binary
(``MCP_ORCHESTRATOR_CODEX_BIN``). Every ``exec`` invocation appends one line, ``<pid> <prompt>``, to
``ledger.txt`` in its working directory before doing anything else: the ledger counts real
executions, so "ran exactly once" is checked on the side effect, not only on the run record.

* ``answering``: prints codex's JSONL for one turn and exits 0 (a step of a few milliseconds).
* ``hanging``: starts a grandchild ``sleep <marker>`` in its process group, says ``thread.started``
  and then never answers (the step only ends when the orchestrator kills the tree).
"""

from __future__ import annotations

import os
import secrets
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.types import CallToolResult, TextContent
from support.procs import alive, descendants, pids_with_arg
from support.records import full
from support.servers import ServerProcess

__all__ = [
    "AGENT",
    "ServerProcess",
    "call",
    "eventually",
    "fake_codex",
    "ledger",
    "marker",
    "refused",
    "served",
    "tree_of",
]

AGENT = "sched"
CALL_TIMEOUT = 60.0
SLEEP = "/bin/sleep" if os.path.exists("/bin/sleep") else "sleep"

_PRELUDE = """\
import json, os, sys
argv = sys.argv[1:]
if argv[:1] != ["exec"]:  # `--version` (the runtimes tool and list_workers ask): answer at once, log nothing
    print("codex-cli 0.169.0")
    sys.exit(0)
prompt = argv[-1] if "--" in argv else sys.stdin.read()
with open(os.path.join(os.getcwd(), "ledger.txt"), "a") as f:  # O_APPEND: each line lands whole
    f.write(f"{os.getpid()} {' '.join(prompt.split())}\\n")
"""

_ANSWER = """\
events = [
    {"type": "thread.started", "thread_id": "thread-sched"},
    {"type": "turn.started"},
    {"type": "item.completed", "item": {"id": "i1", "type": "agent_message", "text": "done: " + prompt[:60]}},
    {"type": "turn.completed", "usage": {"input_tokens": 3, "output_tokens": 2}},
]
sys.stdout.write("".join(json.dumps(e) + "\\n" for e in events))
"""

_HANG = """\
import subprocess, time
subprocess.Popen([{sleep!r}, {marker!r}])  # a grandchild in the CLI's process group
print(json.dumps({{"type": "thread.started", "thread_id": "thread-hang"}}), flush=True)
time.sleep(3600)
"""


def marker() -> str:
    """A unique ``sleep`` argument: a long odd duration nobody else uses, findable in /proc."""
    return f"{5000 + secrets.randbelow(10**6)}.25"


def fake_codex(folder: Path, kind: str, sleep_marker: str = "") -> Path:
    """Write a fake codex CLI (``answering`` or ``hanging``) into ``folder``; returns its path."""
    body = _PRELUDE + (_ANSWER if kind == "answering" else _HANG.format(sleep=SLEEP, marker=sleep_marker))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"fake-codex-{kind}"
    # -I -S: no site imports, so each step's process starts in a few milliseconds.
    path.write_text(f"#!{sys.executable} -IS\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def ledger(workdir: Path) -> list[str]:
    """The prompts the fake CLI was started with in ``workdir``, one per execution."""
    path = workdir / "ledger.txt"
    if not path.exists():
        return []
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines() if line]


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float, interval: float = 0.05) -> None:
    """Poll ``check`` until it holds; fail after ``seconds``."""
    with anyio.fail_after(seconds):
        while True:
            if await check():
                return
            await anyio.sleep(interval)


def _text(result: CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    """Call a tool that must succeed; its structured (camelCase) result."""
    result = await client.call_tool(tool, full(tool, args), read_timeout_seconds=CALL_TIMEOUT)
    assert not result.is_error, f"{tool}({args}) failed: {_text(result)}"
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


async def refused(client: Client, tool: str, **args: Any) -> str:
    """Call a tool that must be refused with a clean error result; the error text."""
    result = await client.call_tool(tool, args, read_timeout_seconds=CALL_TIMEOUT)
    assert result.is_error, f"{tool}({args}) should have been refused: {result.structured_content}"
    text = _text(result)
    assert text and text != f"Error executing tool {tool}", text
    return text


def tree_of(server_pid: int, sleep_marker: str) -> set[int]:
    """Live processes below the server plus every ``sleep <marker>`` (re-parented ones included)."""
    return alive(descendants(server_pid) | pids_with_arg(sleep_marker))


@asynccontextmanager
async def served(env: dict[str, str], log: Path) -> AsyncIterator[tuple[ServerProcess, Client]]:
    """A ready HTTP server and a client connected to it; the server is stopped afterwards."""
    server = ServerProcess(env, log)
    try:
        await server.ready()
        async with Client(server.url, read_timeout_seconds=CALL_TIMEOUT) as client:
            yield server, client
    finally:
        server.stop()
