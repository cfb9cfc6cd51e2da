"""Fixtures for the strategy tests: an in-memory MCP client and a git repository as the workdir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from strategies_support import make_repo

from mcp_orchestrator.config import Settings
from mcp_orchestrator.server import build_server


@pytest.fixture
def repo(root: Path) -> Path:
    """The root's workdir as a git repository with two committed files."""
    return make_repo(root / "work", {"shared.txt": "base\n", "app.py": "print('hello')\n"})


@pytest.fixture
def settings(data_home: Path, root: Path) -> Settings:
    """The service on fresh directories; a scripted failure fails its step at once (no retry)."""
    return Settings(home=data_home, roots=(root,), retry_attempts=1)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    """An MCP client on the real server object, in memory."""
    async with Client(build_server(settings)) as c:
        yield c
