"""Fixtures for the readiness tests: a loopback model server and a worker-ready environment built in temp dirs.

``ready_env`` is a whole environment, not an overlay: ``PATH`` is one temporary directory holding links to
the pinned CLIs (and ``node``), ``HOME`` and every CLI home are temporary (``support.loopback``), and the
SDK keys point at the loopback server. Nothing of the machine's own configuration leaks in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from readiness_support import link_bin
from support.loopback import loopback_env
from support.model_server import ModelServer

from mcp_orchestrator.config import Settings


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """A loopback model server of this test's own (scripted turns never cross tests)."""
    with ModelServer() as server:
        yield server


@pytest.fixture
def ready_env(tmp_path: Path, model_server: ModelServer) -> dict[str, str]:
    """Everything installed and configured for the loopback server, in temp dirs only."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": str(link_bin(tmp_path)), "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(loopback_env(model_server.url, tmp_path / "homes"))
    env.update(OPENAI_API_KEY="loopback-openai-key", OPENAI_BASE_URL=model_server.openai_base_url)
    return env


@pytest.fixture
def probe_settings(tmp_path: Path) -> Settings:
    """Settings with an existing, empty data directory."""
    home = tmp_path / "data"
    home.mkdir()
    return Settings(home=home, roots=(tmp_path,), fsync=False)
