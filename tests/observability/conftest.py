"""Fixtures for the observability tests: fast settings (no fsync, no retry back-off) and a subprocess env."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_orchestrator.config import Settings


@pytest.fixture
def settings(data_home: Path, root: Path) -> Settings:
    """The service on fresh directories; a scripted failure retries at most once, at once."""
    return Settings(home=data_home, roots=(root,), fsync=False, retry_attempts=2, retry_base_seconds=0.0)
