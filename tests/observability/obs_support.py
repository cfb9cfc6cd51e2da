"""Helpers for the observability tests: the operator CLI as a real subprocess, tool calls, a running service."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from support.records import full
from support.servers import REPO

from mcp_orchestrator.config import Settings
from mcp_orchestrator.contracts import RunRecord
from mcp_orchestrator.service import Orchestrator

__all__ = ["FIXTURES", "CliResult", "call", "cli", "dispatch_and_wait", "read_all", "running"]

FIXTURES = REPO / "fixtures"
CLI_TIMEOUT = 60.0


class CliResult:
    """What a CLI run left: exit code, stdout, stderr."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    def json(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.stdout)


async def cli(env: dict[str, str], *args: str) -> CliResult:
    """Run ``python -m mcp_orchestrator ARGS`` (in the repository, with ``env``)."""
    with anyio.fail_after(CLI_TIMEOUT):
        proc = await anyio.run_process(
            [sys.executable, "-m", "mcp_orchestrator", *args], env=env, cwd=str(REPO), check=False
        )
    return CliResult(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


async def call(client: Client, tool: str, /, **args: Any) -> dict[str, Any]:
    """Call ``tool``; it must succeed. Returns its structured result."""
    result = await client.call_tool(tool, full(tool, args))
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Orchestrator]:
    """A running service on ``settings``."""
    orch = Orchestrator(settings)
    async with orch.running():
        yield orch


async def dispatch_and_wait(orch: Orchestrator, worker: str, task: str, **kwargs: Any) -> RunRecord:
    """Dispatch ``task`` to ``worker`` (agent ``a``) and wait for the run to end."""
    run = await orch.dispatch("a", task, workers=[worker], **kwargs)
    with anyio.fail_after(30):
        done = await orch.wait_run(run.run_id, 30)
    assert done.terminal, done.status
    return done


def read_all(home: Path) -> bytes:
    """Every byte of every file under ``home``."""
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())
