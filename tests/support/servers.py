"""Ways to start the real server in tests: stdio parameters, an HTTP server subprocess, free ports."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
from mcp import StdioServerParameters

__all__ = ["REPO", "free_port", "http_server", "stdio_params"]

REPO = Path(__file__).resolve().parents[2]


def stdio_params(env: dict[str, str], *extra: str) -> StdioServerParameters:
    """How to start ``mcp-orchestrator serve`` over stdio as a subprocess."""
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_orchestrator", "serve", *extra], env=env, cwd=str(REPO)
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def http_server(env: dict[str, str], transport: str) -> AsyncIterator[str]:
    """Start ``serve --transport <transport>`` and yield its URL once it answers."""
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - starting a server is not blocking work
        [sys.executable, "-m", "mcp_orchestrator", "serve", "--transport", transport, "--port", str(port)],
        env=env,
        cwd=str(REPO),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    path = "/sse" if transport == "sse" else "/mcp"
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with anyio.fail_after(20):
            async with httpx2.AsyncClient() as http:
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
                    try:
                        await http.get(f"http://127.0.0.1:{port}/", timeout=1)
                        break
                    except httpx2.TransportError:
                        await anyio.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
