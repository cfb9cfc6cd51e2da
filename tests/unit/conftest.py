"""Shared fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_orchestrator.config import Settings
from mcp_orchestrator.service import Orchestrator

AGENT = "writes"


@pytest.fixture
async def orch(tmp_path: Path) -> AsyncIterator[Orchestrator]:
    root = tmp_path / "root"
    root.mkdir()
    orch = Orchestrator(Settings(home=tmp_path / "home", roots=(root,), fsync=False))
    async with orch.running(take_over=False):
        for name in ("a", "b"):
            await orch.spawn_worker(AGENT, name, "mock", workdir=str(root))
        yield orch
