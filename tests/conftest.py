"""Shared fixtures: an isolated data directory and root per test, and ways to start the real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import StdioServerParameters

from mcp_orchestrator.config import Settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def anyio_backend() -> str:
    """Tests run on asyncio (the backend the MCP SDK and the CLIs' runtimes use)."""
    return "asyncio"


@pytest.fixture
def data_home(tmp_path: Path) -> Path:
    """A fresh MCP_ORCHESTRATOR_HOME."""
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh allowed root (MCP_ORCHESTRATOR_ROOTS) with a workdir inside."""
    r = tmp_path / "root"
    (r / "work").mkdir(parents=True)
    return r.resolve()


@pytest.fixture
def settings(data_home: Path, root: Path) -> Settings:
    """Settings for an in-process service on the fresh directories."""
    return Settings(home=data_home, roots=(root,))


@pytest.fixture
def server_env(data_home: Path, root: Path) -> dict[str, str]:
    """The environment of a server subprocess: this interpreter's PATH plus the fresh directories."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    env.update(
        MCP_ORCHESTRATOR_HOME=str(data_home),
        MCP_ORCHESTRATOR_ROOTS=str(root),
        PYTHONUNBUFFERED="1",
    )
    return env


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
